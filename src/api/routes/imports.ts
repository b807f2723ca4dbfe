import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { ImportService } from '../../audiences/csv-import.js';
import { RelaisError } from '../../shared/errors.js';
import { errorResponses, IdParams, Problem } from '../schemas.js';
import { PageQuery } from './contacts.js';

/** CSV imports into lists (docs/contacts.md#importing-a-csv-file). */

const tags = ['contacts'];
const security = [{ bearerAuth: [] }];
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

const Import = Type.Object({
  id: Type.String(),
  list_id: Type.String(),
  status: Type.Union([Type.Literal('running'), Type.Literal('completed'), Type.Literal('failed')]),
  default_country: Nullable(Type.String()),
  phone_column: Nullable(Type.String()),
  total: Type.Integer({ description: 'Data rows read so far' }),
  imported: Type.Integer({ description: 'Rows that added a contact to the list' }),
  invalid: Type.Integer({ description: 'Rows refused (see errors_url)' }),
  duplicates: Type.Integer({
    description: 'Rows whose number was already in the list or earlier in the file',
  }),
  bytes: Type.Integer(),
  error_code: Nullable(Type.String()),
  error: Nullable(Type.String()),
  errors_url: Type.String(),
  created_at: Type.String(),
  updated_at: Type.String(),
  completed_at: Nullable(Type.String()),
});

const ImportQuery = Type.Object(
  {
    default_country: Type.Optional(
      Type.String({
        maxLength: 8,
        description: 'ISO 3166 country of national-format numbers',
        example: 'FR',
      }),
    ),
    phone_column: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 200,
        description: 'Header of the phone column (default: found by name)',
      }),
    ),
  },
  { additionalProperties: false },
);

const ImportListQuery = Type.Object(
  { list_id: Type.Optional(Type.String({ maxLength: 64 })), ...PageQuery },
  { additionalProperties: false },
);

export const importRoutes =
  (imports: ImportService): FastifyPluginAsyncTypebox =>
  async (app) => {
    // This scope reads CSV bodies as raw streams (never buffered, not bound by http.body_limit_bytes);
    // anything else is refused with a clear 415.
    app.removeAllContentTypeParsers();
    app.addContentTypeParser(['text/csv', 'application/csv'], (_request, payload, done) =>
      done(null, payload),
    );
    app.addContentTypeParser('*', (request, _payload, done) =>
      done(
        new RelaisError(
          'unsupported_media_type',
          `send the CSV file with Content-Type: text/csv (got ${request.headers['content-type'] ?? 'none'})`,
        ),
        undefined,
      ),
    );

    app.post(
      '/lists/:id/import',
      {
        schema: {
          tags,
          security,
          summary: 'Import a CSV file (Content-Type: text/csv) into a list; runs in the background',
          description:
            'A header row with a phone column is required; first_name, last_name and timezone columns map to those fields, every other column becomes an attribute. Answered 202 once the file is stored; follow GET /v1/imports/{id}.',
          params: IdParams,
          querystring: ImportQuery,
          consumes: ['text/csv'],
          response: { 202: Import, ...errorResponses, 404: Problem, 413: Problem, 415: Problem },
        },
      },
      async (request, reply) => {
        const length = request.headers['content-length'];
        const view = await imports.upload(request.tenant.id, request.params.id, request.body, {
          contentLength: length === undefined ? undefined : Number(length),
          defaultCountry: request.query.default_country,
          phoneColumn: request.query.phone_column,
        });
        return reply.code(202).header('Location', `/v1/imports/${view.id}`).send(view);
      },
    );

    app.get(
      '/imports',
      {
        schema: {
          tags,
          security,
          summary: 'Your imports, newest first, with cursor pagination',
          querystring: ImportListQuery,
          response: {
            200: Type.Object({ data: Type.Array(Import), next_cursor: Nullable(Type.String()) }),
            ...errorResponses,
          },
        },
      },
      async (request) => imports.list(request.tenant.id, request.query),
    );

    app.get(
      '/imports/:id',
      {
        schema: {
          tags,
          security,
          summary: 'An import’s status and counts (live while it runs)',
          params: IdParams,
          response: { 200: Import, 401: Problem, 404: Problem },
        },
      },
      async (request) => {
        const view = await imports.get(request.tenant.id, request.params.id);
        if (!view) throw new RelaisError('not_found', `no import ${request.params.id}`, 'id');
        return view;
      },
    );

    app.get(
      '/imports/:id/errors',
      {
        schema: {
          tags,
          security,
          summary: 'The rejected rows as CSV: line (in your file), value, reason',
          params: IdParams,
          produces: ['text/csv'],
          response: { 401: Problem, 404: Problem },
        },
      },
      async (request, reply) => {
        const view = await imports.get(request.tenant.id, request.params.id);
        if (!view) throw new RelaisError('not_found', `no import ${request.params.id}`, 'id');
        return reply
          .type('text/csv; charset=utf-8')
          .header('Content-Disposition', `attachment; filename="${view.id}-errors.csv"`)
          .send(Readable.from(imports.errorsCsv(view.id)) as never); // streamed, page by page
      },
    );
  };
