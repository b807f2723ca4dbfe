import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { NumberService } from '../../inbound/numbers.js';
import { Problem } from '../schemas.js';

const tags = ['operator'];
const security = [{ bearerAuth: [] }];

const NumberView = Type.Object({
  number: Type.String({ description: 'Short code or number (+ for an international one)' }),
  tenant_id: Type.String(),
  created_at: Type.String(),
});

const operatorErrors = { 400: Problem, 401: Problem, 403: Problem };

/** Operator routes (/admin, `admin.token`): assigning inbound numbers and short codes to tenants. */
export const numbersAdminRoutes =
  (numbers: NumberService): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/numbers',
      {
        schema: {
          tags,
          security,
          summary: 'Assign a number or short code to a tenant (a short code may be shared)',
          body: Type.Object(
            {
              number: Type.String({ minLength: 1, maxLength: 32 }),
              tenant_id: Type.String({ minLength: 1, maxLength: 64 }),
            },
            { additionalProperties: false },
          ),
          response: { 200: NumberView, 201: NumberView, ...operatorErrors, 404: Problem },
        },
      },
      async (request, reply) => {
        const { created, number } = await numbers.add(request.body.number, request.body.tenant_id);
        return reply.code(created ? 201 : 200).send(number);
      },
    );

    app.get(
      '/numbers',
      {
        schema: {
          tags,
          security,
          summary: 'Every number assignment, optionally of one tenant',
          querystring: Type.Object(
            { tenant_id: Type.Optional(Type.String({ maxLength: 64 })) },
            { additionalProperties: false },
          ),
          response: { 200: Type.Object({ data: Type.Array(NumberView) }), ...operatorErrors },
        },
      },
      async (request) => ({ data: await numbers.list(request.query.tenant_id) }),
    );

    app.delete(
      '/numbers/:number',
      {
        schema: {
          tags,
          security,
          summary: 'Remove a number from a tenant (the other tenants sharing it keep it)',
          params: Type.Object({ number: Type.String({ maxLength: 32 }) }),
          querystring: Type.Object(
            { tenant_id: Type.String({ minLength: 1, maxLength: 64 }) },
            { additionalProperties: false },
          ),
          response: { 204: Type.Null(), ...operatorErrors, 404: Problem },
        },
      },
      async (request, reply) => {
        await numbers.remove(request.params.number, request.query.tenant_id);
        return reply.code(204).send(null);
      },
    );
  };
