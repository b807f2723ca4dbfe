import { RelaisError } from '../shared/errors.js';
import { isGsm7 } from './encoding.js';

/**
 * Sender ids are either numeric (a short code or an international number) or alphanumeric: at most
 * 11 characters of the GSM default alphabet, with at least one letter (an all-digit alphanumeric id is
 * read by carriers as a number). Carriers differ on punctuation; we allow the common safe subset.
 */
const NUMERIC = /^\+?[0-9]{3,15}$/;
const ALPHANUMERIC_SAFE = /^[A-Za-z0-9 .\-_&'!?]+$/;

export type SenderKind = 'numeric' | 'alphanumeric';

export function validateSender(input: string, field = 'from'): { sender: string; kind: SenderKind } {
  const sender = input.trim();
  if (!sender) throw new RelaisError('invalid_sender', 'the sender id is empty', field);
  if (NUMERIC.test(sender)) return { sender, kind: 'numeric' };
  if (sender.length > 11) {
    throw new RelaisError(
      'invalid_sender',
      `alphanumeric sender ids are at most 11 characters ("${sender}" has ${sender.length})`,
      field,
    );
  }
  if (!isGsm7(sender) || !ALPHANUMERIC_SAFE.test(sender)) {
    throw new RelaisError(
      'invalid_sender',
      `"${sender}" has characters carriers refuse in a sender id (use letters, digits, space . - _ & ' ! ?)`,
      field,
    );
  }
  if (!/[A-Za-z]/.test(sender)) {
    throw new RelaisError(
      'invalid_sender',
      `"${sender}" must contain a letter, or be a number of 3 to 15 digits`,
      field,
    );
  }
  return { sender, kind: 'alphanumeric' };
}
