import { createHmac, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** A code of `length` decimal digits, uniform, from the operating system's cryptographic generator. */
export function generateCode(length: number): string {
  // randomInt draws uniformly below its bound (rejection sampling), up to 2^48: 10^10 fits.
  return randomInt(0, 10 ** length)
    .toString()
    .padStart(length, '0');
}

export function newSalt(): string {
  return randomBytes(16).toString('hex');
}

/**
 * HMAC-SHA256 keyed with a server secret (derived from `verify.sealing_key`, never in the database),
 * over the per-code random salt, the verification id and the code.
 *
 * Why a fast keyed hash and not scrypt/argon2: codes have 10^4 to 10^10 values, so any unkeyed hash
 * — however slow at a cost a hot path can afford — is reversed offline in seconds from a database dump.
 * What protects a stored code offline is the key, kept out of the database; what protects it online is
 * `max_attempts` (5 guesses out of 10^6 for a 6-digit code: a 1 in 200,000 chance), not the hash. The
 * salt and the id make two equal codes hash differently, so rows cannot be compared or swapped.
 */
export function hashCode(key: Buffer, salt: string, verificationId: string, code: string): string {
  return createHmac('sha256', key).update(`${salt}\0${verificationId}\0${code}`).digest('hex');
}

/** Constant-time comparison of a candidate code with the stored hash. */
export function codeMatches(
  key: Buffer,
  salt: string,
  verificationId: string,
  candidate: string,
  storedHash: string,
): boolean {
  const expected = Buffer.from(storedHash, 'hex');
  const actual = Buffer.from(hashCode(key, salt, verificationId, candidate), 'hex');
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
