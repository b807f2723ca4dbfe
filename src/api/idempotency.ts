import { createHash } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IdempotencyRequest, IdempotentAnswer, SubmitOutcome } from '../messages/service.js';
import { RelaisError } from '../shared/errors.js';
import type { Store } from '../store/store.js';

const KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

/**
 * Idempotency-Key handling for POST endpoints that create messages. The stored answer is written in
 * the same transaction as the messages, so a retry either finds both or neither. A retry while the
 * first request is still being processed in this process gets 409; across processes, the database's
 * unique key decides and the loser replays the winner's answer.
 */
export class IdempotencyGuard {
  private readonly inFlight = new Set<string>();

  /** Keys are kept until housekeeping purges them (messages.idempotency_ttl_hours). */
  constructor(private readonly store: Store) {}

  /**
   * Runs `create` at most once per (tenant, key) and answers with `respond`, or replays the stored
   * answer of the first request with that key.
   */
  async handle(
    request: FastifyRequest,
    reply: FastifyReply,
    answer: IdempotentAnswer,
    create: (idempotency: IdempotencyRequest | undefined) => Promise<SubmitOutcome>,
    respond: (outcome: Extract<SubmitOutcome, { kind: 'committed' }>) => FastifyReply,
  ): Promise<FastifyReply> {
    const header = request.headers['idempotency-key'];
    if (header === undefined) return this.finish(await create(undefined), reply, respond, undefined);
    const key = Array.isArray(header) ? header[0]! : header;
    if (!KEY_PATTERN.test(key)) {
      throw new RelaisError(
        'invalid_idempotency_key',
        'Idempotency-Key must be 1 to 255 printable ASCII characters',
        'Idempotency-Key',
      );
    }
    const tenantId = request.tenant.id;
    const requestHash = createHash('sha256')
      .update(`${request.method} ${request.routeOptions.url}\n${JSON.stringify(request.body)}`)
      .digest('hex');
    const stored = await this.lookup(tenantId, key);
    if (stored) return this.replay(stored, requestHash, reply);
    const slot = `${tenantId}\u0000${key}`;
    if (this.inFlight.has(slot)) {
      throw new RelaisError(
        'idempotency_key_in_use',
        'a request with this Idempotency-Key is still being processed',
      );
    }
    this.inFlight.add(slot);
    try {
      const outcome = await create({ key, requestHash, answer });
      return await this.finish(outcome, reply, respond, { tenantId, key, requestHash });
    } finally {
      this.inFlight.delete(slot);
    }
  }

  private async finish(
    outcome: SubmitOutcome,
    reply: FastifyReply,
    respond: (outcome: Extract<SubmitOutcome, { kind: 'committed' }>) => FastifyReply,
    idem: { tenantId: string; key: string; requestHash: string } | undefined,
  ): Promise<FastifyReply> {
    if (outcome.kind === 'committed') return respond(outcome);
    // Lost a race with another process holding the same key: its answer is now stored.
    const stored = idem && (await this.lookup(idem.tenantId, idem.key));
    if (!stored || !idem) throw new Error('idempotency record vanished after a duplicate-key conflict');
    return this.replay(stored, idem.requestHash, reply);
  }

  private async lookup(tenantId: string, key: string) {
    return this.store.db
      .selectFrom('idempotency_keys')
      .select(['request_hash', 'status_code', 'response_body'])
      .where('tenant_id', '=', tenantId)
      .where('key', '=', key)
      .executeTakeFirst();
  }

  private replay(
    stored: { request_hash: string; status_code: number; response_body: string },
    requestHash: string,
    reply: FastifyReply,
  ): FastifyReply {
    if (stored.request_hash !== requestHash) {
      throw new RelaisError(
        'idempotency_key_reused',
        'this Idempotency-Key was already used with a different request',
        'Idempotency-Key',
      );
    }
    return sendJsonText(
      reply.header('Idempotent-Replayed', 'true'),
      stored.status_code,
      stored.response_body,
    );
  }
}

/** Sends a JSON text as it is, past the route's schema serializer: a stored or a pre-serialized answer. */
export function sendJsonText(reply: FastifyReply, statusCode: number, text: string): FastifyReply {
  return reply.code(statusCode).type('application/json; charset=utf-8').send(text);
}
