import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.js';
import type { MessageService } from '../messages/service.js';
import type { Metrics } from '../observability/metrics.js';
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
import { messageRoutes } from './routes/messages.js';
import { operationsRoutes, type Readiness } from './routes/operations.js';
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
      if (deps.verify) await v1.register(verificationRoutes(deps.verify));
    },
    { prefix: '/v1' },
  );
  // The operator's API: tenants' numbers, platform statistics. Register operator routes here.
  await app.register(
    async (admin) => {
      requireAdminToken(admin, deps.config.admin.token);
    },
    { prefix: '/admin' },
  );
  return app;
}
