import { z } from 'zod';

/** SMPP over TLS with settings of its own (`tls: true` is TLS with the system's CAs and nothing else). */
const connectorTlsSchema = z
  .object({
    /** CA certificates (PEM) to trust instead of the system's: a carrier with a private CA or a self-signed certificate. */
    ca_file: z.string().min(1).optional(),
    /** Our client certificate and its key (PEM files), for a carrier that asks for one. */
    cert_file: z.string().min(1).optional(),
    key_file: z.string().min(1).optional(),
    /** The name the carrier's certificate must carry (default: `host`). */
    servername: z.string().min(1).optional(),
    /** false accepts any certificate, so anyone on the path can read the traffic: for tests only. */
    reject_unauthorized: z.boolean().default(true),
  })
  .strict()
  .refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), {
    message: 'cert_file and key_file go together',
    path: ['key_file'],
  });

/** One SMPP carrier connection, as written under `connectors:` in the configuration file. */
export const smppConnectorSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'lowercase letters, digits, - and _ (at most 40)'),
    type: z.literal('smpp').default('smpp'),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535),
    /** SMPP over TLS: true (the system's CAs), or settings (see connectorTlsSchema). */
    tls: z.union([z.boolean(), connectorTlsSchema]).default(false),
    system_id: z.string().min(1).max(15),
    password: z.string().max(8).default(''),
    system_type: z.string().max(12).default(''),
    service_type: z.string().max(5).default(''),
    /** Number of binds: transceivers, or transmitter + receiver pairs. */
    binds: z.number().int().min(1).max(32).default(1),
    bind_mode: z.enum(['transceiver', 'transmitter_receiver']).default('transceiver'),
    /** Unanswered submit_sm allowed per bind. */
    window: z.number().int().min(1).max(1000).default(10),
    /** Submits per second for the whole connector, all binds together. */
    tps: z.number().positive().max(100_000).default(100),
    enquire_link_interval_ms: z.number().int().min(0).default(30_000),
    response_timeout_ms: z.number().int().min(100).default(10_000),
    connect_timeout_ms: z.number().int().min(100).default(10_000),
    reconnect_min_ms: z.number().int().min(10).default(1_000),
    reconnect_max_ms: z.number().int().min(10).default(60_000),
    /** How the carrier writes message ids in receipts (see docs/carriers.md). */
    receipt_id_format: z.enum(['auto', 'hex', 'decimal']).default('auto'),
    registered_delivery: z.boolean().default(true),
    /** Override the TON/NPI chosen from the sender's form (alphanumeric, short code, number). */
    source_ton: z.number().int().min(0).max(6).optional(),
    source_npi: z.number().int().min(0).max(18).optional(),
    dest_ton: z.number().int().min(0).max(6).default(1),
    dest_npi: z.number().int().min(0).max(18).default(1),
  })
  .strict();

export type SmppConnectorConfig = z.infer<typeof smppConnectorSchema>;

export const routeSchema = z
  .object({
    /** One connector, or several in order of preference (failover). */
    connector: z.union([z.string(), z.array(z.string()).min(1)]),
    match: z
      .object({
        countries: z.array(z.string().length(2)).optional(),
        prefixes: z.array(z.string().regex(/^\+\d{1,14}$/, 'an E.164 prefix such as +336')).optional(),
        tenants: z.array(z.string()).optional(),
        lanes: z.array(z.enum(['otp', 'transactional', 'bulk'])).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type RouteEntry = z.infer<typeof routeSchema>;
