import { readFileSync } from 'node:fs';

/**
 * Reads a PEM file named in the configuration (a CA, a certificate, a key). The error names the
 * setting and the path, so a typo stops the start with a sentence an operator can act on.
 */
export function readPemFile(setting: string, path: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (err) {
    throw new Error(`${setting}: cannot read ${path}: ${(err as NodeJS.ErrnoException).message}`);
  }
  if (!pem.includes('-----BEGIN ')) throw new Error(`${setting}: ${path} is not a PEM file`);
  return pem;
}
