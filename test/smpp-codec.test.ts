import { describe, expect, it } from 'vitest';
import { type Batch, OP_LENGTH, Op, pushSubmit, readSubmit } from '../src/carriers/link-protocol.js';
import {
  type DecodeFailure,
  type DecodeResult,
  decodePdu,
  encodePdu,
  errorResponse,
} from '../src/smpp/codec.js';
import {
  CommandStatus,
  describeStatus,
  isTemporaryError,
  MessageState,
  statusName,
  TlvTag,
} from '../src/smpp/constants.js';
import { PduFramer } from '../src/smpp/framing.js';
import { buildSubmitParts, parseUdh } from '../src/smpp/long-message.js';
import {
  createPdu,
  type FieldLayout,
  getMessageState,
  getNetworkErrorCode,
  getReceiptedMessageId,
  getSarInfo,
  getScInterfaceVersion,
  LAYOUTS,
  PDU_COMMANDS,
  type Pdu,
  type PduCommand,
  tlv,
  zeroPdu,
} from '../src/smpp/pdu.js';
import {
  formatReceiptText,
  normaliseCarrierId,
  parseReceipt,
  type ReceiptSource,
} from '../src/smpp/receipt.js';

/** Hex fragments (spaces allowed) -> Buffer. */
const hex = (...parts: string[]) => Buffer.from(parts.join('').replace(/\s+/g, ''), 'hex');
/** Text -> its hex, for readable vectors. */
const ascii = (text: string) => Buffer.from(text, 'latin1').toString('hex');

const S = CommandStatus;

function decoded(buf: Buffer): Pdu {
  const result = decodePdu(buf);
  if (!result.ok) throw new Error(`decode failed: ${result.error.message}`);
  return result.pdu;
}

function failure(result: DecodeResult): DecodeFailure {
  if (result.ok) throw new Error(`expected a decode error, got ${result.pdu.command}`);
  return result;
}

/** A PDU of each command with every field set to something other than its zero value. */
function sample(command: PduCommand, withTlvs: boolean): Pdu {
  const pdu = createPdu(command, { sequence: 0x7fffffff });
  const record = pdu as unknown as Record<string, unknown>;
  (LAYOUTS[command].fields as readonly FieldLayout[]).forEach((field, i) => {
    if (field.kind === 'u8') record[field.key] = (i * 37 + 1) & 0xff;
    else if (field.kind === 'sm') record[field.key] = Buffer.from([0, 1, 0x1b, 0x65, 0xff]);
    else record[field.key] = 'x'.repeat(field.max - 1);
  });
  if (withTlvs) pdu.tlvs = [tlv.messageState(2), { tag: 0x1400, value: Buffer.alloc(0) }, tlv.u16(0x020c, 7)];
  return pdu;
}

describe('layouts follow SMPP 3.4 §4', () => {
  const describeLayout = (command: PduCommand) =>
    (LAYOUTS[command].fields as readonly FieldLayout[]).map((f) =>
      f.kind === 'cstring' ? `${f.key}:${f.max}` : `${f.key}:${f.kind}`,
    );

  it('bind (§4.1.1), submit_sm (§4.4.1), data_sm (§4.7.1), responses', () => {
    expect(describeLayout('bind_transceiver')).toEqual([
      'systemId:16',
      'password:9',
      'systemType:13',
      'interfaceVersion:u8',
      'addrTon:u8',
      'addrNpi:u8',
      'addressRange:41',
    ]);
    const sm = [
      'serviceType:6',
      'sourceAddrTon:u8',
      'sourceAddrNpi:u8',
      'sourceAddr:21',
      'destAddrTon:u8',
      'destAddrNpi:u8',
      'destinationAddr:21',
      'esmClass:u8',
      'protocolId:u8',
      'priorityFlag:u8',
      'scheduleDeliveryTime:17',
      'validityPeriod:17',
      'registeredDelivery:u8',
      'replaceIfPresentFlag:u8',
      'dataCoding:u8',
      'smDefaultMsgId:u8',
      'shortMessage:sm',
    ];
    expect(describeLayout('submit_sm')).toEqual(sm);
    expect(describeLayout('deliver_sm')).toEqual(sm);
    expect(describeLayout('data_sm')).toEqual([
      'serviceType:6',
      'sourceAddrTon:u8',
      'sourceAddrNpi:u8',
      'sourceAddr:65',
      'destAddrTon:u8',
      'destAddrNpi:u8',
      'destinationAddr:65',
      'esmClass:u8',
      'registeredDelivery:u8',
      'dataCoding:u8',
    ]);
    expect(describeLayout('outbind')).toEqual(['systemId:16', 'password:9']);
    for (const c of ['submit_sm_resp', 'deliver_sm_resp', 'data_sm_resp'] as const) {
      expect(describeLayout(c)).toEqual(['messageId:65']);
    }
    for (const c of ['enquire_link', 'enquire_link_resp', 'unbind', 'unbind_resp', 'generic_nack'] as const) {
      expect(describeLayout(c)).toEqual([]);
    }
  });

  // zeroPdu writes each shape's fields by hand (one object literal per shape, for V8's hidden classes):
  // they must be exactly the layout's, at their zero values.
  it.each(PDU_COMMANDS)(
    'zeroPdu(%s) holds exactly its layout’s fields, each at its zero value',
    (command) => {
      const pdu = zeroPdu(command, 9) as unknown as Record<string, unknown>;
      const zero = (f: FieldLayout) => (f.kind === 'cstring' ? '' : f.kind === 'u8' ? 0 : Buffer.alloc(0));
      const fields = LAYOUTS[command].fields as readonly FieldLayout[];
      expect(pdu).toEqual({
        command,
        sequence: 9,
        status: 0,
        tlvs: [],
        ...Object.fromEntries(fields.map((f) => [f.key, zero(f)])),
      });
      expect(Object.keys(pdu).sort()).toEqual(
        ['command', 'sequence', 'status', 'tlvs', ...fields.map((f) => f.key)].sort(),
      );
      // Each PDU has TLVs of its own.
      expect(pdu.tlvs).not.toBe((zeroPdu(command, 9) as unknown as Record<string, unknown>).tlvs);
    },
  );
});

describe('round trips', () => {
  it.each(PDU_COMMANDS)('%s without TLVs', (command) => {
    const pdu = sample(command, false);
    expect(decoded(encodePdu(pdu))).toEqual(pdu);
    const zero = createPdu(command, { sequence: 1 });
    expect(decoded(encodePdu(zero))).toEqual(zero);
  });

  it.each(PDU_COMMANDS.filter((c) => LAYOUTS[c].fields.length > 0))('%s with TLVs', (command) => {
    const pdu = sample(command, true);
    expect(decoded(encodePdu(pdu))).toEqual(pdu);
  });

  it('error responses are sent header-only and read back', () => {
    const resp = createPdu('submit_sm_resp', { sequence: 5, status: S.ESME_RTHROTTLED });
    expect(encodePdu(resp)).toEqual(hex('00000010 80000004 00000058 00000005'));
    expect(decoded(encodePdu(resp))).toEqual(resp);
    // …unless they carry something.
    const withId = { ...resp, messageId: 'abc' };
    expect(decoded(encodePdu(withId))).toEqual(withId);
  });
});

describe('known-answer vectors (written by hand from SMPP 3.4)', () => {
  it('bind_transceiver (§4.1.5)', () => {
    const pdu = createPdu('bind_transceiver', {
      sequence: 1,
      systemId: 'relais',
      password: 'secret',
      interfaceVersion: 0x34,
    });
    const expected = hex(
      '00000023', // command_length = 16 + 19
      '00000009', // command_id bind_transceiver
      '00000000', // command_status
      '00000001', // sequence_number
      ascii('relais'),
      '00', // system_id
      ascii('secret'),
      '00', // password
      '00', // system_type ''
      '34', // interface_version 3.4
      '00', // addr_ton
      '00', // addr_npi
      '00', // address_range ''
    );
    expect(encodePdu(pdu)).toEqual(expected);
    expect(decoded(expected)).toEqual(pdu);
  });

  const submitFields = {
    sourceAddrTon: 5, // alphanumeric
    sourceAddr: 'Relais',
    destAddrTon: 1, // international
    destAddrNpi: 1, // E.164
    destinationAddr: '447700900123',
    registeredDelivery: 1,
  };
  const submitHeadFields = [
    '00', // service_type ''
    '05', // source_addr_ton
    '00', // source_addr_npi
    ascii('Relais'),
    '00', // source_addr
    '01', // dest_addr_ton
    '01', // dest_addr_npi
    ascii('447700900123'),
    '00', // destination_addr
    '00', // esm_class
    '00', // protocol_id
    '00', // priority_flag
    '00', // schedule_delivery_time ''
    '00', // validity_period ''
    '01', // registered_delivery: receipt on success or failure
    '00', // replace_if_present_flag
    '00', // data_coding: SMSC default (GSM-7)
    '00', // sm_default_msg_id
  ];

  it('submit_sm with a GSM-7 short_message (§4.4.1)', () => {
    const [part] = buildSubmitParts('Hi@€', 0);
    const pdu = createPdu('submit_sm', { sequence: 2, ...submitFields, shortMessage: part!.shortMessage });
    const expected = hex(
      '00000038', // command_length = 16 + 40
      '00000004', // submit_sm
      '00000000',
      '00000002',
      ...submitHeadFields,
      '05', // sm_length
      '48 69 00 1b65', // 'H' 'i' '@' (septet 0x00) '€' (escape 0x1B + 0x65), unpacked
    );
    expect(encodePdu(pdu)).toEqual(expected);
    expect(decoded(expected)).toEqual(pdu);
  });

  it('submit_sm with message_payload (§5.3.2.32)', () => {
    const pdu = createPdu('submit_sm', {
      sequence: 3,
      ...submitFields,
      tlvs: [tlv.messagePayload(Buffer.from('Hello'))],
    });
    const expected = hex(
      '0000003c', // command_length = 16 + 35 + 9
      '00000004',
      '00000000',
      '00000003',
      ...submitHeadFields,
      '00', // sm_length 0: the text is in the TLV
      '0424', // tag message_payload
      '0005', // length
      ascii('Hello'),
    );
    expect(encodePdu(pdu)).toEqual(expected);
    expect(decoded(expected)).toEqual(pdu);
  });

  it('submit_sm_resp (§4.4.2)', () => {
    const expected = hex('00000019', '80000004', '00000000', '00000002', ascii('0A1B2C3D'), '00');
    const pdu = createPdu('submit_sm_resp', { sequence: 2, messageId: '0A1B2C3D' });
    expect(encodePdu(pdu)).toEqual(expected);
    expect(decoded(expected)).toEqual(pdu);
  });

  it('deliver_sm carrying a receipt (§4.6.1, Appendix B)', () => {
    const text = 'id:2587 stat:DELIVRD err:000';
    const expected = hex(
      '0000005d', // command_length = 93 = 16 + 35 (to sm_length) + 28 (text) + 9 + 5 (TLVs)
      '00000005', // deliver_sm
      '00000000',
      '00000009',
      '00', // service_type
      '01 01',
      ascii('447700900123'),
      '00', // source: the handset
      '05 00',
      ascii('Relais'),
      '00', // destination: our sender id
      '04', // esm_class: SMSC delivery receipt
      '00 00 00 00 00 00 00 00', // protocol_id … sm_default_msg_id (times NULL, data_coding 0)
      '1c', // sm_length 28
      ascii(text),
      '001e 0005',
      ascii('0A1B'),
      '00', // receipted_message_id
      '0427 0001 02', // message_state DELIVERED
    );
    const pdu = decoded(expected);
    expect(pdu).toEqual(
      createPdu('deliver_sm', {
        sequence: 9,
        sourceAddrTon: 1,
        sourceAddrNpi: 1,
        sourceAddr: '447700900123',
        destAddrTon: 5,
        destinationAddr: 'Relais',
        esmClass: 4,
        shortMessage: Buffer.from(text),
        tlvs: [tlv.receiptedMessageId('0A1B'), tlv.messageState(MessageState.DELIVERED)],
      }),
    );
    expect(encodePdu(pdu)).toEqual(expected);
    expect(getReceiptedMessageId(pdu)).toBe('0A1B');
    expect(getMessageState(pdu)).toBe(2);
  });

  it('enquire_link (§4.11.1) and generic_nack (§4.3.1)', () => {
    const enquire = hex('00000010', '00000015', '00000000', '00000007');
    expect(encodePdu(createPdu('enquire_link', { sequence: 7 }))).toEqual(enquire);
    expect(decoded(enquire)).toEqual({ command: 'enquire_link', sequence: 7, status: 0, tlvs: [] });
    const nack = hex('00000010', '80000000', '00000003', '00000009'); // ESME_RINVCMDID
    expect(encodePdu(createPdu('generic_nack', { sequence: 9, status: S.ESME_RINVCMDID }))).toEqual(nack);
    expect(decoded(nack)).toEqual({ command: 'generic_nack', sequence: 9, status: 3, tlvs: [] });
  });
});

/** A submit_sm body up to and including data_coding + sm_default_msg_id, with empty strings. */
const SM_HEAD = '00 0000 00 0000 00 000000 00 00 00000000';
const frame = (commandId: string, body: string, sequence = '0000002a') => {
  const b = hex(body);
  return Buffer.concat([
    hex((16 + b.length).toString(16).padStart(8, '0'), commandId, '00000000', sequence),
    b,
  ]);
};

describe('decode errors answer the right status and never throw', () => {
  const cases: [string, Buffer, number][] = [
    ['a frame shorter than the header', hex('0000000c 00000015 0000'), S.ESME_RINVCMDLEN],
    ['command_length < 16', hex('00000008 00000015 00000000 00000001'), S.ESME_RINVCMDLEN],
    [
      'command_length disagreeing with the frame',
      hex('00000011 00000015 00000000 00000001'),
      S.ESME_RINVCMDLEN,
    ],
    [
      'command_length over the max',
      Buffer.concat([hex('00010001 00000004 00000000 00000001'), Buffer.alloc(65537 - 16)]),
      S.ESME_RINVCMDLEN,
    ],
    ['an unknown command_id', frame('00000099', ''), S.ESME_RINVCMDID],
    ['submit_multi (known, unsupported)', frame('00000021', '00'), S.ESME_RINVCMDID],
    ['a body on enquire_link (trailing garbage)', frame('00000015', '00'), S.ESME_RINVCMDLEN],
    ['a C-string without NUL', frame('00000002', ascii('abc')), S.ESME_RINVPARLEN],
    [
      'a system_id over 15 chars',
      frame('00000002', `${ascii('x'.repeat(16))}00 00 00 34 00 00 00`),
      S.ESME_RINVPARLEN,
    ],
    ['source_addr over 20 chars', frame('00000004', `00 0000 ${ascii('1'.repeat(21))}00`), S.ESME_RINVPARLEN],
    ['a body ending before a 1-octet field', frame('00000002', '00 00 00 34'), S.ESME_RINVCMDLEN],
    ['sm_length 255', frame('00000004', `${SM_HEAD} ff ${'00'.repeat(255)}`), S.ESME_RINVMSGLEN],
    ['sm_length past the end', frame('00000004', `${SM_HEAD} 05 6162`), S.ESME_RINVMSGLEN],
    [
      'short_message longer than sm_length',
      frame('00000004', `${SM_HEAD} 02 616263`),
      S.ESME_RINVOPTPARSTREAM,
    ],
    ['a truncated TLV header', frame('00000004', `${SM_HEAD} 00 0424 00`), S.ESME_RINVOPTPARSTREAM],
    [
      'a TLV value shorter than its length',
      frame('00000004', `${SM_HEAD} 00 0424 000a 616263`),
      S.ESME_RINVOPTPARSTREAM,
    ],
    [
      'trailing garbage after TLVs',
      frame('80000004', `${ascii('id')}00 0427000102 ff`),
      S.ESME_RINVOPTPARSTREAM,
    ],
  ];

  it.each(cases)('%s', (_name, buf, status) => {
    const result = failure(decodePdu(buf));
    expect(result.error.status).toBe(status);
    expect(result.error.message).toMatch(/\w/);
  });

  it('echoes the header it could read', () => {
    expect(failure(decodePdu(frame('00000099', ''))).sequence).toBe(0x2a);
    expect(failure(decodePdu(frame('00000099', ''))).commandId).toBe(0x99);
    expect(failure(decodePdu(hex('0000000c 00000015')))).toMatchObject({ sequence: null, commandId: 0x15 });
    expect(failure(decodePdu(hex('00')))).toMatchObject({ sequence: null, commandId: null });
  });

  it('honours a configured max command_length', () => {
    const big = encodePdu(
      createPdu('submit_sm', { sequence: 1, tlvs: [tlv.messagePayload(Buffer.alloc(2000))] }),
    );
    expect(decodePdu(big).ok).toBe(true);
    expect(failure(decodePdu(big, { maxCommandLength: 1024 })).error.status).toBe(S.ESME_RINVCMDLEN);
  });

  it('accepts header-only responses (error status, and deliver_sm_resp in practice)', () => {
    expect(decoded(hex('00000010 80000009 0000000e 00000001'))).toEqual(
      createPdu('bind_transceiver_resp', { sequence: 1, status: S.ESME_RINVPASWD }),
    );
    expect(decoded(hex('00000010 80000005 00000000 00000002'))).toEqual(
      createPdu('deliver_sm_resp', { sequence: 2 }),
    );
    // …but not requests.
    expect(failure(decodePdu(hex('00000010 00000004 00000000 00000002'))).error.status).toBe(
      S.ESME_RINVCMDLEN,
    );
  });

  it('survives inputs that are not even buffers', () => {
    expect(failure(decodePdu(undefined as unknown as Buffer)).error.status).toBe(S.ESME_RSYSERR);
    expect(decodePdu(new Uint8Array(hex('00000010 00000015 00000000 00000001'))).ok).toBe(true);
  });
});

describe('errorResponse', () => {
  it('nacks bad headers, answers bad bodies in kind, never answers responses', () => {
    expect(errorResponse(failure(decodePdu(frame('00000099', ''))))).toEqual(
      createPdu('generic_nack', { sequence: 0x2a, status: S.ESME_RINVCMDID }),
    );
    expect(errorResponse(failure(decodePdu(frame('00000004', `${SM_HEAD} ff`))))).toEqual(
      createPdu('submit_sm_resp', { sequence: 0x2a, status: S.ESME_RINVMSGLEN }),
    );
    expect(errorResponse(failure(decodePdu(frame('00000009', ascii('abc')))))).toEqual(
      createPdu('bind_transceiver_resp', { sequence: 0x2a, status: S.ESME_RINVPARLEN }),
    );
    expect(errorResponse(failure(decodePdu(frame('80000004', ascii('abc')))))).toBeNull();
    expect(errorResponse(failure(decodePdu(frame('80000000', '00'))))).toBeNull();
    expect(errorResponse(failure(decodePdu(hex('00'))))).toEqual(
      createPdu('generic_nack', { sequence: 0, status: S.ESME_RINVCMDLEN }),
    );
  });
});

describe('encode rejects programmer errors with RangeError', () => {
  const base = createPdu('submit_sm', { sequence: 1 });
  it.each([
    ['a system_id over 15 chars', createPdu('bind_transmitter', { sequence: 1, systemId: 'x'.repeat(16) })],
    ['a NUL inside a C-string', { ...base, sourceAddr: 'a\0b' }],
    ['a non-latin1 character', { ...base, destinationAddr: '€' }],
    ['a 255-octet short_message', { ...base, shortMessage: Buffer.alloc(255) }],
    ['a u8 field of 256', { ...base, esmClass: 256 }],
    ['a fractional u8', { ...base, dataCoding: 1.5 }],
    ['a negative sequence', { ...base, sequence: -1 }],
    ['a TLV over 65535 octets', { ...base, tlvs: [{ tag: 0x0424, value: Buffer.alloc(65536) }] }],
    ['a TLV tag over 16 bits', { ...base, tlvs: [{ tag: 0x10000, value: Buffer.alloc(1) }] }],
    ['TLVs on enquire_link', createPdu('enquire_link', { sequence: 1, tlvs: [tlv.messageState(1)] })],
  ] as [string, Pdu][])('%s', (_name, pdu) => {
    expect(() => encodePdu(pdu)).toThrow(RangeError);
  });
});

describe('status codes', () => {
  it('names, describes and classifies', () => {
    expect(statusName(0x58)).toBe('ESME_RTHROTTLED');
    expect(describeStatus(0x58)).toBe(
      'ESME_RTHROTTLED (0x00000058): Throttling error (the ESME exceeded its allowed message rate)',
    );
    expect(describeStatus(0x401)).toMatch(/vendor-specific/);
    expect(describeStatus(0x99)).toMatch(/reserved/);
    for (const s of [
      S.ESME_RTHROTTLED,
      S.ESME_RMSGQFUL,
      S.ESME_RSYSERR,
      S.ESME_RX_T_APPN,
      S.ESME_RDELIVERYFAILURE,
    ]) {
      expect(isTemporaryError(s)).toBe(true);
    }
    for (const s of [
      S.ESME_ROK,
      S.ESME_RINVDSTADR,
      S.ESME_RX_P_APPN,
      S.ESME_RSUBMITFAIL,
      S.ESME_RUNKNOWNERR,
      0x400,
    ]) {
      expect(isTemporaryError(s)).toBe(false);
    }
  });
});

describe('TLV accessors', () => {
  it('read typed values and ignore wrong lengths', () => {
    const pdu = createPdu('deliver_sm', {
      sequence: 1,
      tlvs: [
        { tag: TlvTag.message_state, value: Buffer.from([1, 2]) }, // wrong length: ignored
        tlv.networkErrorCode(3, 0x0101),
        ...tlv.sar(0x1234, 3, 2),
        { tag: TlvTag.receipted_message_id, value: Buffer.from('abc') }, // no NUL: tolerated
      ],
    });
    expect(getMessageState(pdu)).toBeNull();
    expect(getNetworkErrorCode(pdu)).toEqual({ networkType: 3, errorCode: 257 });
    expect(getSarInfo(pdu)).toEqual({ reference: 0x1234, total: 3, seq: 2 });
    expect(getReceiptedMessageId(pdu)).toBe('abc');
    expect(
      getScInterfaceVersion(
        createPdu('bind_transceiver_resp', { sequence: 1, tlvs: [tlv.scInterfaceVersion(0x34)] }),
      ),
    ).toBe(0x34);
    expect(() => tlv.u8(1, 256)).toThrow(RangeError);
  });
});

describe('PduFramer', () => {
  const pdus = [
    createPdu('enquire_link', { sequence: 1 }),
    createPdu('submit_sm', { sequence: 2, destinationAddr: '447700900123', shortMessage: Buffer.from('hi') }),
    createPdu('submit_sm_resp', { sequence: 3, messageId: 'abc' }),
  ];
  const frames = pdus.map(encodePdu);
  const stream = Buffer.concat(frames);
  const collect = (framer: PduFramer, chunks: Buffer[]) => {
    const out: Buffer[] = [];
    for (const chunk of chunks) {
      framer.push(chunk);
      for (const f of framer) out.push(f);
    }
    return out;
  };

  it('reassembles frames fed one octet at a time', () => {
    const framer = new PduFramer();
    const chunks = [...stream].map((b) => Buffer.from([b]));
    expect(collect(framer, chunks)).toEqual(frames);
    expect(framer.bufferedBytes).toBe(0);
    expect(framer.error).toBeNull();
  });

  it('splits many PDUs arriving in one chunk, keeping a partial one', () => {
    const framer = new PduFramer();
    // stream = 16-octet enquire_link + submit_sm + submit_sm_resp; 20 octets = one frame and 4 more.
    const out = collect(framer, [Buffer.concat([stream, stream, stream.subarray(0, 20)])]);
    expect(out).toEqual([...frames, ...frames, frames[0]]);
    expect(framer.bufferedBytes).toBe(4);
    expect(collect(framer, [stream.subarray(20)])).toEqual(frames.slice(1));
  });

  it('handles a 100k-PDU stream in linear time', () => {
    const one = encodePdu(createPdu('submit_sm', { sequence: 1, shortMessage: Buffer.alloc(40, 0x61) }));
    const big = Buffer.concat(Array.from({ length: 100_000 }, () => one));
    const started = performance.now();
    let count = 0;
    for (const size of [big.length, 1000, 7]) {
      const framer = new PduFramer();
      for (let at = 0; at < big.length; at += size) {
        framer.push(big.subarray(at, at + size));
        for (const f of framer) {
          if (f.length !== one.length) throw new Error('bad frame');
          count++;
        }
      }
    }
    expect(count).toBe(300_000);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('reports a fatal error on an impossible command_length, after the good frames', () => {
    const framer = new PduFramer({ maxCommandLength: 1024 });
    const bad = hex('00100000 00000004 00000000 0000002a');
    expect(collect(framer, [Buffer.concat([frames[0]!, bad])])).toEqual([frames[0]]);
    expect(framer.error).toMatchObject({
      status: S.ESME_RINVCMDLEN,
      commandLength: 0x100000,
      commandId: 4,
      sequence: 42,
    });
    framer.push(stream);
    expect(framer.next()).toBeNull();

    const tiny = new PduFramer();
    tiny.push(hex('00000004'));
    expect(tiny.next()).toBeNull();
    expect(tiny.error).toMatchObject({ commandLength: 4, commandId: null, sequence: null });
  });
});

const receiptPdu = (text: string, tlvs = [] as Pdu['tlvs'], esmClass = 0x04): ReceiptSource =>
  createPdu('deliver_sm', { sequence: 1, esmClass, shortMessage: Buffer.from(text, 'latin1'), tlvs });
const utc = (s: string) => new Date(`${s}Z`);

describe('delivery receipts', () => {
  it('reads the standard text', () => {
    const text =
      'id:0000002587 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000 text:Hello';
    expect(parseReceipt(receiptPdu(text))).toEqual({
      carrierId: '0000002587',
      state: 'delivered',
      errorCode: '000',
      submitDate: utc('2023-01-15T12:30'),
      doneDate: utc('2023-01-15T12:31'),
    });
  });

  it('reads TLVs alone', () => {
    const tlvs = [tlv.receiptedMessageId('7F3A9C01'), tlv.messageState(5), tlv.networkErrorCode(3, 34)];
    expect(parseReceipt(receiptPdu('', tlvs))).toEqual({
      carrierId: '7F3A9C01',
      state: 'undeliverable',
      errorCode: '034',
      submitDate: null,
      doneDate: null,
    });
  });

  it('prefers TLVs when they disagree with the text', () => {
    const text = 'id:2587 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:DELIVRD err:000';
    const tlvs = [
      tlv.receiptedMessageId('0A1B'),
      tlv.messageState(MessageState.EXPIRED),
      tlv.networkErrorCode(3, 9),
    ];
    expect(parseReceipt(receiptPdu(text, tlvs))).toMatchObject({
      carrierId: '0A1B',
      state: 'expired',
      errorCode: '009',
      submitDate: utc('2023-01-15T12:30'), // only in the text
    });
  });

  it.each([
    [
      'lowercase keys and values',
      'id:abc123 sub:001 dlvrd:001 submit date:2301151230 done date:2301151231 stat:delivrd err:000',
      { carrierId: 'abc123', state: 'delivered' },
    ],
    [
      'uppercase keys, underscores, 12-digit dates',
      'ID:123 SUB:001 DLVRD:000 SUBMIT_DATE:230115123045 DONE_DATE:230115123130 STAT:EXPIRED ERR:000 TEXT:x',
      {
        carrierId: '123',
        state: 'expired',
        submitDate: utc('2023-01-15T12:30:45'),
        doneDate: utc('2023-01-15T12:31:30'),
      },
    ],
    [
      'missing err',
      'id:99 submit date:2301151230 done date:2301151231 stat:REJECTD',
      { state: 'rejected', errorCode: null },
    ],
    [
      'UNDELIV with err:001',
      'id:99 sub:001 dlvrd:000 submit date:2301151230 done date:2301151231 stat:UNDELIV err:001 text:',
      { state: 'undeliverable', errorCode: '001' },
    ],
    [
      'extra spaces around values',
      'id: 12345   sub:001  dlvrd:001 submit  date: 2301151230 done date:2301151231  stat: ACCEPTD  err:000 Text:',
      { carrierId: '12345', state: 'accepted', submitDate: utc('2023-01-15T12:30') },
    ],
    [
      'a hex id and ENROUTE',
      'id:7F3A9C01 sub:001 dlvrd:000 submit date:2301151230 done date:2301151231 stat:ENROUTE err:000',
      { carrierId: '7F3A9C01', state: 'enroute' },
    ],
    [
      'DELETED, and "id:" inside the text',
      'id:42 stat:DELETED err:000 text:your id:777 is',
      { carrierId: '42', state: 'deleted' },
    ],
    [
      'spelled-out stat and no dates',
      'id:42 stat:DELIVERED',
      { state: 'delivered', submitDate: null, doneDate: null },
    ],
    [
      'an unknown stat and an impossible date',
      'id:42 submit date:2313451230 stat:WHATEVER',
      { state: 'unknown', submitDate: null },
    ],
    ['UNKNOWN', 'id:42 stat:UNKNOWN err:', { state: 'unknown', errorCode: null }],
  ])('tolerates %s', (_name, text, expected) => {
    expect(parseReceipt(receiptPdu(text))).toMatchObject(expected);
  });

  it('reads the text from message_payload and from UCS-2', () => {
    const payload = tlv.messagePayload(Buffer.from('id:5 stat:DELIVRD'));
    expect(parseReceipt(receiptPdu('', [payload]))).toMatchObject({ carrierId: '5', state: 'delivered' });
    const ucs2 = createPdu('deliver_sm', {
      sequence: 1,
      esmClass: 4,
      dataCoding: 8,
      shortMessage: Buffer.from('id:6 stat:EXPIRED', 'utf16le').swap16(),
    });
    expect(parseReceipt(ucs2)).toMatchObject({ carrierId: '6', state: 'expired' });
  });

  it('falls back to the text when a TLV is malformed', () => {
    const badState = { tag: TlvTag.message_state, value: Buffer.alloc(0) };
    expect(parseReceipt(receiptPdu('id:5 stat:REJECTD', [badState]))?.state).toBe('rejected');
  });

  it('applies the carrier time zone', () => {
    const r = parseReceipt(receiptPdu('id:5 done date:2301151230 stat:DELIVRD'), { utcOffsetMinutes: 120 });
    expect(r?.doneDate).toEqual(utc('2023-01-15T10:30'));
  });

  it('is null for a mobile-originated message, or a receipt naming no message', () => {
    expect(parseReceipt(receiptPdu('id:5 stat:DELIVRD', [], 0x00))).toBeNull();
    expect(parseReceipt(receiptPdu('stat:DELIVRD'))).toBeNull();
    // receipted_message_id alone marks a receipt, whatever esm_class says.
    expect(parseReceipt(receiptPdu('', [tlv.receiptedMessageId('9')], 0x00))).toMatchObject({
      carrierId: '9',
    });
  });

  it('formats the standard text, which parses back', () => {
    const text = formatReceiptText({
      id: '2587',
      state: 'undeliverable',
      submitDate: utc('2023-01-15T12:30:59'),
      doneDate: utc('2023-01-16T08:05'),
      errorCode: '001',
      text: 'Your code is 123456, valid 10 min',
    });
    expect(text).toBe(
      'id:2587 sub:001 dlvrd:000 submit date:2301151230 done date:2301160805 stat:UNDELIV err:001 text:Your code is 123456,',
    );
    expect(parseReceipt(receiptPdu(text))).toEqual({
      carrierId: '2587',
      state: 'undeliverable',
      errorCode: '001',
      submitDate: utc('2023-01-15T12:30'),
      doneDate: utc('2023-01-16T08:05'),
    });
  });
});

describe('normaliseCarrierId', () => {
  it.each([
    ['0A1B', 'hex', 'a1b'],
    ['0x0A1B', 'hex', 'a1b'],
    ['2587', 'decimal', 'a1b'],
    ['0000002587', 'decimal', 'a1b'],
    ['0', 'decimal', '0'],
    ['18446744073709551616', 'decimal', '10000000000000000'],
    ['  0A1B ', 'auto', 'a1b'],
    ['2587', 'auto', '2587'],
    ['000', 'auto', '0'],
    ['ABC-123', 'auto', 'abc-123'],
    ['0abc-1', 'auto', '0abc-1'],
    ['7F3A', 'decimal', '7f3a'], // not decimal: falls back to auto
    ['msg-42', 'hex', 'msg-42'],
  ] as const)('%s as %s -> %s', (id, format, expected) => {
    expect(normaliseCarrierId(id, format)).toBe(expected);
  });

  it('matches a hex submit_sm_resp id with the decimal receipt id of the same number', () => {
    expect(normaliseCarrierId('0A1B', 'hex')).toBe(normaliseCarrierId('2587', 'decimal'));
    expect(normaliseCarrierId('0a1b', 'auto')).toBe(normaliseCarrierId('0000002587', 'decimal'));
    expect(normaliseCarrierId('0A1B', 'auto')).not.toBe(normaliseCarrierId('2587', 'auto'));
  });
});

describe('long messages', () => {
  const udh = (ref: number, total: number, seq: number) => Buffer.from([5, 0, 3, ref, total, seq]);

  it('sends a short text as one part without UDH', () => {
    expect(buildSubmitParts('Hello', 7)).toEqual([
      { dataCoding: 0, esmClass: 0, shortMessage: Buffer.from('Hello') },
    ]);
    expect(buildSubmitParts('a'.repeat(160), 7)).toHaveLength(1);
    expect(buildSubmitParts('ж'.repeat(70), 7)).toEqual([
      { dataCoding: 8, esmClass: 0, shortMessage: Buffer.from('ж'.repeat(70), 'utf16le').swap16() },
    ]);
    expect(buildSubmitParts('', 0)).toEqual([{ dataCoding: 0, esmClass: 0, shortMessage: Buffer.alloc(0) }]);
  });

  it('splits 161 GSM characters into 153 + 8 septets', () => {
    const parts = buildSubmitParts('a'.repeat(161), 0xab);
    expect(parts).toEqual([
      {
        dataCoding: 0,
        esmClass: 0x40,
        shortMessage: Buffer.concat([udh(0xab, 2, 1), Buffer.alloc(153, 0x61)]),
      },
      {
        dataCoding: 0,
        esmClass: 0x40,
        shortMessage: Buffer.concat([udh(0xab, 2, 2), Buffer.alloc(8, 0x61)]),
      },
    ]);
    expect(parts[0]!.shortMessage.subarray(0, 6)).toEqual(hex('05 00 03 ab 02 01'));
  });

  it('never splits € (ESC + 0x65) across parts', () => {
    const parts = buildSubmitParts(`${'a'.repeat(152)}€${'b'.repeat(10)}`, 1);
    expect(parts.map((p) => p.shortMessage)).toEqual([
      Buffer.concat([hex('05 00 03 01 02 01'), Buffer.alloc(152, 0x61)]),
      Buffer.concat([hex('05 00 03 01 02 02 1b 65'), Buffer.alloc(10, 0x62)]),
    ]);
  });

  it('never splits a surrogate pair in a 71-unit UCS-2 text', () => {
    const text = `${'ж'.repeat(66)}😀${'ж'.repeat(3)}`; // 66 + 2 + 3 = 71 units
    const parts = buildSubmitParts(text, 0xff);
    expect(parts).toHaveLength(2);
    expect(parts.every((p) => p.dataCoding === 8 && p.esmClass === 0x40)).toBe(true);
    expect(parts[0]!.shortMessage).toEqual(Buffer.concat([hex('05 00 03 ff 02 01'), hex('0436'.repeat(66))]));
    expect(parts[1]!.shortMessage).toEqual(hex('05 00 03 ff 02 02', 'd83d de00', '0436'.repeat(3)));
  });

  it('rejects a reference outside 0..255', () => {
    expect(() => buildSubmitParts('x', 256)).toThrow(RangeError);
    expect(() => buildSubmitParts('x', -1)).toThrow(RangeError);
  });

  it('parses UDHs: 8-bit and 16-bit references, other elements, malformed headers', () => {
    const [first] = buildSubmitParts('a'.repeat(200), 9);
    expect(parseUdh(first!.shortMessage)).toEqual({
      concat: { reference: 9, referenceBits: 8, total: 2, seq: 1 },
      headerLength: 6,
      payload: Buffer.alloc(153, 0x61),
    });
    // Port addressing (IEI 0x05) then a 16-bit concatenation element (IEI 0x08).
    expect(parseUdh(hex('0c 05 04 0b84 23f0 08 04 1234 03 02', ascii('hi')))).toEqual({
      concat: { reference: 0x1234, referenceBits: 16, total: 3, seq: 2 },
      headerLength: 13,
      payload: Buffer.from('hi'),
    });
    expect(parseUdh(hex('05 00 03 01 02 00 61'))?.concat).toBeNull(); // seq 0 is ignored
    expect(parseUdh(hex('05 00 03 01 02 03'))?.concat).toBeNull(); // seq > total
    expect(parseUdh(hex('06 00 03 01 02 01'))).toBeNull(); // UDHL past the end
    expect(parseUdh(hex('04 00 04 01 02'))).toBeNull(); // element past the header
    expect(parseUdh(hex('02 00'))).toBeNull();
    expect(parseUdh(Buffer.alloc(0))).toBeNull();
    expect(parseUdh(hex('00 61'))).toEqual({ concat: null, headerLength: 1, payload: Buffer.from('a') });
  });
});

describe('carrier link records (link-protocol.ts)', () => {
  it('carries every byte of a message body to the link thread unchanged, through structured cloning', () => {
    const body = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const fields = {
      serviceType: '',
      sourceAddrTon: 5,
      sourceAddrNpi: 0,
      sourceAddr: 'Luigi',
      destAddrTon: 1,
      destAddrNpi: 1,
      destinationAddr: '33612345678',
      esmClass: 0x40,
      registeredDelivery: 1,
      validityPeriod: '000001000000000R',
      dataCoding: 8,
      shortMessage: body,
    };
    const batch: Batch = [Op.ACK, 7, 1, 0];
    pushSubmit(batch, 3, 42, fields);
    const received = structuredClone(batch);
    const at = 1 + OP_LENGTH[Op.ACK]!;
    expect(received[at]).toBe(Op.SUBMIT);
    expect(received.length).toBe(at + 1 + OP_LENGTH[Op.SUBMIT]!);
    expect(received.slice(at + 1, at + 3)).toEqual([3, 42]);
    const read = readSubmit(received, at);
    expect(read).toEqual(fields);
    expect(read.shortMessage.equals(body)).toBe(true);
  });
});
