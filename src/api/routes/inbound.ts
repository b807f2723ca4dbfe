import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { getInbound, listInbound } from '../../inbound/queries.js';
import { RelaisError } from '../../shared/errors.js';
import type { Store } from '../../store/store.js';
import { errorResponses, IdParams, Problem } from '../schemas.js';

const tags = ['inbound'];
const security = [{ bearerAuth: [] }];
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const InboundMessage = Type.Object({
  id: Type.String({ description: 'mo_…' }),
  from: Type.String({ description: 'The sender (E.164 when it is a phone number)' }),
  to: Type.String({ description: 'Your number or short code it was sent to' }),
  text: Type.String(),
  keyword: Nullable(Type.String({ description: 'stop or start when the first word was a keyword' })),
  campaign_id: Nullable(Type.String()),
  message_id: Nullable(Type.String({ description: 'Your last message to this phone, which it answers' })),
  received_at: Type.String(),
});

const InboundQuery = Type.Object(
  {
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  },
  { additionalProperties: false },
);

/** Messages your recipients sent to your numbers (replies, STOP…), also pushed as `message.inbound`. */
export const inboundRoutes =
  (store: Store): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/inbound',
      {
        schema: {
          tags,
          security,
          summary: 'List inbound messages (MO), newest first, with cursor pagination',
          querystring: InboundQuery,
          response: {
            200: Type.Object({ data: Type.Array(InboundMessage), next_cursor: Nullable(Type.String()) }),
            ...errorResponses,
          },
        },
      },
      async (request) => listInbound(store.db, request.tenant.id, request.query),
    );

    app.get(
      '/inbound/:id',
      {
        schema: {
          tags,
          security,
          summary: 'One inbound message',
          params: IdParams,
          response: { 200: InboundMessage, 401: Problem, 404: Problem },
        },
      },
      async (request) => {
        const message = await getInbound(store.db, request.tenant.id, request.params.id);
        if (!message) throw new RelaisError('not_found', `no inbound message ${request.params.id}`, 'id');
        return message;
      },
    );
  };
