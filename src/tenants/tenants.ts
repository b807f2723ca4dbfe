import type { Clock } from '../shared/clock.js';
import { RelaisError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Store, Trx } from '../store/store.js';
import {
  type GeneratedKey,
  generateApiKey,
  generateWebhookSecret,
  parseApiKey,
  secretHash,
  secretMatches,
} from './api-keys.js';

/**
 * How long a successful authentication is reused without asking the database; past half of it, the
 * next request still uses it but re-checks it in the background, so a key in steady use never waits
 * for the lookup. Changes made through this process (revocation, webhook settings, opt-out mention)
 * clear the cache at once; changes made by another process (the CLI, another node) reach a running
 * server within this delay. On PostgreSQL the lookup was a round trip on every request, an OTP's
 * included (p99 7 ms under load).
 */
const AUTH_REUSE_MS = 500;
const AUTH_CACHE_MAX = 10_000;

export interface Tenant {
  id: string;
  name: string;
  status: 'active' | 'suspended';
  webhook_url: string | null;
  webhook_batch_size: number;
  /** Appended to bulk messages (French rule: "STOP au 36111"); null: none. */
  optout_mention: string | null;
  created_at: number;
}

export interface CreatedTenant {
  tenant_id: string;
  name: string;
  api_key: string;
  api_key_id: string;
  webhook_secret: string;
}

export interface AuthenticatedKey {
  tenant: Tenant;
  keyId: string;
}

/** Tenants and their API keys: creation, rotation, revocation and request authentication. */
export class TenantService {
  /** By key prefix and secret hash (never the secret itself); monotonic times. */
  private readonly recentAuth = new Map<string, { auth: AuthenticatedKey; at: number; checking: boolean }>();
  private authGeneration = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  async create(input: {
    name: string;
    webhookUrl?: string | null;
    webhookBatchSize?: number;
    optoutMention?: string | null;
  }): Promise<CreatedTenant> {
    const name = input.name.trim();
    if (!name) throw new RelaisError('invalid_field', 'tenant name must not be empty', 'name');
    const optoutMention = checkOptoutMention(input.optoutMention ?? null);
    const now = this.clock.now();
    const tenantId = newId('ten', now);
    const webhookSecret = generateWebhookSecret();
    const key = generateApiKey();
    const keyId = newId('key', now);
    await this.store.write(async (trx) => {
      await trx
        .insertInto('tenants')
        .values({
          id: tenantId,
          name,
          status: 'active',
          webhook_url: input.webhookUrl ?? null,
          webhook_secret: webhookSecret,
          webhook_batch_size: input.webhookBatchSize ?? 0,
          optout_mention: optoutMention,
          created_at: now,
        })
        .execute();
      await insertKey(trx, tenantId, keyId, key, 'default', now);
    });
    return { tenant_id: tenantId, name, api_key: key.key, api_key_id: keyId, webhook_secret: webhookSecret };
  }

  async get(tenantId: string): Promise<Tenant | undefined> {
    return this.store.db
      .selectFrom('tenants')
      .select(['id', 'name', 'status', 'webhook_url', 'webhook_batch_size', 'optout_mention', 'created_at'])
      .where('id', '=', tenantId)
      .executeTakeFirst();
  }

  async list(): Promise<Tenant[]> {
    return this.store.db
      .selectFrom('tenants')
      .select(['id', 'name', 'status', 'webhook_url', 'webhook_batch_size', 'optout_mention', 'created_at'])
      .orderBy('id')
      .execute();
  }

  async updateWebhooks(
    tenantId: string,
    changes: { url?: string | null; batchSize?: number },
  ): Promise<void> {
    const set: { webhook_url?: string | null; webhook_batch_size?: number } = {};
    if (changes.url !== undefined) set.webhook_url = changes.url;
    if (changes.batchSize !== undefined) set.webhook_batch_size = changes.batchSize;
    if (Object.keys(set).length === 0) return;
    await this.store.write((trx) => trx.updateTable('tenants').set(set).where('id', '=', tenantId).execute());
    this.forgetAuth();
  }

  /** Sets (or with null removes) the opt-out mention appended to the tenant's bulk messages. */
  async updateOptoutMention(tenantId: string, mention: string | null): Promise<void> {
    const value = checkOptoutMention(mention);
    const result = await this.store.write((trx) =>
      trx.updateTable('tenants').set({ optout_mention: value }).where('id', '=', tenantId).executeTakeFirst(),
    );
    this.forgetAuth();
    if (Number(result.numUpdatedRows) === 0)
      throw new RelaisError('not_found', `no tenant ${tenantId}`, 'tenant');
  }

  async createKey(tenantId: string, name?: string): Promise<{ api_key: string; api_key_id: string }> {
    const tenant = await this.get(tenantId);
    if (!tenant) throw new RelaisError('not_found', `no tenant ${tenantId}`, 'tenant');
    const now = this.clock.now();
    const key = generateApiKey();
    const keyId = newId('key', now);
    await this.store.write((trx) => insertKey(trx, tenantId, keyId, key, name ?? null, now));
    return { api_key: key.key, api_key_id: keyId };
  }

  async listKeys(tenantId: string) {
    return this.store.db
      .selectFrom('api_keys')
      .select(['id', 'prefix', 'name', 'created_at', 'revoked_at'])
      .where('tenant_id', '=', tenantId)
      .orderBy('id')
      .execute();
  }

  async revokeKey(keyId: string): Promise<boolean> {
    const result = await this.store.write((trx) =>
      trx
        .updateTable('api_keys')
        .set({ revoked_at: this.clock.now() })
        .where('id', '=', keyId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst(),
    );
    this.forgetAuth();
    return Number(result.numUpdatedRows) > 0;
  }

  private forgetAuth(): void {
    this.recentAuth.clear();
    this.authGeneration++;
  }

  /** The tenant behind a bearer key, or null for anything unknown, malformed, revoked or suspended. */
  async authenticate(apiKey: string): Promise<AuthenticatedKey | null> {
    const parsed = parseApiKey(apiKey);
    if (!parsed) return null;
    const cacheKey = `${parsed.prefix}:${secretHash(parsed.secret)}`;
    const recent = this.recentAuth.get(cacheKey);
    const age = recent ? performance.now() - recent.at : Number.POSITIVE_INFINITY;
    if (recent && age < AUTH_REUSE_MS) {
      if (age >= AUTH_REUSE_MS / 2 && !recent.checking) {
        recent.checking = true;
        this.lookUp(parsed, cacheKey).catch(() => {
          recent.checking = false;
        });
      }
      return recent.auth;
    }
    return this.lookUp(parsed, cacheKey);
  }

  /** The database's answer for a key, remembered when positive and forgotten when not. */
  private async lookUp(
    parsed: { prefix: string; secret: string },
    cacheKey: string,
  ): Promise<AuthenticatedKey | null> {
    const generation = this.authGeneration;
    const row = await this.store.db
      .selectFrom('api_keys')
      .innerJoin('tenants', 'tenants.id', 'api_keys.tenant_id')
      .select([
        'api_keys.id as key_id',
        'api_keys.secret_hash',
        'api_keys.revoked_at',
        'tenants.id',
        'tenants.name',
        'tenants.status',
        'tenants.webhook_url',
        'tenants.webhook_batch_size',
        'tenants.optout_mention',
        'tenants.created_at',
      ])
      .where('api_keys.prefix', '=', parsed.prefix)
      .executeTakeFirst();
    if (
      !row ||
      row.revoked_at !== null ||
      row.status !== 'active' ||
      !secretMatches(parsed.secret, row.secret_hash)
    ) {
      this.recentAuth.delete(cacheKey);
      return null;
    }
    const auth: AuthenticatedKey = {
      keyId: row.key_id,
      tenant: {
        id: row.id,
        name: row.name,
        status: row.status,
        webhook_url: row.webhook_url,
        webhook_batch_size: row.webhook_batch_size,
        optout_mention: row.optout_mention,
        created_at: row.created_at,
      },
    };
    // A change this process made meanwhile wins over an answer read before it.
    if (generation !== this.authGeneration) return auth;
    if (this.recentAuth.size >= AUTH_CACHE_MAX) this.recentAuth.clear();
    this.recentAuth.set(cacheKey, { auth, at: performance.now(), checking: false });
    return auth;
  }
}

function insertKey(
  trx: Trx,
  tenantId: string,
  keyId: string,
  key: GeneratedKey,
  name: string | null,
  now: number,
) {
  return trx
    .insertInto('api_keys')
    .values({
      id: keyId,
      tenant_id: tenantId,
      prefix: key.prefix,
      secret_hash: key.secretHash,
      name,
      created_at: now,
      revoked_at: null,
    })
    .execute();
}

/**
 * An opt-out mention is one short line ("STOP au 36111"): it is added to every bulk message and paid
 * for in segments. Blank means none.
 */
export function checkOptoutMention(mention: string | null): string | null {
  if (mention === null) return null;
  const value = mention.trim();
  if (value === '') return null;
  if (value.length > 40 || /[\r\n]/.test(value)) {
    throw new RelaisError(
      'invalid_optout_mention',
      'the opt-out mention is one line of at most 40 characters, like "STOP au 36111"',
      'optout_mention',
    );
  }
  return value;
}
