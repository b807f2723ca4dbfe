import { createHmac, timingSafeEqual } from 'node:crypto';

/** HTTP header carrying the webhook signature. */
export const SIGNATURE_HEADER = 'Relais-Signature';

/** Default accepted clock difference between signing and verification, in seconds. */
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

const HEX_SHA256 = /^[0-9a-f]{64}$/;
const UNSIGNED_INT = /^\d{1,15}$/;

function hmacHex(secret: string, timestampSeconds: number, body: string): string {
  return createHmac('sha256', secret).update(`${timestampSeconds}.${body}`, 'utf8').digest('hex');
}

/**
 * Builds the `Relais-Signature` header value: `t=UNIX_SECONDS,v1=HEX` where HEX is the lowercase hex
 * HMAC-SHA256 keyed with the secret over `${t}.${body}`.
 *
 * Passing several secrets (secret rotation) yields one `v1=` entry per secret, in order:
 * `t=…,v1=<new>,v1=<old>`; receivers accept the header if any entry matches.
 */
export function signPayload(
  secret: string | readonly string[],
  body: string,
  timestampSeconds: number,
): string {
  const t = Math.floor(timestampSeconds);
  if (!Number.isFinite(t) || t < 0) throw new RangeError(`invalid signature timestamp: ${timestampSeconds}`);
  const secrets = typeof secret === 'string' ? [secret] : secret;
  if (secrets.length === 0) throw new RangeError('at least one signing secret is required');
  return [`t=${t}`, ...secrets.map((s) => `v1=${hmacHex(s, t, body)}`)].join(',');
}

export interface VerifyOptions {
  /** Current time in UNIX seconds. */
  nowSeconds: number;
  /** Maximum accepted |now - t| in seconds (default 300). */
  toleranceSeconds?: number;
}

interface ParsedSignature {
  timestamp: number;
  v1: string[];
}

/** Parses `t=…,v1=…[,v1=…]`; tolerant of whitespace and unknown schemes, strict about t. */
function parseSignatureHeader(header: string): ParsedSignature | null {
  let timestamp: number | null = null;
  const v1: string[] = [];
  for (const rawPart of header.split(',')) {
    const part = rawPart.trim();
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) return null;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') {
      if (timestamp !== null || !UNSIGNED_INT.test(value)) return null;
      timestamp = Number(value);
    } else if (key === 'v1') {
      const hex = value.toLowerCase();
      if (HEX_SHA256.test(hex)) v1.push(hex);
    }
    // Unknown schemes (v0, v2, …) are ignored so that new schemes can be added without breaking receivers.
  }
  if (timestamp === null || v1.length === 0) return null;
  return { timestamp, v1 };
}

/**
 * Verifies a `Relais-Signature` header for the exact raw request body. Returns false (never throws) for
 * malformed headers, timestamps outside the tolerance window (in either direction) and mismatching
 * signatures. Any of several `v1=` values may match. Comparison is constant-time.
 */
export function verifySignature(
  secret: string,
  body: string,
  header: string | null | undefined,
  { nowSeconds, toleranceSeconds = DEFAULT_SIGNATURE_TOLERANCE_SECONDS }: VerifyOptions,
): boolean {
  if (typeof header !== 'string' || header.length > 4096) return false;
  const parsed = parseSignatureHeader(header);
  if (parsed === null) return false;
  if (!Number.isFinite(nowSeconds) || Math.abs(nowSeconds - parsed.timestamp) > toleranceSeconds)
    return false;

  const expected = Buffer.from(hmacHex(secret, parsed.timestamp, body), 'hex');
  let matched = false;
  for (const candidate of parsed.v1) {
    const given = Buffer.from(candidate, 'hex');
    // Both are 32 bytes (the regex guarantees 64 hex digits); check anyway, timingSafeEqual throws otherwise.
    if (given.length === expected.length && timingSafeEqual(given, expected)) matched = true;
  }
  return matched;
}
