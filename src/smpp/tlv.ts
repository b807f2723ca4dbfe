// Typed access to the optional parameters (§5.3.2) Relais reads or writes.
//
// Readers are lenient: a TLV with the wrong length for its tag reads as null (as if absent) rather than
// failing the PDU, because SMPP lets a receiver ignore what it cannot use and carriers do get these wrong.
// The first occurrence of a tag wins.

import { TlvTag } from './constants.js';
import type { Tlv } from './pdu.js';

interface HasTlvs {
  tlvs: readonly Tlv[];
}

export function findTlv(pdu: HasTlvs, tag: number): Buffer | null {
  for (const tlv of pdu.tlvs) if (tlv.tag === tag) return tlv.value;
  return null;
}

function fixed(pdu: HasTlvs, tag: number, length: 1 | 2): number | null {
  const value = findTlv(pdu, tag);
  if (value?.length !== length) return null;
  return length === 1 ? value[0]! : value.readUInt16BE(0);
}

/** A C-Octet String TLV. Tolerates a missing NUL (a common carrier bug) and stops at the first NUL. */
function cString(pdu: HasTlvs, tag: number): string | null {
  const value = findTlv(pdu, tag);
  if (!value) return null;
  const nul = value.indexOf(0);
  return value.toString('latin1', 0, nul < 0 ? value.length : nul);
}

/** receipted_message_id: the SMSC's id of the message a receipt is about. */
export const getReceiptedMessageId = (pdu: HasTlvs) => cString(pdu, TlvTag.receipted_message_id);
/** message_state: see `MessageState`. */
export const getMessageState = (pdu: HasTlvs) => fixed(pdu, TlvTag.message_state, 1);
/** message_payload: up to 64 KiB replacing short_message. */
export const getMessagePayload = (pdu: HasTlvs) => findTlv(pdu, TlvTag.message_payload);
/** user_message_reference. */
export const getUserMessageReference = (pdu: HasTlvs) => fixed(pdu, TlvTag.user_message_reference, 2);
export const getSourcePort = (pdu: HasTlvs) => fixed(pdu, TlvTag.source_port, 2);
export const getDestinationPort = (pdu: HasTlvs) => fixed(pdu, TlvTag.destination_port, 2);
/** sc_interface_version in bind_*_resp: 0x34 for SMPP 3.4; absent means 3.3 or earlier. */
export const getScInterfaceVersion = (pdu: HasTlvs) => fixed(pdu, TlvTag.sc_interface_version, 1);
/** more_messages_to_send. */
export function getMoreMessagesToSend(pdu: HasTlvs): boolean | null {
  const v = fixed(pdu, TlvTag.more_messages_to_send, 1);
  return v === null ? null : v !== 0;
}

/** network_error_code: network type (1 ANSI-136, 2 IS-95, 3 GSM, …) and its 2-octet code. */
export function getNetworkErrorCode(pdu: HasTlvs): { networkType: number; errorCode: number } | null {
  const value = findTlv(pdu, TlvTag.network_error_code);
  if (value?.length !== 3) return null;
  return { networkType: value[0]!, errorCode: value.readUInt16BE(1) };
}

/** sar_* TLVs: concatenation info as an alternative to a UDH. Null unless all three are valid. */
export function getSarInfo(pdu: HasTlvs): { reference: number; total: number; seq: number } | null {
  const reference = fixed(pdu, TlvTag.sar_msg_ref_num, 2);
  const total = fixed(pdu, TlvTag.sar_total_segments, 1);
  const seq = fixed(pdu, TlvTag.sar_segment_seqnum, 1);
  if (reference === null || total === null || seq === null) return null;
  return { reference, total, seq };
}

function uint(tag: number, value: number, octets: 1 | 2 | 3): Tlv {
  if (!Number.isInteger(value) || value < 0 || value >= 2 ** (8 * octets)) {
    throw new RangeError(`TLV 0x${tag.toString(16)}: ${value} does not fit in ${octets} octet(s)`);
  }
  const buf = Buffer.alloc(octets);
  buf.writeUIntBE(value, 0, octets);
  return { tag, value: buf };
}

/** Builders for the TLVs above; they throw RangeError on out-of-range values. */
export const tlv = {
  u8: (tag: number, value: number): Tlv => uint(tag, value, 1),
  u16: (tag: number, value: number): Tlv => uint(tag, value, 2),
  /** A C-Octet String: latin1 text plus the NUL. */
  cString: (tag: number, text: string): Tlv => ({ tag, value: Buffer.from(`${text}\0`, 'latin1') }),
  bytes: (tag: number, value: Uint8Array): Tlv => ({ tag, value: Buffer.from(value) }),
  receiptedMessageId: (id: string) => tlv.cString(TlvTag.receipted_message_id, id),
  messageState: (state: number) => uint(TlvTag.message_state, state, 1),
  messagePayload: (payload: Uint8Array) => tlv.bytes(TlvTag.message_payload, payload),
  scInterfaceVersion: (version: number) => uint(TlvTag.sc_interface_version, version, 1),
  networkErrorCode: (networkType: number, errorCode: number): Tlv => {
    const value = uint(TlvTag.network_error_code, errorCode, 2).value;
    return { tag: TlvTag.network_error_code, value: Buffer.concat([uint(0, networkType, 1).value, value]) };
  },
  sar: (reference: number, total: number, seq: number): Tlv[] => [
    uint(TlvTag.sar_msg_ref_num, reference, 2),
    uint(TlvTag.sar_total_segments, total, 1),
    uint(TlvTag.sar_segment_seqnum, seq, 1),
  ],
};
