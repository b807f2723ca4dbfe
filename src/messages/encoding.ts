// SMS text encoding and segmentation.
//
// Character sets follow 3GPP TS 23.038 (GSM 03.38):
//   - §6.2.1   GSM 7 bit default alphabet (the "basic" table, 128 septets)
//   - §6.2.1.1 GSM 7 bit default alphabet extension table (reached through the escape septet 0x1B)
// Segment sizes follow 3GPP TS 23.040 §9.2.3.24.1: a concatenated part loses 6 octets of its 140 to the
// User Data Header, leaving 153 septets (GSM-7) or 67 UCS-2 units.
//
// This runs for every accepted message, so classification uses precomputed tables indexed by char code
// rather than regexes or per-call Map lookups.

export type Encoding = 'GSM-7' | 'UCS-2';

export interface TextAnalysis {
  encoding: Encoding;
  /** Septets for GSM-7 (escaped chars count 2), UTF-16 code units for UCS-2 (non-BMP chars count 2). */
  units: number;
  /** Number of SMS parts; 0 only for the empty text. */
  segments: number;
  /** The text of each part, in order; their concatenation equals the input. */
  parts: string[];
}

const ESC = 0x1b;

export const GSM7_SINGLE_MAX = 160;
export const GSM7_PART_MAX = 153;
export const UCS2_SINGLE_MAX = 70;
export const UCS2_PART_MAX = 67;

// TS 23.038 §6.2.1, index = septet value. 0x1B is the escape to the extension table (not a character);
// it decodes to a space when it cannot be resolved, as §6.2.1.1 asks for unknown escapes.
const BASIC_TABLE =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ' +
  ' !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§' +
  '¿abcdefghijklmnopqrstuvwxyzäöñüà';

// TS 23.038 §6.2.1.1, septet following 0x1B -> character. 0x0A is FORM FEED (page break).
const EXTENSION_TABLE: ReadonlyArray<readonly [number, string]> = [
  [0x0a, '\f'],
  [0x14, '^'],
  [0x28, '{'],
  [0x29, '}'],
  [0x2f, '\\'],
  [0x3c, '['],
  [0x3d, '~'],
  [0x3e, ']'],
  [0x40, '|'],
  [0x65, '€'],
];

// Every GSM character is in the BMP and the highest one is '€' (U+20AC), so a dense table up to it is
// small (~16 KiB) and avoids hashing. Entry: -1 = not GSM-7; 0..0x7F = basic septet; 0x100 | septet =
// extension septet (costs two: ESC + septet).
const ENCODE_TABLE_SIZE = 0x20ad;
const ENCODE_TABLE = new Int16Array(ENCODE_TABLE_SIZE).fill(-1);
// Septet value -> decoded string, for the basic and extension tables.
const DECODE_BASIC: string[] = new Array<string>(128);
const DECODE_EXTENSION: string[] = new Array<string>(128);

for (let septet = 0; septet < 128; septet++) {
  const ch = BASIC_TABLE[septet]!;
  DECODE_BASIC[septet] = septet === ESC ? ' ' : ch;
  if (septet !== ESC) ENCODE_TABLE[ch.charCodeAt(0)] = septet;
}
for (let septet = 0; septet < 128; septet++) {
  // Unknown escape sequences fall back to the basic character (§6.2.1.1); ESC ESC is reserved for a
  // further extension table and shows as a space.
  DECODE_EXTENSION[septet] = DECODE_BASIC[septet]!;
}
for (const [septet, ch] of EXTENSION_TABLE) {
  DECODE_EXTENSION[septet] = ch;
  ENCODE_TABLE[ch.charCodeAt(0)] = 0x100 | septet;
}

/**
 * Septet count of `text` in GSM-7, or -1 as soon as a character is outside the default alphabet and
 * its extension table.
 */
function gsm7Septets(text: string): number {
  let septets = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= ENCODE_TABLE_SIZE) return -1;
    const entry = ENCODE_TABLE[code]!;
    if (entry < 0) return -1;
    septets += entry > 0xff ? 2 : 1;
  }
  return septets;
}

export function isGsm7(text: string): boolean {
  return gsm7Septets(text) >= 0;
}

/** Splits an all-GSM-7 text into parts of at most 153 septets, never separating ESC from its septet. */
function splitGsm7(text: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let used = 0;
  for (let i = 0; i < text.length; i++) {
    const cost = ENCODE_TABLE[text.charCodeAt(i)]! > 0xff ? 2 : 1;
    if (used + cost > GSM7_PART_MAX) {
      // An escaped char that does not fit whole moves to the next part, leaving this one a septet short.
      parts.push(text.slice(start, i));
      start = i;
      used = 0;
    }
    used += cost;
  }
  parts.push(text.slice(start));
  return parts;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** Splits a text into parts of at most 67 UTF-16 units, never separating a surrogate pair. */
function splitUcs2(text: string): string[] {
  const parts: string[] = [];
  let start = 0;
  while (text.length - start > UCS2_PART_MAX) {
    let end = start + UCS2_PART_MAX;
    // Each part must be valid UTF-16 on its own (a lone surrogate is not), since anything that decodes a
    // part before reassembly would mangle the halves; cut one unit early so the pair travels together.
    if (isHighSurrogate(text.charCodeAt(end - 1)) && isLowSurrogate(text.charCodeAt(end))) end--;
    parts.push(text.slice(start, end));
    start = end;
  }
  parts.push(text.slice(start));
  return parts;
}

export function analyzeText(text: string): TextAnalysis {
  if (text.length === 0) return { encoding: 'GSM-7', units: 0, segments: 0, parts: [] };

  const septets = gsm7Septets(text);
  if (septets >= 0) {
    const parts = septets <= GSM7_SINGLE_MAX ? [text] : splitGsm7(text);
    return { encoding: 'GSM-7', units: septets, segments: parts.length, parts };
  }

  // UCS-2 on the wire is really UTF-16BE: one unit per UTF-16 code unit, so the JS length is the count.
  const units = text.length;
  const parts = units <= UCS2_SINGLE_MAX ? [text] : splitUcs2(text);
  return { encoding: 'UCS-2', units, segments: parts.length, parts };
}

/**
 * Unpacked GSM-7: one byte per septet, extension characters as 0x1B + septet (the form SMPP carries with
 * data_coding 0). Throws a RangeError on a character outside GSM-7 rather than transliterating it; check
 * with {@link isGsm7} or {@link analyzeText} first.
 */
export function encodeGsm7(text: string): Buffer {
  const septets = gsm7Septets(text);
  if (septets < 0) {
    let i = 0;
    while (i < text.length) {
      const code = text.charCodeAt(i);
      if (code >= ENCODE_TABLE_SIZE || ENCODE_TABLE[code]! < 0) break;
      i++;
    }
    const bad = text.codePointAt(i)!;
    throw new RangeError(
      `character U+${bad.toString(16).toUpperCase().padStart(4, '0')} at index ${i} is not in the GSM-7 alphabet`,
    );
  }
  const out = Buffer.allocUnsafe(septets);
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const entry = ENCODE_TABLE[text.charCodeAt(i)]!;
    if (entry > 0xff) {
      out[o++] = ESC;
      out[o++] = entry & 0x7f;
    } else {
      out[o++] = entry;
    }
  }
  return out;
}

/**
 * Inverse of {@link encodeGsm7}. Never throws: unknown escapes decode to the basic character, ESC ESC
 * and a trailing ESC to a space, and the (meaningless) high bit of a byte is ignored.
 */
export function decodeGsm7(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) {
    const septet = bytes[i]! & 0x7f;
    if (septet === ESC) {
      i++;
      out += i < bytes.length ? DECODE_EXTENSION[bytes[i]! & 0x7f]! : ' ';
    } else {
      out += DECODE_BASIC[septet]!;
    }
  }
  return out;
}

/** UTF-16BE, which is what SMS "UCS-2" (data_coding 8) carries in practice, surrogate pairs included. */
export function encodeUcs2(text: string): Buffer {
  return Buffer.from(text, 'utf16le').swap16();
}

/** Inverse of {@link encodeUcs2}. Never throws: an odd trailing byte is dropped. */
export function decodeUcs2(bytes: Uint8Array): string {
  // Buffer.from copies, so the caller's bytes are not swapped in place.
  return Buffer.from(bytes.subarray(0, bytes.length & ~1))
    .swap16()
    .toString('utf16le');
}
