import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { readStats } from '../../stats/queries.js';
import { parseStatsQuery } from '../../stats/request.js';
import type { Store } from '../../store/store.js';
import { Problem } from '../schemas.js';
import { AdminStatsQuerystring, StatsAnswer, statsDescription } from './stats.js';

/** GET /admin/stats: the operator's view across tenants, filterable and groupable by tenant. */
export const adminStatsRoutes =
  (store: Store): FastifyPluginAsyncTypebox =>
  async (app) => {
    app.get(
      '/stats',
      {
        schema: {
          tags: ['operator'],
          security: [{ bearerAuth: [] }],
          summary: 'Platform statistics across tenants (operator token)',
          description: statsDescription,
          querystring: AdminStatsQuerystring,
          response: { 200: StatsAnswer, 400: Problem, 401: Problem, 403: Problem },
        },
      },
      async (request) => readStats(store.db, parseStatsQuery(request.query, Date.now(), true)),
    );
  };
