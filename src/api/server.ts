import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Audiences } from '../audiences/audiences.js';
import type { CampaignService } from '../campaigns/campaign-service.js';
import type { Config } from '../config/schema.js';
import type { NumberService } from '../inbound/numbers.js';
import type { MessageService } from '../messages/service.js';
import type { Metrics } from '../observability/metrics.js';
import type { OptoutService } from '../optouts/optout-service.js';
import { newId } from '../shared/ids.js';
import type { Logger } from '../shared/logger.js';
import type { Store } from '../store/store.js';
import type { TenantService } from '../tenants/tenants.js';
import type { VerifyService } from '../verify/service.js';
import { requireAdminToken } from './admin-auth.js';
import { requireApiKey } from './auth.js';
import { IdempotencyGuard } from './idempotency.js';
import { installErrorHandling } from './problems.js';
import { accountRoutes } from './routes/account.js';
import { campaignRoutes } from './routes/campaigns.js';
import { contactRoutes } from './routes/contacts.js';
import { importRoutes } from './routes/imports.js';
import { inboundRoutes } from './routes/inbound.js';
import { listRoutes } from './routes/lists.js';
import { messageRoutes } from './routes/messages.js';
import { numbersAdminRoutes } from './routes/numbers-admin.js';
import { operationsRoutes, type Readiness } from './routes/operations.js';
import { optoutRoutes } from './routes/optouts.js';
import { statsRoutes } from './routes/stats.js';
import { adminStatsRoutes } from './routes/stats-admin.js';
import { verificationRoutes } from './routes/verifications.js';
import { webhookEventRoutes } from './routes/webhook-events.js';
import { installValidators } from './validation.js';

export interface ApiDeps {
  config: Config;
  logger: Logger;
  store: Store;
  tenants: TenantService;
  messages: MessageService;
  verify?: VerifyService;
  campaigns?: CampaignService;
  audiences?: Audiences;
  /** Opt-out list (/v1/optouts) and inbound numbers (/v1/inbound, /admin/numbers). */
  optouts?: OptoutService;
  numbers?: NumberService;
  metrics: Metrics;
  readiness: () => Promise<Readiness>;
}

/** The HTTP API as a Fastify instance; tests drive it with inject() or over a real port. */
export async function buildHttpServer(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.config.http.body_limit_bytes,
    trustProxy: deps.config.http.trust_proxy,
    genReqId: () => newId('req'),
  }).withTypeProvider<TypeBoxTypeProvider>();

  installValidators(app);
  installErrorHandling(app);
  // Latency per route (the route pattern, not the URL: bounded label values).
  app.addHook('onResponse', (request, reply, done) => {
    deps.metrics.httpSeconds.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
    done();
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Relais API',
        version: '1',
        description:
          'Send SMS, follow their delivery, receive signed webhooks. Errors are RFC 9457 problem details.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  operationsRoutes(app, {
    metrics: deps.metrics,
    metricsToken: deps.config.metrics.token,
    readiness: deps.readiness,
  });

  const idempotency = new IdempotencyGuard(deps.store);
  await app.register(
    async (v1) => {
      requireApiKey(v1, deps.tenants);
      await v1.register(messageRoutes({ store: deps.store, messages: deps.messages, idempotency }));
      await v1.register(webhookEventRoutes(deps.store));
      await v1.register(accountRoutes(deps.tenants, deps.config.webhooks));
      await v1.register(statsRoutes(deps.store));
      if (deps.verify) await v1.register(verificationRoutes(deps.verify));
      if (deps.optouts) await v1.register(optoutRoutes(deps.optouts));
      await v1.register(inboundRoutes(deps.store));
      if (deps.campaigns) await v1.register(campaignRoutes(deps.campaigns));
      if (deps.audiences) {
        await v1.register(contactRoutes(deps.audiences.contacts));
        await v1.register(listRoutes(deps.audiences.lists));
        await v1.register(importRoutes(deps.audiences.imports));
      }
    },
    { prefix: '/v1' },
  );
  // The operator's API: tenants' numbers, platform statistics. Register operator routes here.
  await app.register(
    async (admin) => {
      requireAdminToken(admin, deps.config.admin.token);
      await admin.register(adminStatsRoutes(deps.store));
      if (deps.numbers) await admin.register(numbersAdminRoutes(deps.numbers));
    },
    { prefix: '/admin' },
  );
  return app;
}
