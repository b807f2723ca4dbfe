import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Static } from 'typebox';
import { getMessage, listMessages } from '../../messages/queries.js';
import type { BatchItemResult, MessageService } from '../../messages/service.js';
import { RelaisError } from '../../shared/errors.js';
import type { Store } from '../../store/store.js';
import { type IdempotencyGuard, sendJsonText } from '../idempotency.js';
import {
  AcceptedMessage,
  BatchBody,
  BatchResponse,
  errorResponses,
  IdParams,
  ListQuery,
  MessageDetail,
  MessageList,
  Problem,
  SendMessageBody,
} from '../schemas.js';

export interface MessageRoutesDeps {
  store: Store;
  messages: MessageService;
  idempotency: IdempotencyGuard;
}

const tags = ['messages'];
const security = [{ bearerAuth: [] }];
const idempotencyHeader = {
  type: 'object',
  properties: {
    'idempotency-key': { type: 'string', description: 'Replays the first answer for a retried request' },
  },
} as const;

function batchAnswer(results: BatchItemResult[]): Static<typeof BatchResponse> {
  const out = results.map((r, index) =>
    'accepted' in r
      ? { index, status: 'accepted' as const, message: r.accepted }
      : { index, status: 'rejected' as const, error: r.error },
  );
  const accepted = out.filter((r) => r.status === 'accepted').length;
  return { accepted, rejected: out.length - accepted, results: out };
}

export const messageRoutes =
  (deps: MessageRoutesDeps): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/messages',
      {
        schema: {
          tags,
          security,
          summary: 'Send one SMS',
          headers: idempotencyHeader,
          body: SendMessageBody,
          response: {
            202: AcceptedMessage,
            ...errorResponses,
            409: Problem,
            413: Problem,
            422: Problem,
            507: Problem,
          },
        },
      },
      async (request, reply) =>
        deps.idempotency.handle(
          request,
          reply,
          (results) => {
            const first = results[0];
            if (!first || !('accepted' in first))
              throw new Error('idempotent answer without an accepted message');
            return { statusCode: 202, responseBody: JSON.stringify(first.accepted) };
          },
          (idem) => deps.messages.submit(request.tenant.id, request.body, idem),
          (outcome) => {
            const first = outcome.results[0] as { accepted: Static<typeof AcceptedMessage> };
            return reply.code(202).send(first.accepted);
          },
        ),
    );

    app.post(
      '/messages/batch',
      {
        schema: {
          tags,
          security,
          summary: 'Send up to 1,000 SMS; each item is accepted or rejected on its own',
          headers: idempotencyHeader,
          body: BatchBody,
          response: {
            202: BatchResponse,
            ...errorResponses,
            409: Problem,
            413: Problem,
            422: Problem,
            507: Problem,
          },
        },
      },
      async (request, reply) => {
        // The answer is JSON.stringify's text, made once: stored for idempotent replays (when the
        // request has a key) and sent. Fastify's schema serializer matched each item against the
        // union of the two result shapes and built the body piece by piece: a 1,000-result body took
        // 1.5-1.75 ms with its byte length, 0.95-1.05 ms this way (measured apart, the same text).
        let text: string | undefined;
        const answerText = (results: BatchItemResult[]) => (text ??= JSON.stringify(batchAnswer(results)));
        return deps.idempotency.handle(
          request,
          reply,
          (results) => ({ statusCode: 202, responseBody: answerText(results) }),
          (idem) => deps.messages.submitBatch(request.tenant.id, request.body.messages, idem),
          (outcome) => sendJsonText(reply, 202, answerText(outcome.results)),
        );
      },
    );

    app.get(
      '/messages/:id',
      {
        schema: {
          tags,
          security,
          summary: 'A message with its status history and per-part carrier ids',
          params: IdParams,
          response: { 200: MessageDetail, 401: Problem, 404: Problem },
        },
      },
      async (request) => {
        const message = await getMessage(deps.store.db, request.tenant.id, request.params.id);
        if (!message) throw new RelaisError('not_found', `no message ${request.params.id}`, 'id');
        return message;
      },
    );

    app.get(
      '/messages',
      {
        schema: {
          tags,
          security,
          summary: 'List messages, newest first, with filters and cursor pagination',
          querystring: ListQuery,
          response: { 200: MessageList, ...errorResponses },
        },
      },
      async (request) => {
        const q = request.query;
        return listMessages(deps.store, request.tenant.id, {
          status: q.status,
          to: q.to,
          lane: q.lane,
          client_ref: q.client_ref,
          from: q.created_after === undefined ? undefined : Date.parse(q.created_after),
          until: q.created_before === undefined ? undefined : Date.parse(q.created_before),
          cursor: q.cursor,
          limit: q.limit,
        });
      },
    );
  };
