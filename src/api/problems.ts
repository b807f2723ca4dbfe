import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ERROR_CODES, type ErrorCode, errorBody, RelaisError } from '../shared/errors.js';
import { validationError } from './validation.js';

/** RFC 9457 problem details; `code` and `field` are our extensions, stable for integrators. */
export function sendProblem(reply: FastifyReply, err: RelaisError): FastifyReply {
  const status = ERROR_CODES[err.code].status;
  return reply
    .code(status)
    .type('application/problem+json')
    .send(
      // Serialised here: a string payload bypasses the route's response schemas.
      JSON.stringify({
        type: `urn:relais:problem:${err.code}`,
        status,
        ...errorBody(err),
        instance: reply.request.id,
      }),
    );
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'malformed_json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'invalid_request',
  FST_ERR_CTP_INVALID_TYPE: 'unsupported_media_type',
};

/**
 * One error handler for the whole API: coded domain errors become problems; framework errors are
 * translated to our codes; anything else is a 500 that is logged in full and shown as nothing.
 */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof RelaisError) return sendProblem(reply, error);
    if (error.validation) {
      return sendProblem(
        reply,
        validationError(error.validation as never, error.validationContext ?? 'body'),
      );
    }
    const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
    if (mapped) return sendProblem(reply, new RelaisError(mapped, describeFastifyError(mapped, error)));
    // JSON.parse errors on prototype poisoning and similar come as SyntaxError with status 400.
    if (error instanceof SyntaxError || error.statusCode === 400) {
      return sendProblem(
        reply,
        new RelaisError('malformed_json', `the body is not valid JSON: ${error.message}`),
      );
    }
    if (error.statusCode === 429) return sendProblem(reply, new RelaisError('rate_limited', error.message));
    if (isDiskFull(error)) {
      request.log.error({ err: error }, 'the disk is full');
      return sendProblem(
        reply,
        new RelaisError(
          'insufficient_storage',
          'the server is out of disk space; nothing was stored, retry later',
        ),
      );
    }
    request.log.error({ err: error }, 'unhandled error');
    return sendProblem(
      reply,
      new RelaisError('internal_error', 'an internal error occurred; it has been logged'),
    );
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(
      reply,
      new RelaisError('not_found', `no route ${request.method} ${request.url.split('?')[0]}`),
    ),
  );
}

function describeFastifyError(code: ErrorCode, error: FastifyError): string {
  switch (code) {
    case 'malformed_json':
      return `the body is not valid JSON: ${error.message}`;
    case 'body_too_large':
      return 'the body is larger than this server accepts';
    case 'unsupported_media_type':
      return 'send the body as application/json';
    default:
      return error.message;
  }
}

/** SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100), or the file system's ENOSPC. */
function isDiskFull(error: { code?: string }): boolean {
  return error.code === 'SQLITE_FULL' || error.code === '53100' || error.code === 'ENOSPC';
}
