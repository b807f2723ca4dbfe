// Typed SMPP 3.4 PDUs (§4) and the layout of their mandatory bodies.
//
// C-Octet Strings are carried as JS strings with one char per octet (latin1), so any octet sequence
// round-trips exactly; SMPP's strings are ASCII in practice. Max lengths below are the spec's, in octets
// *including* the terminating NUL (a 16-octet system_id holds 15 characters).

import { CommandId } from './constants.js';

/** An optional parameter (§5.3): 2-octet tag, 2-octet length, value. */
export interface Tlv {
  tag: number;
  value: Buffer;
}

interface PduBase<C extends string> {
  command: C;
  /** sequence_number: 1..0x7FFFFFFF by §5.1.4; any 32-bit value is accepted. */
  sequence: number;
  /** command_status: 0 in requests, the outcome in responses (§5.1.3). */
  status: number;
  /** Optional parameters in wire order. Always empty for header-only PDUs (enquire_link, unbind…). */
  tlvs: Tlv[];
}

/** §4.1.1 bind_transmitter / bind_receiver / bind_transceiver (§4.1.3, §4.1.5). */
export interface BindFields {
  systemId: string; // ≤ 16
  password: string; // ≤ 9
  systemType: string; // ≤ 13
  interfaceVersion: number;
  addrTon: number;
  addrNpi: number;
  addressRange: string; // ≤ 41
}

/** §4.1.2 bind_*_resp; the body may be absent when status ≠ 0. TLV: sc_interface_version. */
export interface BindRespFields {
  systemId: string; // ≤ 16
}

/** §4.1.7.1 outbind. */
export interface OutbindFields {
  systemId: string; // ≤ 16
  password: string; // ≤ 9
}

/** §4.4.1 submit_sm and §4.6.1 deliver_sm share one layout (deliver_sm sets the time fields to NULL). */
export interface ShortMessageFields {
  serviceType: string; // ≤ 6
  sourceAddrTon: number;
  sourceAddrNpi: number;
  sourceAddr: string; // ≤ 21
  destAddrTon: number;
  destAddrNpi: number;
  destinationAddr: string; // ≤ 21
  esmClass: number;
  protocolId: number;
  priorityFlag: number;
  scheduleDeliveryTime: string; // ≤ 17: '' or 16 chars (§7.1)
  validityPeriod: string; // ≤ 17
  registeredDelivery: number;
  replaceIfPresentFlag: number;
  dataCoding: number;
  smDefaultMsgId: number;
  /** 0-254 octets; sm_length is derived from it. */
  shortMessage: Buffer;
}

/** §4.7.1 data_sm: no short_message, the payload travels in message_payload. */
export interface DataSmFields {
  serviceType: string; // ≤ 6
  sourceAddrTon: number;
  sourceAddrNpi: number;
  sourceAddr: string; // ≤ 65
  destAddrTon: number;
  destAddrNpi: number;
  destinationAddr: string; // ≤ 65
  esmClass: number;
  registeredDelivery: number;
  dataCoding: number;
}

/** §4.4.2 submit_sm_resp, §4.6.2 deliver_sm_resp (message_id unused, NULL), §4.7.2 data_sm_resp. */
export interface MessageIdFields {
  messageId: string; // ≤ 65
}

type EmptyFields = Record<never, never>;

export type BindTransmitterPdu = PduBase<'bind_transmitter'> & BindFields;
export type BindTransmitterRespPdu = PduBase<'bind_transmitter_resp'> & BindRespFields;
export type BindReceiverPdu = PduBase<'bind_receiver'> & BindFields;
export type BindReceiverRespPdu = PduBase<'bind_receiver_resp'> & BindRespFields;
export type BindTransceiverPdu = PduBase<'bind_transceiver'> & BindFields;
export type BindTransceiverRespPdu = PduBase<'bind_transceiver_resp'> & BindRespFields;
export type OutbindPdu = PduBase<'outbind'> & OutbindFields;
export type UnbindPdu = PduBase<'unbind'> & EmptyFields;
export type UnbindRespPdu = PduBase<'unbind_resp'> & EmptyFields;
export type EnquireLinkPdu = PduBase<'enquire_link'> & EmptyFields;
export type EnquireLinkRespPdu = PduBase<'enquire_link_resp'> & EmptyFields;
export type GenericNackPdu = PduBase<'generic_nack'> & EmptyFields;
export type SubmitSmPdu = PduBase<'submit_sm'> & ShortMessageFields;
export type SubmitSmRespPdu = PduBase<'submit_sm_resp'> & MessageIdFields;
export type DeliverSmPdu = PduBase<'deliver_sm'> & ShortMessageFields;
export type DeliverSmRespPdu = PduBase<'deliver_sm_resp'> & MessageIdFields;
export type DataSmPdu = PduBase<'data_sm'> & DataSmFields;
export type DataSmRespPdu = PduBase<'data_sm_resp'> & MessageIdFields;

export type Pdu =
  | BindTransmitterPdu
  | BindTransmitterRespPdu
  | BindReceiverPdu
  | BindReceiverRespPdu
  | BindTransceiverPdu
  | BindTransceiverRespPdu
  | OutbindPdu
  | UnbindPdu
  | UnbindRespPdu
  | EnquireLinkPdu
  | EnquireLinkRespPdu
  | GenericNackPdu
  | SubmitSmPdu
  | SubmitSmRespPdu
  | DeliverSmPdu
  | DeliverSmRespPdu
  | DataSmPdu
  | DataSmRespPdu;

export type PduCommand = Pdu['command'];
export type PduOf<C extends PduCommand> = Extract<Pdu, { command: C }>;
export type BodyKey<C extends PduCommand> = Exclude<keyof PduOf<C>, keyof PduBase<string>> & string;

/** One mandatory field. `max` counts octets including the NUL, as the spec's tables do. */
export type FieldLayout<K extends string = string> =
  | { key: K; kind: 'cstring'; max: number }
  | { key: K; kind: 'u8' }
  /** sm_length (1 octet) then short_message (0-254 octets), §4.4.1. */
  | { key: K; kind: 'sm' };

export interface PduLayout<C extends PduCommand = PduCommand> {
  commandId: number;
  /** Mandatory fields in wire order; TLVs may follow iff there is at least one. */
  fields: readonly FieldLayout<BodyKey<C>>[];
}

const cstr = <K extends string>(key: K, max: number) => ({ key, kind: 'cstring', max }) as const;
const u8 = <K extends string>(key: K) => ({ key, kind: 'u8' }) as const;

const BIND = [
  cstr('systemId', 16),
  cstr('password', 9),
  cstr('systemType', 13),
  u8('interfaceVersion'),
  u8('addrTon'),
  u8('addrNpi'),
  cstr('addressRange', 41),
] as const;
const BIND_RESP = [cstr('systemId', 16)] as const;
const MESSAGE_ID = [cstr('messageId', 65)] as const;
const SHORT_MESSAGE = [
  cstr('serviceType', 6),
  u8('sourceAddrTon'),
  u8('sourceAddrNpi'),
  cstr('sourceAddr', 21),
  u8('destAddrTon'),
  u8('destAddrNpi'),
  cstr('destinationAddr', 21),
  u8('esmClass'),
  u8('protocolId'),
  u8('priorityFlag'),
  cstr('scheduleDeliveryTime', 17),
  cstr('validityPeriod', 17),
  u8('registeredDelivery'),
  u8('replaceIfPresentFlag'),
  u8('dataCoding'),
  u8('smDefaultMsgId'),
  { key: 'shortMessage', kind: 'sm' },
] as const;
const DATA_SM = [
  cstr('serviceType', 6),
  u8('sourceAddrTon'),
  u8('sourceAddrNpi'),
  cstr('sourceAddr', 65),
  u8('destAddrTon'),
  u8('destAddrNpi'),
  cstr('destinationAddr', 65),
  u8('esmClass'),
  u8('registeredDelivery'),
  u8('dataCoding'),
] as const;

export const LAYOUTS: { readonly [C in PduCommand]: PduLayout<C> } = {
  bind_transmitter: { commandId: CommandId.bind_transmitter, fields: BIND },
  bind_transmitter_resp: { commandId: CommandId.bind_transmitter_resp, fields: BIND_RESP },
  bind_receiver: { commandId: CommandId.bind_receiver, fields: BIND },
  bind_receiver_resp: { commandId: CommandId.bind_receiver_resp, fields: BIND_RESP },
  bind_transceiver: { commandId: CommandId.bind_transceiver, fields: BIND },
  bind_transceiver_resp: { commandId: CommandId.bind_transceiver_resp, fields: BIND_RESP },
  outbind: { commandId: CommandId.outbind, fields: [cstr('systemId', 16), cstr('password', 9)] },
  unbind: { commandId: CommandId.unbind, fields: [] },
  unbind_resp: { commandId: CommandId.unbind_resp, fields: [] },
  enquire_link: { commandId: CommandId.enquire_link, fields: [] },
  enquire_link_resp: { commandId: CommandId.enquire_link_resp, fields: [] },
  generic_nack: { commandId: CommandId.generic_nack, fields: [] },
  submit_sm: { commandId: CommandId.submit_sm, fields: SHORT_MESSAGE },
  submit_sm_resp: { commandId: CommandId.submit_sm_resp, fields: MESSAGE_ID },
  deliver_sm: { commandId: CommandId.deliver_sm, fields: SHORT_MESSAGE },
  deliver_sm_resp: { commandId: CommandId.deliver_sm_resp, fields: MESSAGE_ID },
  data_sm: { commandId: CommandId.data_sm, fields: DATA_SM },
  data_sm_resp: { commandId: CommandId.data_sm_resp, fields: MESSAGE_ID },
};

export const PDU_COMMANDS = Object.keys(LAYOUTS) as PduCommand[];

/** command_id -> the command this codec supports, for decoding. */
export const COMMAND_BY_ID: ReadonlyMap<number, PduCommand> = new Map(
  PDU_COMMANDS.map((command) => [LAYOUTS[command].commandId, command]),
);

/** The response each request expects (§4); outbind has none, it is answered by a bind. */
export const RESPONSE_OF = {
  bind_transmitter: 'bind_transmitter_resp',
  bind_receiver: 'bind_receiver_resp',
  bind_transceiver: 'bind_transceiver_resp',
  unbind: 'unbind_resp',
  enquire_link: 'enquire_link_resp',
  submit_sm: 'submit_sm_resp',
  deliver_sm: 'deliver_sm_resp',
  data_sm: 'data_sm_resp',
} as const satisfies Partial<Record<PduCommand, PduCommand>>;

export type RequestCommand = keyof typeof RESPONSE_OF;

/** An empty short_message, shared: a Buffer of no octets cannot be written into. */
const NO_OCTETS = Buffer.alloc(0);

// The PDUs of every message (submit_sm, deliver_sm and their responses) are built from one object
// literal per body shape, with every field at its zero value: V8 gives the objects of one literal one
// hidden class. Built field after field through computed keys, as the others still are (a few per
// connection), each new PDU went through a chain of hidden classes, and creating, decoding and
// encoding them was about half of the codec's time (docs/benchmarks.md, 2026-11-28). LAYOUTS stays
// the wire order; a test checks that every zero PDU holds exactly its layout's fields.
type Header<C extends PduCommand> = Pick<PduBase<C>, 'command' | 'sequence'>;
type Commands<F> = { [C in PduCommand]: PduOf<C> extends PduBase<C> & F ? C : never }[PduCommand];
type Shape<F> = <C extends Commands<F>>(h: Header<C>) => PduBase<C> & F;

const messageIdShape: Shape<MessageIdFields> = ({ command, sequence }) => ({
  command,
  sequence,
  status: 0,
  tlvs: [],
  messageId: '',
});
const shortMessageShape: Shape<ShortMessageFields> = ({ command, sequence }) => ({
  command,
  sequence,
  status: 0,
  tlvs: [],
  serviceType: '',
  sourceAddrTon: 0,
  sourceAddrNpi: 0,
  sourceAddr: '',
  destAddrTon: 0,
  destAddrNpi: 0,
  destinationAddr: '',
  esmClass: 0,
  protocolId: 0,
  priorityFlag: 0,
  scheduleDeliveryTime: '',
  validityPeriod: '',
  registeredDelivery: 0,
  replaceIfPresentFlag: 0,
  dataCoding: 0,
  smDefaultMsgId: 0,
  shortMessage: NO_OCTETS,
});
const fromLayout = <C extends PduCommand>({ command, sequence }: Header<C>): PduOf<C> => {
  const pdu: Record<string, unknown> = { command, sequence, status: 0, tlvs: [] };
  for (const field of LAYOUTS[command].fields as readonly FieldLayout[]) {
    pdu[field.key] = field.kind === 'cstring' ? '' : field.kind === 'u8' ? 0 : NO_OCTETS;
  }
  return pdu as unknown as PduOf<C>;
};

const SHAPES: { readonly [C in PduCommand]: (h: Header<C>) => PduOf<C> } = {
  bind_transmitter: fromLayout,
  bind_transmitter_resp: fromLayout,
  bind_receiver: fromLayout,
  bind_receiver_resp: fromLayout,
  bind_transceiver: fromLayout,
  bind_transceiver_resp: fromLayout,
  outbind: fromLayout,
  unbind: fromLayout,
  unbind_resp: fromLayout,
  enquire_link: fromLayout,
  enquire_link_resp: fromLayout,
  generic_nack: fromLayout,
  submit_sm: shortMessageShape,
  submit_sm_resp: messageIdShape,
  deliver_sm: shortMessageShape,
  deliver_sm_resp: messageIdShape,
  data_sm: fromLayout,
  data_sm_resp: messageIdShape,
};

/** A PDU with status 0, no TLVs and every field at its zero value. */
export function zeroPdu<C extends PduCommand>(command: C, sequence: number): PduOf<C> {
  return (SHAPES[command] as (h: Header<C>) => PduOf<C>)({ command, sequence });
}

type PduInit<C extends PduCommand> = Partial<Omit<PduOf<C>, 'command'>> & { sequence: number };

/** Builds a PDU with every field not given set to its zero value and status 0. */
export function createPdu<C extends PduCommand>(command: C, init: PduInit<C>): PduOf<C> {
  return Object.assign(zeroPdu(command, init.sequence), init);
}

// The typed TLV accessors and builders live in tlv.ts; re-exported so PDU users need one import.
export * from './tlv.js';
