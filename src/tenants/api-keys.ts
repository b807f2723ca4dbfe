import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API keys look like `rl_<prefix>_<secret>`: the prefix (public, unique, indexed) finds the row, the
 * secret is only ever stored as a SHA-256 hash. A fast hash is right here, unlike for passwords:
 * the secret is 256 random bits, so there is nothing to brute-force offline.
 */
const PREFIX_BYTES = 6;
const SECRET_BYTES = 32;
const KEY_PATTERN = /^rl_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;

export interface GeneratedKey {
  key: string;
  prefix: string;
  secretHash: string;
}

export function generateApiKey(): GeneratedKey {
  const prefix = randomBytes(PREFIX_BYTES).toString('hex');
  const secret = randomBytes(SECRET_BYTES).toString('base64url');
  return { key: `rl_${prefix}_${secret}`, prefix, secretHash: secretHash(secret) };
}

export function parseApiKey(key: string): { prefix: string; secret: string } | null {
  const m = KEY_PATTERN.exec(key);
  return m ? { prefix: m[1]!, secret: m[2]! } : null;
}

export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(secretHash(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

export function secretHash(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64url')}`;
}
