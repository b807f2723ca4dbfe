import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Metrics } from '../../observability/metrics.js';
import { RelaisError } from '../../shared/errors.js';
import { sendProblem } from '../problems.js';

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

/**
 * Operator endpoints outside /v1: liveness, readiness and Prometheus metrics. /metrics needs
 * `Authorization: Bearer <metrics.token>` when a token is configured; without one it answers only
 * to the local machine (a scraper on the same host or through a sidecar), never to the network.
 */
export function operationsRoutes(
  app: FastifyInstance,
  deps: { metrics: Metrics; metricsToken: string | undefined; readiness: () => Promise<Readiness> },
): void {
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const readiness = await deps.readiness();
    return reply
      .code(readiness.ready ? 200 : 503)
      .send({ status: readiness.ready ? 'ready' : 'not ready', ...readiness });
  });

  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (!metricsAllowed(request, deps.metricsToken)) {
      reply.header('WWW-Authenticate', 'Bearer realm="relais-metrics"');
      return sendProblem(reply, new RelaisError('unauthorized', 'metrics need the configured metrics token'));
    }
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });
}

function metricsAllowed(request: FastifyRequest, token: string | undefined): boolean {
  if (token) {
    const given = Buffer.from(/^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? '');
    const expected = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
  const ip = request.socket.remoteAddress ?? '';
  return ip === '127.0.0.1' || ip === '::1' || ip === '::ffff:127.0.0.1';
}
