import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config/schema.js';
import { RelaisError } from '../../shared/errors.js';
import type { Tenant, TenantService } from '../../tenants/tenants.js';
import { CallbackUrlError, checkCallbackUrl } from '../../webhooks/targets.js';
import { Account, AccountPatch, errorResponses } from '../schemas.js';

const tags = ['account'];
const security = [{ bearerAuth: [] }];

/** The calling tenant's own settings: today, its default webhook URL. */
export const accountRoutes =
  (tenants: TenantService, webhooks: Config['webhooks']): FastifyPluginAsyncTypebox =>
  async (app) => {
    const view = (t: Tenant) => ({
      tenant_id: t.id,
      name: t.name,
      webhook_url: t.webhook_url,
      webhook_batch_size: t.webhook_batch_size,
      created_at: new Date(t.created_at).toISOString(),
    });

    app.get(
      '/account',
      { schema: { tags, security, summary: 'Your account', response: { 200: Account, ...errorResponses } } },
      async (request) => view(request.tenant),
    );

    app.patch(
      '/account',
      {
        schema: {
          tags,
          security,
          summary: 'Set the default webhook URL (null removes it) and webhook batching',
          body: AccountPatch,
          response: { 200: Account, ...errorResponses },
        },
      },
      async (request) => {
        const url = request.body.webhook_url;
        await tenants.updateWebhooks(request.tenant.id, {
          url: url === undefined || url === null ? url : checkedUrl(url, webhooks.allow_private_targets),
          batchSize: request.body.webhook_batch_size,
        });
        const tenant = await tenants.get(request.tenant.id);
        if (!tenant) throw new RelaisError('not_found', 'the account no longer exists');
        return view(tenant);
      },
    );
  };

function checkedUrl(url: string, allowPrivateTargets: boolean): string {
  try {
    return checkCallbackUrl(url, { allowPrivateTargets }).toString();
  } catch (err) {
    if (err instanceof CallbackUrlError) throw new RelaisError(err.code, err.message, 'webhook_url');
    throw err;
  }
}
