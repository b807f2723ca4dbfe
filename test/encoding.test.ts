import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  analyzeText,
  decodeGsm7,
  decodeUcs2,
  encodeGsm7,
  encodeUcs2,
  isGsm7,
} from '../src/messages/encoding.js';

// 3GPP TS 23.038 §6.2.1, index = septet; 0x1B (escape) is not a character.
const BASIC =
  '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ' +
  ' !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§' +
  '¿abcdefghijklmnopqrstuvwxyzäöñüà';
// 3GPP TS 23.038 §6.2.1.1: character -> septet following 0x1B.
const EXTENSION: Array<[string, number]> = [
  ['\f', 0x0a],
  ['^', 0x14],
  ['{', 0x28],
  ['}', 0x29],
  ['\\', 0x2f],
  ['[', 0x3c],
  ['~', 0x3d],
  [']', 0x3e],
  ['|', 0x40],
  ['€', 0x65],
];
const BASIC_CHARS = [...BASIC].filter((c) => c !== '\u001b');

const a = (n: number) => 'a'.repeat(n);

/** Septet cost of a GSM-7 part, computed independently of the implementation. */
const septets = (s: string) => [...s].reduce((n, c) => n + (EXTENSION.some(([e]) => e === c) ? 2 : 1), 0);

describe('alphabet tables', () => {
  it('has 127 basic characters and 10 extension characters, all distinct', () => {
    expect(BASIC.length).toBe(128);
    expect(new Set(BASIC_CHARS).size).toBe(127);
    expect(new Set([...BASIC_CHARS, ...EXTENSION.map(([c]) => c)]).size).toBe(137);
  });

  it('encodes every basic character to its table position', () => {
    BASIC_CHARS.forEach((c) => {
      expect([...encodeGsm7(c)]).toEqual([BASIC.indexOf(c)]);
    });
  });

  it('encodes every extension character as ESC + code and counts 2 septets', () => {
    for (const [c, code] of EXTENSION) {
      expect([...encodeGsm7(c)]).toEqual([0x1b, code]);
      expect(analyzeText(c)).toEqual({ encoding: 'GSM-7', units: 2, segments: 1, parts: [c] });
    }
  });
});

describe('isGsm7', () => {
  it('accepts the whole basic and extension alphabet', () => {
    expect(isGsm7(BASIC_CHARS.join('') + EXTENSION.map(([c]) => c).join(''))).toBe(true);
    expect(isGsm7('')).toBe(true);
  });

  it('rejects characters outside the alphabet, including ASCII ones', () => {
    for (const c of [
      '`',
      '\t',
      '\u001b',
      '\u0000',
      'ç',
      'â',
      'ê',
      'î',
      'ô',
      'û',
      'ë',
      'ï',
      'È',
      '\u00a0',
      '😀',
    ]) {
      expect(isGsm7(c), JSON.stringify(c)).toBe(false);
    }
  });
});

describe('analyzeText: encoding choice', () => {
  it('returns zero segments for the empty text', () => {
    expect(analyzeText('')).toEqual({ encoding: 'GSM-7', units: 0, segments: 0, parts: [] });
  });

  it('keeps plain ASCII in GSM-7', () => {
    const text = 'Hello, world! Your code is 123456.';
    expect(analyzeText(text)).toEqual({ encoding: 'GSM-7', units: 34, segments: 1, parts: [text] });
  });

  it('keeps French accents that GSM-7 has (é è à ù É Ç)', () => {
    const text = 'Élève: où à été, Ça va';
    expect(analyzeText(text)).toEqual({ encoding: 'GSM-7', units: 22, segments: 1, parts: [text] });
  });

  it('switches the whole message to UCS-2 for ç â ê î ô û ë ï', () => {
    for (const c of ['ç', 'â', 'ê', 'î', 'ô', 'û', 'ë', 'ï']) {
      const text = `Bonjour ${c}a`;
      expect(analyzeText(text)).toEqual({ encoding: 'UCS-2', units: 10, segments: 1, parts: [text] });
    }
    expect(analyzeText('Le garçon mange une crêpe').encoding).toBe('UCS-2');
  });

  it('does not transliterate: a backtick forces UCS-2', () => {
    expect(analyzeText('run `ls`')).toEqual({
      encoding: 'UCS-2',
      units: 8,
      segments: 1,
      parts: ['run `ls`'],
    });
  });

  it('counts the euro sign and every extension char as 2 septets', () => {
    expect(analyzeText('Total: 5€').units).toBe(10);
    expect(analyzeText('^{}\\[~]|€\f').units).toBe(20);
    expect(analyzeText('{a}').units).toBe(5);
  });

  it('counts an emoji as 2 UCS-2 units and forces UCS-2 for the whole text', () => {
    expect(analyzeText('😀')).toEqual({ encoding: 'UCS-2', units: 2, segments: 1, parts: ['😀'] });
    expect(analyzeText('Merci 😀 à bientôt')).toMatchObject({ encoding: 'UCS-2', units: 18, segments: 1 });
  });
});

describe('analyzeText: GSM-7 segmentation', () => {
  it('fits exactly 160 septets in one message', () => {
    expect(analyzeText(a(160))).toEqual({ encoding: 'GSM-7', units: 160, segments: 1, parts: [a(160)] });
  });

  it('splits 161 septets into 153 + 8', () => {
    expect(analyzeText(a(161))).toEqual({
      encoding: 'GSM-7',
      units: 161,
      segments: 2,
      parts: [a(153), a(8)],
    });
  });

  it('fits 158 chars + € (160 septets) in one message', () => {
    expect(analyzeText(`${a(158)}€`)).toMatchObject({ units: 160, segments: 1 });
  });

  it('splits 159 chars + € (161 septets) into 153 + 8', () => {
    expect(analyzeText(`${a(159)}€`)).toEqual({
      encoding: 'GSM-7',
      units: 161,
      segments: 2,
      parts: [a(153), `${a(6)}€`],
    });
  });

  it('moves an escape that would straddle the 153 boundary to the next part', () => {
    const text = `${a(152)}€${'b'.repeat(10)}`;
    const result = analyzeText(text);
    expect(result).toEqual({
      encoding: 'GSM-7',
      units: 164,
      segments: 2,
      parts: [a(152), `€${'b'.repeat(10)}`],
    });
    expect(encodeGsm7(result.parts[0]!).length).toBe(152);
    expect([...encodeGsm7(result.parts[1]!).subarray(0, 2)]).toEqual([0x1b, 0x65]);
  });

  it('keeps an escape that ends exactly on 153 in the first part', () => {
    expect(analyzeText(`${a(151)}€${a(10)}`).parts).toEqual([`${a(151)}€`, a(10)]);
  });

  it('splits 306 septets into exactly 2 parts and 307 into 3', () => {
    expect(analyzeText(a(306)).parts).toEqual([a(153), a(153)]);
    expect(analyzeText(a(307)).parts).toEqual([a(153), a(153), a(1)]);
  });

  it('handles a text made only of escapes', () => {
    expect(analyzeText('€'.repeat(80))).toMatchObject({ units: 160, segments: 1 });
    expect(analyzeText('€'.repeat(81))).toEqual({
      encoding: 'GSM-7',
      units: 162,
      segments: 2,
      parts: ['€'.repeat(76), '€'.repeat(5)],
    });
  });
});

describe('analyzeText: UCS-2 segmentation', () => {
  it('fits exactly 70 units in one message', () => {
    const text = 'ç'.repeat(70);
    expect(analyzeText(text)).toEqual({ encoding: 'UCS-2', units: 70, segments: 1, parts: [text] });
  });

  it('splits 71 units into 67 + 4', () => {
    expect(analyzeText('ç'.repeat(71))).toEqual({
      encoding: 'UCS-2',
      units: 71,
      segments: 2,
      parts: ['ç'.repeat(67), 'ç'.repeat(4)],
    });
  });

  it('counts GSM characters as one unit each once the text is UCS-2', () => {
    expect(analyzeText(`${a(69)}€ç`)).toMatchObject({ encoding: 'UCS-2', units: 71, segments: 2 });
    expect(analyzeText(`${a(69)}€ç`).parts).toEqual([a(67), 'aa€ç']);
  });

  it('never splits a surrogate pair across the 67 boundary', () => {
    const text = `${a(66)}😀 bientôt`;
    expect(analyzeText(text)).toEqual({
      encoding: 'UCS-2',
      units: 76,
      segments: 2,
      parts: [a(66), '😀 bientôt'],
    });
  });

  it('keeps a surrogate pair that ends exactly on 67 in the first part', () => {
    expect(analyzeText(`${a(65)}😀${a(5)}`).parts).toEqual([`${a(65)}😀`, a(5)]);
  });

  it('splits a text made only of emoji on pair boundaries', () => {
    expect(analyzeText('😀'.repeat(35))).toMatchObject({ units: 70, segments: 1 });
    expect(analyzeText('😀'.repeat(36))).toEqual({
      encoding: 'UCS-2',
      units: 72,
      segments: 2,
      parts: ['😀'.repeat(33), '😀'.repeat(3)],
    });
  });

  it('counts a lone surrogate as one unit and splits next to it normally', () => {
    expect(analyzeText('\ud83d')).toEqual({ encoding: 'UCS-2', units: 1, segments: 1, parts: ['\ud83d'] });
    expect(analyzeText(`${a(66)}\ud83d${a(5)}`).parts).toEqual([`${a(66)}\ud83d`, a(5)]);
  });
});

describe('analyzeText: invariants', () => {
  const interesting = fc.constantFrom(
    'a',
    'Z',
    ' ',
    '\n',
    '€',
    '{',
    '\f',
    'é',
    'ç',
    '😀',
    '\ud83d',
    '\ude00',
  );

  it('parts concatenate to the input and respect the per-part limits', () => {
    fc.assert(
      fc.property(fc.string({ unit: interesting, maxLength: 400 }), (text) => {
        const r = analyzeText(text);
        expect(r.parts.join('')).toBe(text);
        expect(r.segments).toBe(r.parts.length);
        if (text.length === 0) expect(r.segments).toBe(0);
        else expect(r.segments).toBeGreaterThanOrEqual(1);
        if (r.encoding === 'GSM-7') {
          expect(isGsm7(text)).toBe(true);
          expect(r.units).toBe(septets(text));
          expect(r.units).toBe(encodeGsm7(text).length);
          const max = r.segments > 1 ? 153 : 160;
          for (const part of r.parts) {
            expect(septets(part)).toBeLessThanOrEqual(max);
            expect(part.length).toBeGreaterThan(0);
          }
          if (r.segments > 1) expect(r.units).toBeGreaterThan(160);
        } else {
          expect(isGsm7(text)).toBe(false);
          expect(r.units).toBe(text.length);
          expect(r.units * 2).toBe(encodeUcs2(text).length);
          const max = r.segments > 1 ? 67 : 70;
          r.parts.forEach((part, i) => {
            expect(part.length).toBeLessThanOrEqual(max);
            expect(part.length).toBeGreaterThan(0);
            // A part boundary between a high and a low surrogate would split a pair.
            const next = r.parts[i + 1];
            if (next !== undefined) {
              const splitPair = /[\ud800-\udbff]$/.test(part) && /^[\udc00-\udfff]/.test(next);
              expect(splitPair).toBe(false);
            }
          });
          if (r.segments > 1) expect(r.units).toBeGreaterThan(70);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('GSM-7 codec', () => {
  it('round-trips the whole basic and extension alphabet', () => {
    const all = BASIC_CHARS.join('') + EXTENSION.map(([c]) => c).join('');
    const bytes = encodeGsm7(all);
    expect(bytes.length).toBe(127 + 2 * 10);
    expect(decodeGsm7(bytes)).toBe(all);
    for (const c of [...BASIC_CHARS, ...EXTENSION.map(([e]) => e)]) {
      expect(decodeGsm7(encodeGsm7(c))).toBe(c);
    }
  });

  it('encodes a known sample byte for byte', () => {
    expect([...encodeGsm7('@£$ Aé€{')]).toEqual([0x00, 0x01, 0x02, 0x20, 0x41, 0x05, 0x1b, 0x65, 0x1b, 0x28]);
    expect(encodeGsm7('').length).toBe(0);
  });

  it('refuses to encode a non-GSM character instead of transliterating it', () => {
    expect(() => encodeGsm7('garçon')).toThrow(RangeError);
    expect(() => encodeGsm7('garçon')).toThrow('U+00E7 at index 3');
    expect(() => encodeGsm7('ok 😀')).toThrow('U+1F600 at index 3');
  });

  it('decodes unknown and malformed escapes without throwing', () => {
    expect(decodeGsm7(Uint8Array.of(0x1b, 0x41))).toBe('A'); // unknown escape -> basic char
    expect(decodeGsm7(Uint8Array.of(0x1b, 0x00))).toBe('@');
    expect(decodeGsm7(Uint8Array.of(0x1b, 0x1b, 0x61))).toBe(' a'); // reserved ESC ESC -> space
    expect(decodeGsm7(Uint8Array.of(0x61, 0x1b))).toBe('a '); // dangling ESC -> space
    expect(decodeGsm7(Uint8Array.of(0xe1))).toBe('a'); // high bit ignored
    expect(decodeGsm7(new Uint8Array(0))).toBe('');
  });

  it('never throws on random bytes and always yields GSM-7 text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const text = decodeGsm7(bytes);
        expect(isGsm7(text)).toBe(true);
        expect(text.length).toBeLessThanOrEqual(bytes.length);
      }),
      { numRuns: 3000 },
    );
  });

  it('re-encodes decoded well-formed septets to the same bytes', () => {
    const septet = fc.integer({ min: 0, max: 0x7f }).filter((n) => n !== 0x1b);
    const escaped = fc.constantFrom(...EXTENSION.map(([, code]) => [0x1b, code]));
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            septet.map((n) => [n]),
            escaped,
          ),
          { maxLength: 200 },
        ),
        (chunks) => {
          const bytes = Uint8Array.from(chunks.flat());
          expect([...encodeGsm7(decodeGsm7(bytes))]).toEqual([...bytes]);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('UCS-2 codec', () => {
  it('encodes UTF-16BE, surrogate pairs included', () => {
    expect([...encodeUcs2('Aé€😀')]).toEqual([0x00, 0x41, 0x00, 0xe9, 0x20, 0xac, 0xd8, 0x3d, 0xde, 0x00]);
    expect(encodeUcs2('').length).toBe(0);
  });

  it('round-trips the GSM alphabet, accents and emoji', () => {
    const all = `${BASIC_CHARS.join('')}${EXTENSION.map(([c]) => c).join('')}çâêîôûëï😀👍🏽`;
    expect(decodeUcs2(encodeUcs2(all))).toBe(all);
  });

  it('round-trips any sequence of UTF-16 code units, lone surrogates included', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 200 }), (codes) => {
        const text = String.fromCharCode(...codes);
        expect(decodeUcs2(encodeUcs2(text))).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });

  it('drops an odd trailing byte and does not modify its input', () => {
    const bytes = Uint8Array.of(0x00, 0x41, 0x00, 0xe9, 0x20);
    expect(decodeUcs2(bytes)).toBe('Aé');
    expect([...bytes]).toEqual([0x00, 0x41, 0x00, 0xe9, 0x20]);
    expect(decodeUcs2(Uint8Array.of(0x41))).toBe('');
    expect(decodeUcs2(new Uint8Array(0))).toBe('');
  });

  it('decodes a view into a larger buffer at an odd offset', () => {
    const backing = Uint8Array.of(0xff, 0x00, 0x42, 0x20, 0xac, 0xff);
    expect(decodeUcs2(backing.subarray(1, 5))).toBe('B€');
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        expect(decodeUcs2(bytes).length).toBe(bytes.length >> 1);
      }),
      { numRuns: 3000 },
    );
  });
});
