import { normaliseCarrierId } from '../smpp/receipt.js';

export type ReceiptIdFormat = 'auto' | 'hex' | 'decimal';

/**
 * The key a part is filed under once the carrier answered submit_sm_resp. Carriers write their ids
 * in hex or decimal; the key is the id as a lowercase hex number (or the id itself when not numeric).
 */
export function submitKey(carrierId: string, format: ReceiptIdFormat): string {
  return normaliseCarrierId(carrierId, format === 'auto' ? 'auto' : 'hex');
}

/**
 * Keys under which a receipt's id may have been filed, most likely first:
 * - `hex`: receipts repeat the submit_sm_resp id in hex;
 * - `decimal`: submit_sm_resp ids are hex but receipts give the same number in decimal (common);
 * - `auto`: try the id as written, then, if it is all digits, as the decimal form of a hex id.
 */
export function receiptKeys(receiptId: string, format: ReceiptIdFormat): string[] {
  if (format === 'hex') return [normaliseCarrierId(receiptId, 'hex')];
  if (format === 'decimal') return [normaliseCarrierId(receiptId, 'decimal')];
  const keys = [normaliseCarrierId(receiptId, 'auto')];
  if (/^\d+$/.test(receiptId.trim())) {
    const asDecimal = normaliseCarrierId(receiptId, 'decimal');
    if (!keys.includes(asDecimal)) keys.push(asDecimal);
  }
  return keys;
}
