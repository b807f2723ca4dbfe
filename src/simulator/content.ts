// What the simulator reads from a submit_sm and writes into receipts and MO deliver_sm.

import { decodeGsm7, decodeUcs2 } from '../messages/encoding.js';
import { DataCoding, EsmClass, MessageState, Npi, RegisteredDelivery, Ton } from '../smpp/constants.js';
import { buildSubmitParts, parseUdh } from '../smpp/long-message.js';
import { getMessagePayload, getSarInfo, type SubmitSmPdu, tlv } from '../smpp/pdu.js';
import { formatReceiptText } from '../smpp/receipt.js';
import type { Outgoing } from '../smpp/session.js';
import type { Random } from './random.js';
import type { SubmitRecord, UdhInfo } from './types.js';

export interface SubmitContent {
  /** The message text decoded per data_coding, without the UDH; binary codings are shown as hex. */
  text: string;
  /** Concatenation info from the UDH (or the sar_* TLVs), null for a single-part message. */
  udh: UdhInfo | null;
}

/** Decodes user data: GSM-7 unpacked (data_coding 0 and the GSM class codings), UCS-2, Latin-1/IA5. */
export function decodeUserData(bytes: Buffer, dataCoding: number): string {
  if (dataCoding === DataCoding.SMSC_DEFAULT || (dataCoding & 0xf4) === 0xf0) return decodeGsm7(bytes);
  if (dataCoding === DataCoding.UCS2) return decodeUcs2(bytes);
  if (dataCoding === DataCoding.IA5 || dataCoding === DataCoding.LATIN1) return bytes.toString('latin1');
  return bytes.toString('hex');
}

export function readSubmitContent(pdu: SubmitSmPdu): SubmitContent {
  let bytes = pdu.shortMessage.length > 0 ? pdu.shortMessage : (getMessagePayload(pdu) ?? pdu.shortMessage);
  let udh: UdhInfo | null = null;
  if (pdu.esmClass & EsmClass.UDHI) {
    const parsed = parseUdh(bytes);
    if (parsed) {
      bytes = parsed.payload;
      if (parsed.concat)
        udh = { reference: parsed.concat.reference, total: parsed.concat.total, seq: parsed.concat.seq };
    }
  } else {
    udh = getSarInfo(pdu);
  }
  return { text: decodeUserData(bytes, pdu.dataCoding), udh };
}

export type MessageIdFormat = 'hex' | 'decimal';
export type ReceiptIdFormat = 'same' | 'hex' | 'decimal';

export function formatMessageId(n: number, format: MessageIdFormat): string {
  return n.toString(format === 'hex' ? 16 : 10);
}

/** The id written in the receipt text: the response's id, or the same number in another base. */
export function receiptTextId(n: number, messageIdFormat: MessageIdFormat, format: ReceiptIdFormat): string {
  return formatMessageId(n, format === 'same' ? messageIdFormat : format);
}

export interface Address {
  addr: string;
  ton: number;
  npi: number;
}

/** '+33612345678' -> international/ISDN without the '+'; digits -> unknown/ISDN; anything else alphanumeric. */
export function parseAddress(value: string): Address {
  if (/^\+\d+$/.test(value)) return { addr: value.slice(1), ton: Ton.INTERNATIONAL, npi: Npi.ISDN };
  if (/^\d+$/.test(value)) return { addr: value, ton: Ton.UNKNOWN, npi: Npi.ISDN };
  return { addr: value, ton: Ton.ALPHANUMERIC, npi: Npi.UNKNOWN };
}

export type FinalState = 'delivered' | 'undeliverable' | 'expired';

const MESSAGE_STATE: Record<FinalState, number> = {
  delivered: MessageState.DELIVERED,
  undeliverable: MessageState.UNDELIVERABLE,
  expired: MessageState.EXPIRED,
};

/** What a receipt needs from its submit, kept until the receipt is due. */
export interface ReceiptJob {
  systemId: string;
  /** As in the submit_sm_resp; also receipted_message_id. */
  messageId: string;
  /** As written in the receipt text (receipt_id_format). */
  textId: string;
  state: FinalState;
  /** err: of the text, 3 digits. */
  errorCode: string;
  /** Date.now() when the submit was accepted. */
  submittedAt: number;
  /** The submit's addresses; the receipt swaps them. */
  source: Address;
  destination: Address;
  /** The first 20 characters of the message (Appendix B). */
  text: string;
}

const PRINTABLE = /^[\x20-\x7e]*$/;

/**
 * The receipt's `text:` field: the first 20 characters, printable ASCII only (others become '?'),
 * since receipts travel as data_coding 0 and readers take them as ASCII/Latin-1.
 */
export function previewText(text: string): string {
  const head = text.length > 20 ? text.slice(0, 20) : text;
  return PRINTABLE.test(head) ? head : head.replace(/[^\x20-\x7e]/g, '?');
}

/** The receipt outcome for a draw in [0, 1). */
export function finalState(draw: number, undeliverableRate: number, expiredRate: number): FinalState {
  if (draw < undeliverableRate) return 'undeliverable';
  return draw < undeliverableRate + expiredRate ? 'expired' : 'delivered';
}

/** SMPP 3.4 §5.2.17 bits 1-0: 1 always, 2 on failure; 3 (reserved in 3.4) as SMPP 5.0's "on success". */
export function wantsReceipt(registeredDelivery: number, state: FinalState): boolean {
  switch (registeredDelivery & RegisteredDelivery.RECEIPT_MASK) {
    case RegisteredDelivery.RECEIPT_ALWAYS:
      return true;
    case RegisteredDelivery.RECEIPT_ON_FAILURE:
      return state !== 'delivered';
    case 3:
      return state === 'delivered';
    default:
      return false;
  }
}

/** A random start so ids differ between runs (or are fixed by the seed): 10 hex digits for a long while. */
export function firstMessageId(random: Random): number {
  return 2 ** 36 + Math.floor(random() * 2 ** 38);
}

/** What a receipt needs from its submit; `text` is the full message text. */
export function receiptJob(
  pdu: SubmitSmPdu,
  fields: Omit<ReceiptJob, 'submittedAt' | 'source' | 'destination'>,
): ReceiptJob {
  return {
    systemId: fields.systemId,
    messageId: fields.messageId,
    textId: fields.textId,
    state: fields.state,
    errorCode: fields.errorCode,
    submittedAt: Date.now(),
    source: { addr: pdu.sourceAddr, ton: pdu.sourceAddrTon, npi: pdu.sourceAddrNpi },
    destination: { addr: pdu.destinationAddr, ton: pdu.destAddrTon, npi: pdu.destAddrNpi },
    text: previewText(fields.text),
  };
}

export function submitRecord(
  at: number,
  systemId: string,
  sessionId: number,
  pdu: SubmitSmPdu,
  messageId: string | null,
  status: number | null,
  content: SubmitContent,
): SubmitRecord {
  return {
    at,
    systemId,
    sessionId,
    sequence: pdu.sequence,
    messageId,
    status,
    source: pdu.sourceAddr,
    destination: pdu.destinationAddr,
    dataCoding: pdu.dataCoding,
    esmClass: pdu.esmClass,
    registeredDelivery: pdu.registeredDelivery,
    text: content.text,
    udh: content.udh,
  };
}

/** The deliver_sm of a receipt (SMPP 3.4 Appendix B text plus the §5.3.2 TLVs). */
export function buildReceipt(job: ReceiptJob, doneAt: number): Outgoing<'deliver_sm'> {
  const text = formatReceiptText({
    id: job.textId,
    state: job.state,
    submitDate: new Date(job.submittedAt),
    doneDate: new Date(doneAt),
    errorCode: job.errorCode,
    text: job.text,
  });
  const tlvs = [tlv.receiptedMessageId(job.messageId), tlv.messageState(MESSAGE_STATE[job.state])];
  const networkError = Number.parseInt(job.errorCode, 10);
  if (job.state !== 'delivered' && networkError > 0) tlvs.push(tlv.networkErrorCode(3, networkError)); // 3 = GSM
  return {
    sourceAddrTon: job.destination.ton,
    sourceAddrNpi: job.destination.npi,
    sourceAddr: job.destination.addr,
    destAddrTon: job.source.ton,
    destAddrNpi: job.source.npi,
    destinationAddr: job.source.addr,
    esmClass: EsmClass.TYPE_DELIVERY_RECEIPT,
    dataCoding: DataCoding.SMSC_DEFAULT,
    shortMessage: Buffer.from(text, 'latin1'),
    tlvs,
  };
}

/** The deliver_sm of a mobile-originated message; a long text becomes concatenated parts (UDH). */
export function buildMo(from: string, to: string, text: string, reference: number): Outgoing<'deliver_sm'>[] {
  const source = parseAddress(from);
  const destination = parseAddress(to);
  for (const [name, a] of [
    ['from', source],
    ['to', destination],
  ] as const) {
    if (a.addr.length === 0 || a.addr.length > 20)
      throw new RangeError(`${name} must have 1 to 20 characters`);
    if (/[^\x20-\x7e]/.test(a.addr)) throw new RangeError(`${name} must be printable ASCII`);
  }
  return buildSubmitParts(text, reference & 0xff).map((part) => ({
    sourceAddrTon: source.ton,
    sourceAddrNpi: source.npi,
    sourceAddr: source.addr,
    destAddrTon: destination.ton,
    destAddrNpi: destination.npi,
    destinationAddr: destination.addr,
    esmClass: part.esmClass, // 0: a plain short message (UDHI only for parts)
    dataCoding: part.dataCoding,
    shortMessage: part.shortMessage,
  }));
}
