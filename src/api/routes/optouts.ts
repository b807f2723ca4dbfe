import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { OptoutService } from '../../optouts/optout-service.js';
import { errorResponses, Problem } from '../schemas.js';

const tags = ['opt-outs'];
const security = [{ bearerAuth: [] }];

export const Optout = Type.Object({
  phone: Type.String({ description: 'E.164' }),
  source: Type.String({ description: 'api (this API), keyword (a STOP reply), import, …' }),
  detail: Type.Union([Type.String(), Type.Null()], { description: 'For keyword: the inbound message id' }),
  created_at: Type.String(),
});

const OptoutQuery = Type.Object(
  {
    phone: Type.Optional(Type.String({ maxLength: 32, description: 'Only this number (E.164)' })),
    cursor: Type.Optional(Type.String({ maxLength: 200 })),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
  },
  { additionalProperties: false },
);

const OptoutBody = Type.Object(
  {
    phone: Type.String({ minLength: 1, maxLength: 32 }),
    country: Type.Optional(Type.String({ minLength: 2, maxLength: 2, description: 'For a national number' })),
  },
  { additionalProperties: false },
);

const PhoneParams = Type.Object({ phone: Type.String({ maxLength: 32, description: 'E.164, URL-encoded' }) });

/** The tenant's opt-out list: numbers that never receive its bulk messages. */
export const optoutRoutes =
  (optouts: OptoutService): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/optouts',
      {
        schema: {
          tags,
          security,
          summary: 'List opted-out numbers, in number order, with cursor pagination',
          querystring: OptoutQuery,
          response: {
            200: Type.Object({
              data: Type.Array(Optout),
              next_cursor: Type.Union([Type.String(), Type.Null()]),
            }),
            ...errorResponses,
          },
        },
      },
      async (request) => optouts.list(request.tenant.id, request.query),
    );

    app.post(
      '/optouts',
      {
        schema: {
          tags,
          security,
          summary: 'Opt a number out of your bulk messages (201 when added, 200 when it already was)',
          body: OptoutBody,
          response: { 200: Optout, 201: Optout, ...errorResponses },
        },
      },
      async (request, reply) => {
        const { created, optout } = await optouts.add(request.tenant.id, request.body);
        return reply.code(created ? 201 : 200).send(optout);
      },
    );

    app.delete(
      '/optouts/:phone',
      {
        schema: {
          tags,
          security,
          summary: 'Remove a number from the opt-out list (it receives bulk messages again)',
          params: PhoneParams,
          response: { 204: Type.Null(), ...errorResponses, 404: Problem },
        },
      },
      async (request, reply) => {
        await optouts.remove(request.tenant.id, request.params.phone);
        return reply.code(204).send(null);
      },
    );
  };
