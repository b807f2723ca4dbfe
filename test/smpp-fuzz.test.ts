import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeGsm7, decodeUcs2 } from '../src/messages/encoding.js';
import { type DecodeResult, decodePdu, encodePdu } from '../src/smpp/codec.js';
import { CommandId, CommandStatus, statusName } from '../src/smpp/constants.js';
import { PduFramer } from '../src/smpp/framing.js';
import { buildSubmitParts, parseUdh } from '../src/smpp/long-message.js';
import { type FieldLayout, LAYOUTS, PDU_COMMANDS, type Pdu, type Tlv } from '../src/smpp/pdu.js';
import { formatReceiptText, parseReceipt, type ReceiptState } from '../src/smpp/receipt.js';

/** Decoding must answer, never throw, and never hit the internal-error path. */
function checkDecode(bytes: Uint8Array): DecodeResult {
  const result = decodePdu(Buffer.from(bytes));
  if (!result.ok) {
    expect(result.error.status).not.toBe(CommandStatus.ESME_RSYSERR);
    expect(statusName(result.error.status)).not.toBeNull();
    return result;
  }
  // Whatever decoded is exactly what we would have sent, octet for octet (so nothing was skipped or
  // clamped), except the two normalisations of response bodies: a header-only response read as zero
  // values, and an error response whose zero-valued body is re-sent header-only.
  const encoded = encodePdu(result.pdu);
  const normalised = bytes.length === 16 || (encoded.length === 16 && result.pdu.status !== 0);
  if (!normalised) expect(encoded.toString('hex')).toBe(Buffer.from(bytes).toString('hex'));
  expect(decodePdu(encoded)).toEqual(result);
  return result;
}

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const octets = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));
/** C-Octet String content: any non-NUL octet, as the codec carries it (latin1). */
const cString = (maxLength: number) =>
  fc.string({ unit: fc.integer({ min: 1, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength });
const tlvArb: fc.Arbitrary<Tlv> = fc.record({
  tag: fc.oneof(fc.constantFrom(0x001e, 0x0424, 0x0427, 0x0423, 0x020c), fc.integer({ min: 0, max: 0xffff })),
  value: octets(40),
});

function fieldArb(field: FieldLayout): fc.Arbitrary<unknown> {
  if (field.kind === 'u8') return fc.integer({ min: 0, max: 0xff });
  if (field.kind === 'sm') return octets(254);
  return cString(field.max - 1);
}

/** Any valid PDU of the union, built from the layouts (themselves checked against the spec elsewhere). */
const pduArb: fc.Arbitrary<Pdu> = fc.oneof(
  ...PDU_COMMANDS.map((command) => {
    const fields = LAYOUTS[command].fields as readonly FieldLayout[];
    return fc.record({
      command: fc.constant(command),
      sequence: u32,
      status: fc.oneof(fc.constant(0), u32),
      tlvs: fields.length > 0 ? fc.array(tlvArb, { maxLength: 4 }) : fc.constant([]),
      ...Object.fromEntries(fields.map((f) => [f.key, fieldArb(f)])),
    }) as unknown as fc.Arbitrary<Pdu>;
  }),
);

/** A frame whose header is right (length and a real command id) but whose body is random. */
// Random octets rarely include the NUL that ends a C-string, so the body is biased towards 0 to get
// past the first field and exercise sm_length and TLV parsing too.
const biasedBody = fc
  .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xff }), fc.integer({ min: 0, max: 0xff })), {
    maxLength: 300,
  })
  .map((a) => Buffer.from(a));
const plausibleFrame = fc
  .tuple(fc.constantFrom(...Object.values(CommandId), 0x12345), u32, u32, biasedBody)
  .map(([id, status, sequence, body]) => {
    const header = Buffer.alloc(16);
    header.writeUInt32BE(16 + body.length, 0);
    header.writeUInt32BE(id, 4);
    header.writeUInt32BE(status, 8);
    header.writeUInt32BE(sequence, 12);
    return Buffer.concat([header, body]);
  });

type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'extend'; bytes: Buffer }
  | { kind: 'fixLength' };
const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 0xff }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), bytes: octets(12) }),
  fc.record({ kind: fc.constant('fixLength' as const) }),
);

function mutate(frame: Buffer, mutations: Mutation[]): Buffer {
  let buf = Buffer.from(frame);
  for (const m of mutations) {
    if (m.kind === 'flip' && buf.length > 0) buf[m.at % buf.length]! ^= m.xor;
    else if (m.kind === 'truncate') buf = buf.subarray(0, m.at % (buf.length + 1));
    else if (m.kind === 'extend') buf = Buffer.concat([buf, m.bytes]);
    // Keeps command_length truthful, so the body parser (not the length check) meets the damage.
    else if (m.kind === 'fixLength' && buf.length >= 4) buf.writeUInt32BE(buf.length, 0);
  }
  return buf;
}

describe('fuzz: decodePdu', () => {
  it('(a) answers any byte array without throwing', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        checkDecode(bytes);
      }),
      { numRuns: 10_000 },
    );
  });

  it('(a) answers random bodies behind a valid header without throwing', () => {
    fc.assert(
      fc.property(plausibleFrame, (frame) => {
        checkDecode(frame);
      }),
      { numRuns: 10_000 },
    );
  });

  it('(b) round-trips any valid PDU: encode -> decode -> deep-equal', () => {
    fc.assert(
      fc.property(pduArb, (pdu) => {
        const encoded = encodePdu(pdu);
        expect(encoded.readUInt32BE(0)).toBe(encoded.length);
        expect(decodePdu(encoded)).toEqual({ ok: true, pdu });
      }),
      { numRuns: 5_000 },
    );
  });

  it('(c) answers mutated valid PDUs (flip, truncate, extend) without throwing', () => {
    fc.assert(
      fc.property(pduArb, fc.array(mutationArb, { minLength: 1, maxLength: 4 }), (pdu, mutations) => {
        checkDecode(mutate(encodePdu(pdu), mutations));
      }),
      { numRuns: 5_000 },
    );
  });
});

describe('fuzz: PduFramer', () => {
  it('(d) yields exactly the original frames whatever the chunking', () => {
    fc.assert(
      fc.property(
        fc.array(pduArb, { minLength: 1, maxLength: 12 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (pdus, cuts) => {
          const frames = pdus.map(encodePdu);
          const stream = Buffer.concat(frames);
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
          const framer = new PduFramer();
          const out: Buffer[] = [];
          let from = 0;
          for (const to of [...points, stream.length]) {
            framer.push(stream.subarray(from, to));
            from = to;
            for (const frame of framer) out.push(frame);
          }
          // Hex strings: far cheaper for the matcher than deep-comparing Buffers.
          const hex = (list: Buffer[]) => list.map((f) => f.toString('hex'));
          expect(hex(out)).toEqual(hex(frames));
          expect(framer.error).toBeNull();
          expect(framer.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe('fuzz: long messages and receipts', () => {
  const char = fc.constantFrom('a', 'Z', '@', '€', '{', '\n', ' ', 'é', 'ж', '😀', '中');
  it('reassembles the text from the parts and their UDHs', () => {
    fc.assert(
      fc.property(fc.array(char, { maxLength: 400 }), fc.integer({ min: 0, max: 255 }), (chars, ref) => {
        const text = chars.join('');
        const parts = buildSubmitParts(text, ref);
        const decode = (p: (typeof parts)[number], bytes: Buffer) =>
          p.dataCoding === 8 ? decodeUcs2(bytes) : decodeGsm7(bytes);
        if (parts.length === 1) {
          expect(parts[0]!.esmClass).toBe(0);
          expect(decode(parts[0]!, parts[0]!.shortMessage)).toBe(text);
          return;
        }
        const texts = parts.map((p, i) => {
          expect(p.shortMessage.length).toBeLessThanOrEqual(p.dataCoding === 8 ? 140 : 159);
          const udh = parseUdh(p.shortMessage);
          expect(udh?.concat).toEqual({ reference: ref, referenceBits: 8, total: parts.length, seq: i + 1 });
          return decode(p, udh!.payload);
        });
        expect(texts.join('')).toBe(text);
      }),
      { numRuns: 1_000 },
    );
  });

  it('parses back what formatReceiptText writes', () => {
    const states: ReceiptState[] = [
      'delivered',
      'expired',
      'deleted',
      'undeliverable',
      'accepted',
      'unknown',
      'rejected',
      'enroute',
    ];
    const minute = fc.integer({ min: Date.UTC(2000, 0, 1) / 60_000, max: Date.UTC(2099, 11, 31) / 60_000 });
    fc.assert(
      fc.property(
        fc.stringMatching(/^[0-9A-Za-z-]{1,30}$/),
        fc.constantFrom(...states),
        minute,
        minute,
        fc.stringMatching(/^[0-9]{3}$/),
        (id, state, submitted, done, errorCode) => {
          const submitDate = new Date(submitted * 60_000);
          const doneDate = new Date(done * 60_000);
          const text = formatReceiptText({
            id,
            state,
            submitDate,
            doneDate,
            errorCode,
            text: 'id:x stat:DELIVRD',
          });
          const pdu = { esmClass: 4, dataCoding: 0, shortMessage: Buffer.from(text), tlvs: [] };
          expect(parseReceipt(pdu)).toEqual({ carrierId: id, state, errorCode, submitDate, doneDate });
        },
      ),
      { numRuns: 1_000 },
    );
  });
});
