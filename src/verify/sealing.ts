import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config/schema.js';

/**
 * Verification texts carry the code, so `messages.body` keeps them masked and the real text is stored
 * sealed (AES-256-GCM, tenant id as associated data) in `messages.sealed_body`, opened only by the
 * dispatcher when it sends the SMS. The same secret also keys the code hashes (src/verify/codes.ts).
 *
 * Sealed form: `v1.<key id>.<base64url(iv ‖ tag ‖ ciphertext)>`. The key id (a fingerprint of the
 * derived key, which reveals nothing about it) lets `unsealText` find the right key in a process that
 * holds several (tests run many platforms in one process; a future key rotation keeps the old one).
 */

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_FILE = 'verify.key';

export class Sealer {
  readonly keyId: string;
  /** HMAC key for code hashes: never stored in the database, so a dump alone cannot test codes. */
  readonly codeKey: Buffer;
  private readonly key: Buffer;

  constructor(secret: Buffer | string) {
    const ikm = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret;
    const derive = (info: string) => Buffer.from(hkdfSync('sha256', ikm, 'relais-verify', info, 32));
    this.key = derive('sealing v1');
    this.codeKey = derive('code hash v1');
    this.keyId = createHash('sha256').update(derive('key id v1')).digest('hex').slice(0, 12);
  }

  seal(plain: string, associated: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(associated, 'utf8'));
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    const blob = Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64url');
    return `${VERSION}.${this.keyId}.${blob}`;
  }

  /** Throws when the text was not sealed with this key, or was altered. */
  unseal(sealed: string, associated: string): string {
    const [version, keyId, blob] = sealed.split('.');
    if (version !== VERSION || keyId !== this.keyId || !blob) throw new Error('not sealed with this key');
    const raw = Buffer.from(blob, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(associated, 'utf8'));
    decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
      'utf8',
    );
  }
}

/** Sealers this process can open texts with, by key id. */
const registry = new Map<string, Sealer>();
let onFailure: ((messageId: string, reason: string) => void) | null = null;

export function registerSealer(
  sealer: Sealer,
  failureListener?: (messageId: string, reason: string) => void,
) {
  registry.set(sealer.keyId, sealer);
  if (failureListener) onFailure = failureListener;
}

/**
 * The dispatcher's side (WorkQueue.claim): the real text of a message with a sealed body. If it cannot
 * be opened (a node configured with another `verify.sealing_key`), the masked text is sent rather than
 * stopping the dispatch of everything claimed with it — it never carries the code — and the failure is
 * logged by the service that registered the key.
 */
export function unsealText(sealed: string, tenantId: string, messageId: string, masked: string): string {
  const keyId = sealed.split('.')[1] ?? '';
  const sealer = registry.get(keyId);
  try {
    if (!sealer) throw new Error(`no sealing key ${keyId} in this process (verify.sealing_key differs?)`);
    return sealer.unseal(sealed, tenantId);
  } catch (err) {
    onFailure?.(messageId, (err as Error).message);
    return masked;
  }
}

export interface SealingSecret {
  secret: Buffer;
  source: 'config' | 'file';
  /** The key file, when the secret comes from (or was just written to) one. */
  path?: string;
  created?: boolean;
  /** The key file is readable by other users. */
  looseMode?: boolean;
}

/**
 * `verify.sealing_key` when configured; else DATA_DIR/verify.key, created at first start (32 random
 * bytes, hex, mode 0600). `wx` makes creation atomic: two processes starting together end up with the
 * same file.
 */
export function loadSealingSecret(config: Config): SealingSecret {
  if (config.verify.sealing_key)
    return { secret: Buffer.from(config.verify.sealing_key, 'utf8'), source: 'config' };
  const path = join(config.data_dir, KEY_FILE);
  let created = false;
  mkdirSync(config.data_dir, { recursive: true });
  try {
    writeFileSync(path, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const text = readFileSync(path, 'utf8').trim();
  if (text.length < 32) throw new Error(`${path}: expected a secret of at least 32 characters`);
  const looseMode = (statSync(path).mode & 0o077) !== 0;
  return { secret: Buffer.from(text, 'utf8'), source: 'file', path, created, looseMode };
}
