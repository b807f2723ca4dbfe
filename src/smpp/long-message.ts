// Splitting a text into submit_sm short_messages, and reading the User Data Header back.
//
// Concatenation uses a UDH in short_message (3GPP TS 23.040 §9.2.3.24.1) with esm_class UDHI set
// (SMPP 3.4 §5.2.12), not the sar_* TLVs: every SMSC supports the UDH, fewer honour SAR. GSM-7 travels
// unpacked, one septet per octet (data_coding 0); the SMSC packs it for the air interface, where a 6-octet
// UDH costs 7 septets and leaves the 153 that analyzeText counted.

import { analyzeText, encodeGsm7, encodeUcs2 } from '../messages/encoding.js';
import { DataCoding, EsmClass } from './constants.js';

export interface SubmitPart {
  dataCoding: number;
  /** EsmClass.UDHI for a part of a concatenated message, else 0; OR in the messaging mode bits. */
  esmClass: number;
  shortMessage: Buffer;
}

/** IEIs of TS 23.040 §9.2.3.24: concatenated SM with 8-bit and 16-bit reference. */
const IEI_CONCAT_8 = 0x00;
const IEI_CONCAT_16 = 0x08;

/**
 * The short_messages for `text`, split exactly where analyzeText counted. A multipart message gets a
 * UDH `05 00 03 <reference> <total> <seq>`; `reference` (0-255) must differ between the concatenated
 * messages in flight to one recipient. The empty text gives one empty part (SMPP allows sm_length 0).
 */
export function buildSubmitParts(text: string, reference: number): SubmitPart[] {
  if (!Number.isInteger(reference) || reference < 0 || reference > 0xff) {
    throw new RangeError(`concatenation reference must be an integer in 0..255, got ${reference}`);
  }
  const analysis = analyzeText(text);
  const ucs2 = analysis.encoding === 'UCS-2';
  const dataCoding = ucs2 ? DataCoding.UCS2 : DataCoding.SMSC_DEFAULT;
  const encode = ucs2 ? encodeUcs2 : encodeGsm7;
  const parts = analysis.parts.length > 0 ? analysis.parts : [''];
  if (parts.length === 1) return [{ dataCoding, esmClass: 0, shortMessage: encode(parts[0]!) }];
  if (parts.length > 0xff) throw new RangeError(`${parts.length} parts; a UDH can number at most 255`);

  return parts.map((part, i) => {
    const udh = Buffer.from([0x05, IEI_CONCAT_8, 0x03, reference, parts.length, i + 1]);
    return { dataCoding, esmClass: EsmClass.UDHI, shortMessage: Buffer.concat([udh, encode(part)]) };
  });
}

export interface ConcatInfo {
  reference: number;
  /** 8 for IEI 0x00, 16 for IEI 0x08. */
  referenceBits: 8 | 16;
  total: number;
  /** 1-based. */
  seq: number;
}

export interface ParsedUdh {
  /** Null when the UDH holds no (valid) concatenation element. */
  concat: ConcatInfo | null;
  /** Octets taken by the UDH, its length octet included. */
  headerLength: number;
  /** The user data after the UDH, still in the message's data_coding. */
  payload: Buffer;
}

/**
 * Reads the UDH at the start of a short_message whose esm_class has UDHI set. Returns null if the
 * header is malformed (its length runs past the message, or an element past the header). Other
 * elements (ports, national language shifts…) are skipped. A concatenation element with total 0 or
 * seq outside 1..total is ignored, as TS 23.040 §9.2.3.24.1 requires.
 */
export function parseUdh(shortMessage: Uint8Array): ParsedUdh | null {
  const bytes = Buffer.from(shortMessage.buffer, shortMessage.byteOffset, shortMessage.byteLength);
  if (bytes.length < 1) return null;
  const headerLength = bytes[0]! + 1;
  if (headerLength > bytes.length) return null;

  let concat: ConcatInfo | null = null;
  let at = 1;
  while (at < headerLength) {
    if (at + 2 > headerLength) return null;
    const iei = bytes[at]!;
    const length = bytes[at + 1]!;
    const data = at + 2;
    if (data + length > headerLength) return null;
    if (iei === IEI_CONCAT_8 && length === 3) {
      concat = validConcat(bytes[data]!, 8, bytes[data + 1]!, bytes[data + 2]!) ?? concat;
    } else if (iei === IEI_CONCAT_16 && length === 4) {
      concat = validConcat(bytes.readUInt16BE(data), 16, bytes[data + 2]!, bytes[data + 3]!) ?? concat;
    }
    at = data + length;
  }
  return { concat, headerLength, payload: Buffer.from(bytes.subarray(headerLength)) };
}

function validConcat(
  reference: number,
  referenceBits: 8 | 16,
  total: number,
  seq: number,
): ConcatInfo | null {
  return total >= 1 && seq >= 1 && seq <= total ? { reference, referenceBits, total, seq } : null;
}
