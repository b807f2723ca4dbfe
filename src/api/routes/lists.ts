import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ListService } from '../../audiences/lists.js';
import { errorResponses, IdParams, Problem } from '../schemas.js';
import { ContactPage, PageQuery } from './contacts.js';

/** The lists API (docs/contacts.md). */

const tags = ['contacts'];
const security = [{ bearerAuth: [] }];
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const List = Type.Object({
  id: Type.String(),
  name: Type.String(),
  description: Nullable(Type.String()),
  member_count: Type.Integer(),
  created_at: Type.String(),
  updated_at: Type.String(),
});

const CreateListBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, example: 'Newsletter' }),
    description: Type.Optional(Nullable(Type.String({ maxLength: 2000 }))),
  },
  { additionalProperties: false },
);

const PatchListBody = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    description: Type.Optional(Nullable(Type.String({ maxLength: 2000 }))),
  },
  { additionalProperties: false },
);

const AddMembersBody = Type.Object(
  { contact_ids: Type.Array(Type.String({ maxLength: 64 }), { minItems: 1, maxItems: 1000 }) },
  { additionalProperties: false },
);

const AddMembersResult = Type.Object({ added: Type.Integer(), already_members: Type.Integer(), list: List });
const Page = Type.Object(PageQuery, { additionalProperties: false });
const MemberParams = Type.Object({
  id: Type.String({ maxLength: 64 }),
  contact_id: Type.String({ maxLength: 64 }),
});

export const listRoutes =
  (lists: ListService): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/lists',
      {
        schema: {
          tags,
          security,
          summary: 'Create a contact list',
          body: CreateListBody,
          response: { 201: List, ...errorResponses },
        },
      },
      async (request, reply) => {
        const list = await lists.create(request.tenant.id, request.body);
        return reply.code(201).header('Location', `/v1/lists/${list.id}`).send(list);
      },
    );

    app.get(
      '/lists',
      {
        schema: {
          tags,
          security,
          summary: 'Your lists, in creation order, with cursor pagination',
          querystring: Page,
          response: {
            200: Type.Object({ data: Type.Array(List), next_cursor: Nullable(Type.String()) }),
            ...errorResponses,
          },
        },
      },
      async (request) => lists.list(request.tenant.id, request.query),
    );

    app.get(
      '/lists/:id',
      {
        schema: {
          tags,
          security,
          summary: 'A list',
          params: IdParams,
          response: { 200: List, 401: Problem, 404: Problem },
        },
      },
      async (request) => lists.require(request.tenant.id, request.params.id),
    );

    app.patch(
      '/lists/:id',
      {
        schema: {
          tags,
          security,
          summary: 'Rename a list or change its description',
          params: IdParams,
          body: PatchListBody,
          response: { 200: List, ...errorResponses, 404: Problem },
        },
      },
      async (request) => lists.update(request.tenant.id, request.params.id, request.body),
    );

    app.delete(
      '/lists/:id',
      {
        schema: {
          tags,
          security,
          summary: 'Delete a list (its contacts stay)',
          params: IdParams,
          response: { 204: Type.Null(), 401: Problem, 404: Problem, 409: Problem },
        },
      },
      async (request, reply) => {
        await lists.delete(request.tenant.id, request.params.id);
        return reply.code(204).send(null);
      },
    );

    app.post(
      '/lists/:id/contacts',
      {
        schema: {
          tags,
          security,
          summary: 'Add contacts to a list (idempotent)',
          params: IdParams,
          body: AddMembersBody,
          response: { 200: AddMembersResult, ...errorResponses, 404: Problem },
        },
      },
      async (request) => lists.addContacts(request.tenant.id, request.params.id, request.body.contact_ids),
    );

    app.delete(
      '/lists/:id/contacts/:contact_id',
      {
        schema: {
          tags,
          security,
          summary: 'Take a contact out of a list (the contact stays)',
          params: MemberParams,
          response: { 204: Type.Null(), 401: Problem, 404: Problem },
        },
      },
      async (request, reply) => {
        await lists.removeContact(request.tenant.id, request.params.id, request.params.contact_id);
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/lists/:id/contacts',
      {
        schema: {
          tags,
          security,
          summary: 'A list’s contacts in contact id order, with cursor pagination',
          params: IdParams,
          querystring: Page,
          response: { 200: ContactPage, ...errorResponses, 404: Problem },
        },
      },
      async (request) => lists.members(request.tenant.id, request.params.id, request.query),
    );
  };
