import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { RelaisError } from '../shared/errors.js';
import { sendProblem } from './problems.js';

/**
 * The operator's API (/admin/…): one bearer token from the configuration (`admin.token`). Without a
 * configured token the operator API is off — every call answers 403 — rather than open to anyone who
 * reaches the port. Checked on `onRequest`, before any body is read.
 */
export function requireAdminToken(app: FastifyInstance, token: string | undefined): void {
  const expected = token === undefined ? null : Buffer.from(token);
  app.addHook('onRequest', async (request, reply) => {
    if (!expected) {
      return sendProblem(
        reply,
        new RelaisError(
          'admin_api_disabled',
          'the operator API is off: set admin.token in the configuration',
        ),
      );
    }
    const given = Buffer.from(/^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '')?.[1] ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      reply.header('WWW-Authenticate', 'Bearer realm="relais-admin"');
      return sendProblem(
        reply,
        new RelaisError('unauthorized', 'send the operator token as "Authorization: Bearer TOKEN"'),
      );
    }
  });
}
