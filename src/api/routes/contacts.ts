import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ContactService } from '../../audiences/contacts.js';
import { RelaisError } from '../../shared/errors.js';
import { errorResponses, IdParams, Problem } from '../schemas.js';

/** The contacts API (docs/contacts.md). Schemas live here: they are only the audiences'. */

const tags = ['contacts'];
const security = [{ bearerAuth: [] }];
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const AttributeValue = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);

export const Contact = Type.Object({
  id: Type.String(),
  phone: Type.String({ description: 'E.164' }),
  country: Nullable(Type.String()),
  first_name: Nullable(Type.String()),
  last_name: Nullable(Type.String()),
  attributes: Type.Record(Type.String(), AttributeValue),
  timezone: Nullable(Type.String({ description: 'IANA zone; derived from the number unless set' })),
  created_at: Type.String(),
  updated_at: Type.String(),
});

export const ContactPage = Type.Object({ data: Type.Array(Contact), next_cursor: Nullable(Type.String()) });

const ContactFields = {
  country: Type.Optional(
    Type.String({ maxLength: 8, description: 'ISO 3166 country for a national-format `phone`' }),
  ),
  first_name: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  last_name: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  timezone: Type.Optional(
    Nullable(
      Type.String({ maxLength: 64, description: 'IANA zone (Europe/Paris); null: derived from the number' }),
    ),
  ),
};

const CreateContactBody = Type.Object(
  {
    phone: Type.String({
      maxLength: 64,
      description: 'E.164, or national format with `country`',
      example: '+33612345678',
    }),
    ...ContactFields,
    attributes: Type.Optional(Type.Record(Type.String(), AttributeValue, { description: 'Custom fields' })),
    list_ids: Type.Optional(
      Type.Array(Type.String({ maxLength: 64 }), { maxItems: 100, description: 'Lists to add it to' }),
    ),
  },
  { additionalProperties: false },
);

const PatchContactBody = Type.Object(
  {
    phone: Type.Optional(Type.String({ maxLength: 64 })),
    ...ContactFields,
    attributes: Type.Optional(
      Type.Record(Type.String(), Nullable(AttributeValue), { description: 'Merged in; null removes a key' }),
    ),
  },
  { additionalProperties: false },
);

export const PageQuery = {
  cursor: Type.Optional(Type.String({ maxLength: 200 })),
  limit: Type.Integer({ minimum: 1, maximum: 500, default: 50 }),
};

const ContactQuery = Type.Object(
  {
    list_id: Type.Optional(Type.String({ maxLength: 64 })),
    phone: Type.Optional(Type.String({ maxLength: 64, description: 'E.164, or national with `country`' })),
    country: Type.Optional(Type.String({ maxLength: 8 })),
    ...PageQuery,
  },
  { additionalProperties: false },
);

export const contactRoutes =
  (contacts: ContactService): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.post(
      '/contacts',
      {
        schema: {
          tags,
          security,
          summary: 'Create a contact (409 contact_exists if the number is already a contact)',
          body: CreateContactBody,
          response: { 201: Contact, ...errorResponses, 404: Problem, 409: Problem },
        },
      },
      async (request, reply) => {
        const contact = await contacts.create(request.tenant.id, request.body);
        return reply.code(201).header('Location', `/v1/contacts/${contact.id}`).send(contact);
      },
    );

    app.get(
      '/contacts/:id',
      {
        schema: {
          tags,
          security,
          summary: 'A contact',
          params: IdParams,
          response: { 200: Contact, 401: Problem, 404: Problem },
        },
      },
      async (request) => {
        const contact = await contacts.get(request.tenant.id, request.params.id);
        if (!contact) throw new RelaisError('not_found', `no contact ${request.params.id}`, 'id');
        return contact;
      },
    );

    app.patch(
      '/contacts/:id',
      {
        schema: {
          tags,
          security,
          summary: 'Change a contact (attributes are merged)',
          params: IdParams,
          body: PatchContactBody,
          response: { 200: Contact, ...errorResponses, 404: Problem, 409: Problem },
        },
      },
      async (request) => contacts.update(request.tenant.id, request.params.id, request.body),
    );

    app.delete(
      '/contacts/:id',
      {
        schema: {
          tags,
          security,
          summary: 'Delete a contact and its list memberships',
          params: IdParams,
          response: { 204: Type.Null(), 401: Problem, 404: Problem },
        },
      },
      async (request, reply) => {
        await contacts.delete(request.tenant.id, request.params.id);
        return reply.code(204).send(null);
      },
    );

    app.get(
      '/contacts',
      {
        schema: {
          tags,
          security,
          summary: 'List contacts in id order, by list or number, with cursor pagination',
          querystring: ContactQuery,
          response: { 200: ContactPage, ...errorResponses },
        },
      },
      async (request) => contacts.list(request.tenant.id, request.query),
    );
  };
