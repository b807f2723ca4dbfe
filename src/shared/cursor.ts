import { RelaisError } from './errors.js';
import { type IdPrefix, isWellFormedId } from './ids.js';

/** Keyset cursors: opaque to clients, they carry the last id of the previous page. */
export function encodeCursor(id: string): string {
  return Buffer.from(id, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string, prefix: IdPrefix): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!isWellFormedId(prefix, id))
    throw new RelaisError('invalid_cursor', 'the cursor is not one this API gave', 'cursor');
  return id;
}
