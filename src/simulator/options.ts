import { z } from 'zod';
import { CommandStatus } from '../smpp/constants.js';

/** A share of submits, 0 (never) to 1 (always). */
const share = z.number().min(0).max(1);
const count = z.number().int().min(0);

const accountSchema = z
  .object({
    // SMPP bind fields: system_id is 16 octets and password 9, NUL included (§4.1.1).
    system_id: z.string().min(1).max(15),
    password: z.string().max(8),
  })
  .strict();

/**
 * Every setting of the carrier simulator. docs/simulator.md mirrors this file; keep them in step.
 * Unknown keys are errors, as in the main configuration.
 */
export const simulatorOptionsSchema = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 = any free port; start() reports the one bound. */
    port: z.number().int().min(0).max(65535).default(2775),
    /** Our system_id, sent in bind responses. */
    system_id: z.string().min(1).max(15).default('relais-sim'),
    /** When given, binds must match one of these; otherwise any system_id and password are accepted. */
    accounts: z.array(accountSchema).min(1).optional(),
    /** SMPP over TLS: the server certificate and its key (PEM files), both or neither; read at start. */
    tls_cert_file: z.string().min(1).optional(),
    tls_key_file: z.string().min(1).optional(),
    /** With TLS: require a client certificate issued by this CA (PEM file). */
    tls_client_ca_file: z.string().min(1).optional(),

    /** Send delivery receipts when registered_delivery asks for them. */
    receipts: z.boolean().default(true),
    receipt_delay_ms: count.default(200),
    /** Each receipt is delayed by receipt_delay_ms plus a uniform random 0..jitter ms. */
    receipt_delay_jitter_ms: count.default(0),
    /** Send the receipt's deliver_sm before the submit_sm_resp (a receipt overtaking its response). */
    receipt_before_response: z.boolean().default(false),
    /** Delay of every submit_sm_resp; 0 answers at once. */
    submit_response_delay_ms: count.default(0),
    /** How submit_sm_resp message ids are written. */
    message_id_format: z.enum(['hex', 'decimal']).default('hex'),
    /** How the id in the receipt *text* is written: 'same' as the response, or converted. */
    receipt_id_format: z.enum(['same', 'decimal', 'hex']).default('same'),

    /** Share of submits refused with reject_status. */
    reject_rate: share.default(0),
    reject_status: z.number().int().min(1).max(0xffffffff).default(CommandStatus.ESME_RSUBMITFAIL),
    /** Share of accepted submits whose receipt says UNDELIV (message_state UNDELIVERABLE). */
    undeliverable_rate: share.default(0),
    /** err: of UNDELIV receipts, also sent as network_error_code (GSM). */
    undeliverable_error: z
      .string()
      .regex(/^\d{1,3}$/, 'must be 1 to 3 decimal digits')
      .default('001'),
    /** Share of accepted submits whose receipt says EXPIRED. */
    expired_rate: share.default(0),
    /** Submits per second accepted over a sliding 1 s window, across binds; the rest get ESME_RTHROTTLED. 0 = off. */
    throttle_tps: count.default(0),
    /** Close the connection abruptly on every Nth submit received (across binds), unanswered. 0 = off. */
    drop_after_submits: count.default(0),
    /** Stop answering anything for stall_ms on every Nth submit received. 0 = off. */
    stall_every_submits: count.default(0),
    stall_ms: count.default(1000),

    /** Seed of the PRNG behind rates, jitter and message ids; absent = Math.random. */
    seed: z.number().int().optional(),
    /** Keep every submit_sm in `received` (tests); turn off for long runs so memory stays flat. */
    record_submits: z.boolean().default(true),

    /** Most deliver_sm (receipts, MO) outstanding per session before the simulator waits for answers. */
    deliver_window: z.number().int().min(1).default(1000),
    /** Receipts and MO waiting for a receiver bind (or for window room); beyond this they are dropped. */
    queue_limit: count.default(100_000),
    /** A deliver_sm answered with an error status is sent again after this long… */
    redelivery_delay_ms: count.default(1000),
    /** …until it has been tried this many times. */
    max_delivery_attempts: z.number().int().min(1).default(3),
    /** How long a deliver_sm waits for its deliver_sm_resp. */
    response_timeout_ms: z.number().int().min(10).default(10_000),
  })
  .strict()
  .refine((o) => o.undeliverable_rate + o.expired_rate <= 1, {
    message: 'undeliverable_rate + expired_rate must not exceed 1',
    path: ['expired_rate'],
  })
  .refine((o) => (o.tls_cert_file === undefined) === (o.tls_key_file === undefined), {
    message: 'tls_cert_file and tls_key_file go together',
    path: ['tls_key_file'],
  })
  .refine((o) => o.tls_client_ca_file === undefined || o.tls_cert_file !== undefined, {
    message: 'tls_client_ca_file needs TLS (tls_cert_file and tls_key_file)',
    path: ['tls_client_ca_file'],
  });

/** The options as given (defaults optional). */
export type SimulatorOptionsInput = z.input<typeof simulatorOptionsSchema>;
/** The options with every default applied. */
export type SimulatorOptions = z.output<typeof simulatorOptionsSchema>;

export class SimulatorOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimulatorOptionsError';
  }
}

/** ESME_ROK, or why a bind is refused: unknown system_id or wrong password (when accounts are set). */
export function bindStatus(options: SimulatorOptions, systemId: string, password: string): number {
  if (!options.accounts) return CommandStatus.ESME_ROK;
  const account = options.accounts.find((a) => a.system_id === systemId);
  if (!account) return CommandStatus.ESME_RINVSYSID;
  return account.password === password ? CommandStatus.ESME_ROK : CommandStatus.ESME_RINVPASWD;
}

/** Validates options; throws SimulatorOptionsError listing every problem. */
export function parseSimulatorOptions(raw: unknown): SimulatorOptions {
  const result = simulatorOptionsSchema.safeParse(raw ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const key = issue.path.length ? issue.path.join('.') : '(top level)';
    if (issue.code === 'unrecognized_keys') return `${issue.keys.join(', ')}: unknown simulator option`;
    return `${key}: ${issue.message}`;
  });
  throw new SimulatorOptionsError(`invalid simulator options:\n  ${lines.join('\n  ')}`);
}
