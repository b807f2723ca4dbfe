import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { Config } from '../../config/schema.js';
import { RelaisError } from '../../shared/errors.js';
import { checkOptoutMention, type Tenant, type TenantService } from '../../tenants/tenants.js';
import { CallbackUrlError, checkCallbackUrl } from '../../webhooks/targets.js';
import { Account, AccountPatch, errorResponses } from '../schemas.js';

const tags = ['account'];
const security = [{ bearerAuth: [] }];

const optoutMention = Type.Union([Type.String({ maxLength: 200 }), Type.Null()], {
  description:
    'Appended to every bulk message on its own line (French rule), e.g. "STOP au 36111"; null: none',
});
const AccountView = Type.Object({ ...Account.properties, optout_mention: optoutMention });
const AccountChanges = Type.Object(
  { ...AccountPatch.properties, optout_mention: Type.Optional(optoutMention) },
  { additionalProperties: false },
);

/** The calling tenant's own settings: its default webhook URL, webhook batching, its opt-out mention. */
export const accountRoutes =
  (tenants: TenantService, webhooks: Config['webhooks']): FastifyPluginAsyncTypebox =>
  async (app) => {
    const view = (t: Tenant) => ({
      tenant_id: t.id,
      name: t.name,
      webhook_url: t.webhook_url,
      webhook_batch_size: t.webhook_batch_size,
      optout_mention: t.optout_mention,
      created_at: new Date(t.created_at).toISOString(),
    });

    app.get(
      '/account',
      {
        schema: {
          tags,
          security,
          summary: 'Your account',
          response: { 200: AccountView, ...errorResponses },
        },
      },
      async (request) => view(request.tenant),
    );

    app.patch(
      '/account',
      {
        schema: {
          tags,
          security,
          summary: 'Set the default webhook URL (null removes it), webhook batching and the opt-out mention',
          body: AccountChanges,
          response: { 200: AccountView, ...errorResponses },
        },
      },
      async (request) => {
        const url = request.body.webhook_url;
        // Checked before anything is written: a bad mention must not leave a half-applied PATCH.
        const mention =
          request.body.optout_mention === undefined
            ? undefined
            : checkOptoutMention(request.body.optout_mention);
        await tenants.updateWebhooks(request.tenant.id, {
          url: url === undefined || url === null ? url : checkedUrl(url, webhooks.allow_private_targets),
          batchSize: request.body.webhook_batch_size,
        });
        if (mention !== undefined) await tenants.updateOptoutMention(request.tenant.id, mention);
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
