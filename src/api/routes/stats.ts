import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { type TLiteral, Type } from 'typebox';
import { readStats } from '../../stats/queries.js';
import { MAX_RANGE_DAYS, parseStatsQuery } from '../../stats/request.js';
import type { MessageStatus } from '../../store/schema.js';
import type { Store } from '../../store/store.js';
import { errorResponses } from '../schemas.js';

const Lane = Type.Union([Type.Literal('otp'), Type.Literal('transactional'), Type.Literal('bulk')]);
const Status = Type.Union(
  (
    [
      'accepted',
      'scheduled',
      'submitted',
      'delivered',
      'undelivered',
      'expired',
      'rejected',
      'failed',
    ] as const
  ).map((s) => Type.Literal(s)) as [TLiteral<MessageStatus>, ...TLiteral<MessageStatus>[]],
);
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

// Times and lists are plain strings here and checked by parseStatsQuery, which gives each mistake its
// own error code (a schema error on `from`/`to` would read as a sender or phone number problem).
const statsQueryFields = {
  from: Type.Optional(
    Type.String({
      description: 'ISO 8601 time with a zone, or a date (local midnight in `tz`); default: to − 24 h',
    }),
  ),
  to: Type.Optional(Type.String({ description: 'Exclusive end, same formats; default: now' })),
  group_by: Type.Optional(
    Type.String({
      description: 'Comma-separated: hour, day, lane, connector, campaign, status',
      example: 'day,status',
    }),
  ),
  tz: Type.Optional(
    Type.String({ description: 'IANA zone for `day` buckets and date-only times; default UTC' }),
  ),
  lane: Type.Optional(Lane),
  connector: Type.Optional(Type.String()),
  campaign_id: Type.Optional(Type.String()),
  status: Type.Optional(Status),
};

export const StatsQuerystring = Type.Object(statsQueryFields, { additionalProperties: false });
export const AdminStatsQuerystring = Type.Object(
  {
    ...statsQueryFields,
    group_by: Type.Optional(
      Type.String({ description: 'Comma-separated: hour, day, lane, connector, campaign, status, tenant' }),
    ),
    tenant_id: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const figureFields = {
  messages: Type.Integer({ description: 'Status entries counted in this group' }),
  segments: Type.Integer(),
  accepted: Type.Integer({ description: 'Messages created (accepted or scheduled)' }),
  submitted: Type.Integer(),
  delivered: Type.Integer(),
  failed: Type.Integer({ description: 'undelivered + rejected + failed + expired' }),
  delivery_rate: Nullable(Type.Number({ description: 'delivered / (delivered + failed)' })),
};

export const StatsAnswer = Type.Object({
  from: Type.String(),
  to: Type.String(),
  tz: Type.String(),
  group_by: Type.Array(Type.String()),
  data: Type.Array(
    Type.Object({
      hour: Type.Optional(Type.String()),
      day: Type.Optional(Type.String()),
      tenant_id: Type.Optional(Type.String()),
      lane: Type.Optional(Lane),
      connector: Type.Optional(Nullable(Type.String())),
      campaign_id: Type.Optional(Nullable(Type.String())),
      status: Type.Optional(Status),
      ...figureFields,
    }),
  ),
  totals: Type.Object(figureFields),
});

export const statsDescription =
  `Counts from hourly rollups (messages entering each status in each hour), never from the message ` +
  `history. The range is widened to whole hours; at most ${MAX_RANGE_DAYS} days.`;

/** GET /v1/stats: the calling tenant's statistics. */
export const statsRoutes =
  (store: Store): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/stats',
      {
        schema: {
          tags: ['statistics'],
          security: [{ bearerAuth: [] }],
          summary: 'Message statistics per hour, day, lane, connector, campaign or status',
          description: statsDescription,
          querystring: StatsQuerystring,
          response: { 200: StatsAnswer, ...errorResponses },
        },
      },
      async (request) => {
        const q = parseStatsQuery(request.query, Date.now(), false);
        q.filters.tenantId = request.tenant.id;
        return readStats(store.db, q);
      },
    );
  };
