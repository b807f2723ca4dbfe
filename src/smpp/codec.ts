// SMPP 3.4 PDU encoder and decoder.
//
// decodePdu never throws: whatever a peer sends, it returns either a PDU or the command_status to answer
// with (in the matching *_resp, or generic_nack when the header itself is bad, §4.3). encodePdu
// throws RangeError on values that cannot be encoded: those are programmer errors, not peer input.

import {
  CommandStatus,
  commandName,
  DEFAULT_MAX_COMMAND_LENGTH,
  HEADER_LENGTH,
  isResponseId,
} from './constants.js';
import {
  COMMAND_BY_ID,
  type FieldLayout,
  LAYOUTS,
  type Pdu,
  type PduCommand,
  RESPONSE_OF,
  type RequestCommand,
  zeroPdu,
} from './pdu.js';

/** short_message is 0-254 octets (§4.4.1); longer texts go in message_payload. */
export const MAX_SHORT_MESSAGE = 254;

export interface CodecOptions {
  /** Largest command_length accepted; default 64 KiB. */
  maxCommandLength?: number;
}

export interface DecodeError {
  /** The command_status to answer with. */
  status: number;
  message: string;
}

export type DecodeFailure = {
  ok: false;
  error: DecodeError;
  /** From the header when it could be read, so the answer can echo it. */
  sequence: number | null;
  commandId: number | null;
};

export type DecodeResult = { ok: true; pdu: Pdu } | DecodeFailure;

class Malformed extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** 'destinationAddr' -> 'destination_addr': the spec's field names, for error messages. */
// Memoised: computed per field of every PDU, it was a fifth of the simulator's CPU as a regex replace.
const SPEC_NAMES = new Map<string, string>();
const specName = (key: string): string => {
  let name = SPEC_NAMES.get(key);
  if (name === undefined) {
    name = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    SPEC_NAMES.set(key, name);
  }
  return name;
};

/** Decodes one complete frame (exactly command_length octets, as PduFramer yields them). */
export function decodePdu(buf: Uint8Array, options: CodecOptions = {}): DecodeResult {
  let sequence: number | null = null;
  let commandId: number | null = null;
  try {
    const frame = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    if (frame.length >= 8) commandId = frame.readUInt32BE(4);
    if (frame.length >= HEADER_LENGTH) sequence = frame.readUInt32BE(12);
    return { ok: true, pdu: decodeFrame(frame, options.maxCommandLength ?? DEFAULT_MAX_COMMAND_LENGTH) };
  } catch (err) {
    // Anything but Malformed is a decoder bug (the fuzz tests look for it); answer rather than crash.
    const error =
      err instanceof Malformed
        ? { status: err.status, message: err.message }
        : { status: CommandStatus.ESME_RSYSERR, message: `internal decoder error: ${String(err)}` };
    return { ok: false, error, sequence, commandId };
  }
}

const fail = (status: number, message: string): never => {
  throw new Malformed(status, message);
};

const { ESME_RINVCMDLEN, ESME_RINVCMDID, ESME_RINVPARLEN, ESME_RINVMSGLEN, ESME_RINVOPTPARSTREAM } =
  CommandStatus;

function decodeFrame(frame: Buffer, maxCommandLength: number): Pdu {
  // §3.2 / §4.3: a header we cannot trust is answered with generic_nack ESME_RINVCMDLEN / RINVCMDID.
  if (frame.length < HEADER_LENGTH)
    fail(ESME_RINVCMDLEN, `${frame.length} octets is shorter than the header`);
  const commandLength = frame.readUInt32BE(0);
  if (commandLength < HEADER_LENGTH || commandLength > maxCommandLength) {
    fail(ESME_RINVCMDLEN, `command_length ${commandLength} is outside 16..${maxCommandLength}`);
  }
  if (commandLength !== frame.length) {
    fail(ESME_RINVCMDLEN, `command_length ${commandLength} but the frame has ${frame.length} octets`);
  }
  const commandId = frame.readUInt32BE(4);
  const command = COMMAND_BY_ID.get(commandId);
  if (!command) {
    const name = commandName(commandId);
    const hex = `0x${commandId.toString(16).padStart(8, '0')}`;
    return fail(ESME_RINVCMDID, name ? `${name} (${hex}) is not supported` : `unknown command_id ${hex}`);
  }
  const pdu = zeroPdu(command, frame.readUInt32BE(12));
  pdu.status = frame.readUInt32BE(8);
  readBody(frame, command, pdu);
  return pdu;
}

function readBody(frame: Buffer, command: PduCommand, pdu: Pdu): void {
  const fields = LAYOUTS[command].fields as readonly FieldLayout[];
  const record = pdu as unknown as Record<string, unknown>;
  const end = frame.length;
  let off = HEADER_LENGTH;
  const tlvs = pdu.tlvs;

  if (fields.length === 0) {
    if (end !== off) fail(ESME_RINVCMDLEN, `${command} has no body`);
    return;
  }
  // A response may come without a body: §4.1.2/§4.4.2 allow it when status ≠ 0, and some ESMEs send
  // 16-octet deliver_sm_resp even on success. Read it as all fields at their zero value (zeroPdu's).
  if (end === off && isResponseId(LAYOUTS[command].commandId)) return;

  // The hot path of every PDU received: no allocation but the values themselves, and the field's
  // spec name only built for an error (both showed in the end-to-end profile).
  for (const field of fields) {
    if (off >= end) fail(ESME_RINVCMDLEN, `body ends before ${specName(field.key)}`);
    if (field.kind === 'cstring') {
      // §3.1: a C-Octet String ends with a NUL that counts towards its max length.
      const limit = Math.min(end, off + field.max);
      const at = frame.indexOf(0, off);
      if (at < 0 || at >= limit) {
        const reason = limit === end && end - off < field.max ? 'is not NUL-terminated' : 'is too long';
        fail(ESME_RINVPARLEN, `${specName(field.key)} ${reason} (max ${field.max - 1} octets)`);
      }
      record[field.key] = at === off ? '' : frame.toString('latin1', off, at);
      off = at + 1;
    } else if (field.kind === 'u8') {
      record[field.key] = frame[off++];
    } else {
      const smLength = frame[off++]!;
      if (smLength > MAX_SHORT_MESSAGE)
        fail(ESME_RINVMSGLEN, `sm_length ${smLength} exceeds ${MAX_SHORT_MESSAGE}`);
      if (off + smLength > end) fail(ESME_RINVMSGLEN, `sm_length ${smLength} runs past the end of the PDU`);
      // Copies, so a PDU does not pin the (possibly large) chunk its frame was cut from.
      record[field.key] = Buffer.from(frame.subarray(off, off + smLength));
      off += smLength;
    }
  }

  // §3.2, §5.3: whatever follows the mandatory fields is a sequence of TLVs, exactly up to command_length.
  // Extra octets after short_message land here too, and fail unless they happen to form valid TLVs.
  while (off < end) {
    if (end - off < 4) fail(ESME_RINVOPTPARSTREAM, `${end - off} trailing octets where a TLV should start`);
    const tag = frame.readUInt16BE(off);
    const length = frame.readUInt16BE(off + 2);
    off += 4;
    if (off + length > end) {
      fail(
        ESME_RINVOPTPARSTREAM,
        `TLV 0x${tag.toString(16).padStart(4, '0')} of length ${length} is truncated`,
      );
    }
    tlvs.push({ tag, value: Buffer.from(frame.subarray(off, off + length)) });
    off += length;
  }
}

const isUint = (value: unknown, max: number): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max;

function checkUint(what: string, value: unknown, max: number): number {
  if (!isUint(value, max))
    throw new RangeError(`${what} must be an integer in 0..${max}, got ${String(value)}`);
  return value;
}

/** `submit_sm.source_addr`: a field as an encoding error names it. */
const fieldName = (command: string, field: FieldLayout) => `${command}.${specName(field.key)}`;

/** Size of a field's encoding, validating it on the way (names are built only for an error). */
function fieldSize(command: string, field: FieldLayout, value: unknown): number {
  if (field.kind === 'u8') {
    if (!isUint(value, 0xff)) checkUint(fieldName(command, field), value, 0xff);
    return 1;
  }
  if (field.kind === 'sm') {
    if (!(value instanceof Uint8Array)) throw new RangeError(`${fieldName(command, field)} must be a Buffer`);
    if (value.length > MAX_SHORT_MESSAGE) {
      throw new RangeError(
        `${fieldName(command, field)} is ${value.length} octets; max ${MAX_SHORT_MESSAGE} (use message_payload)`,
      );
    }
    return 1 + value.length;
  }
  if (typeof value !== 'string') throw new RangeError(`${fieldName(command, field)} must be a string`);
  if (value.length > field.max - 1) {
    throw new RangeError(`${fieldName(command, field)} is ${value.length} characters; max ${field.max - 1}`);
  }
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code === 0 || code > 0xff) {
      throw new RangeError(
        `${fieldName(command, field)} has a character that is not a non-NUL octet (U+${code.toString(16)}) at ${i}`,
      );
    }
  }
  return value.length + 1;
}

export function encodePdu(pdu: Pdu): Buffer {
  const layout = LAYOUTS[pdu.command];
  if (!layout) throw new RangeError(`unknown command ${String(pdu.command)}`);
  const fields = layout.fields as readonly FieldLayout[];
  const record = pdu as unknown as Record<string, unknown>;
  checkUint('sequence', pdu.sequence, 0xffffffff);
  checkUint('status', pdu.status, 0xffffffff);
  const tlvs = pdu.tlvs ?? [];
  if (fields.length === 0 && tlvs.length > 0) throw new RangeError(`${pdu.command} cannot carry TLVs`);

  let size = HEADER_LENGTH;
  for (const field of fields) size += fieldSize(pdu.command, field, record[field.key]);
  for (const { tag, value } of tlvs) {
    checkUint('TLV tag', tag, 0xffff);
    if (!(value instanceof Uint8Array))
      throw new RangeError(`TLV 0x${tag.toString(16)} value must be a Buffer`);
    if (value.length > 0xffff) checkUint(`TLV 0x${tag.toString(16)} length`, value.length, 0xffff);
    size += 4 + value.length;
  }
  // An error response whose body would be all zero values is sent header-only (§4.1.2, §4.4.2).
  const omitBody =
    pdu.status !== 0 &&
    isResponseId(layout.commandId) &&
    tlvs.length === 0 &&
    fields.every((f) => f.kind === 'cstring' && record[f.key] === '');
  if (omitBody) size = HEADER_LENGTH;

  const out = Buffer.allocUnsafe(size);
  out.writeUInt32BE(size, 0);
  out.writeUInt32BE(layout.commandId, 4);
  out.writeUInt32BE(pdu.status, 8);
  out.writeUInt32BE(pdu.sequence, 12);
  if (omitBody) return out;
  let off = HEADER_LENGTH;
  for (const field of fields) {
    const value = record[field.key];
    if (field.kind === 'u8') {
      out[off++] = value as number;
    } else if (field.kind === 'sm') {
      const sm = value as Uint8Array;
      out[off++] = sm.length;
      out.set(sm, off);
      off += sm.length;
    } else {
      // By hand: most of these strings are empty or a few octets, where Buffer#write's own cost
      // outweighs the copy. fieldSize checked each character is one octet.
      const text = value as string;
      for (let i = 0; i < text.length; i++) out[off++] = text.charCodeAt(i);
      out[off++] = 0;
    }
  }
  for (const { tag, value } of tlvs) {
    out.writeUInt16BE(tag, off);
    out.writeUInt16BE(value.length, off + 2);
    out.set(value, off + 4);
    off += 4 + value.length;
  }
  return out;
}

/**
 * What to send back for a PDU that failed to decode, or null when nothing may be sent:
 * - a bad header (command_length, unknown command_id) gets generic_nack (§4.3);
 * - a known request with a bad body gets its own *_resp carrying the error status;
 * - a response never gets an answer (a nack of a nack would ping-pong).
 * outbind has no response and is nacked. After a framing error the session should also close.
 */
export function errorResponse(failure: DecodeFailure): Pdu | null {
  const { commandId, error } = failure;
  const sequence = failure.sequence ?? 0;
  const status = error.status;
  const name = commandId === null ? null : commandName(commandId);
  if (name !== null && isResponseId(commandId!)) return null;
  const headerLevel = status === CommandStatus.ESME_RINVCMDLEN || status === CommandStatus.ESME_RINVCMDID;
  const command =
    !headerLevel && name !== null && name in RESPONSE_OF
      ? RESPONSE_OF[name as RequestCommand]
      : 'generic_nack';
  const answer: Pdu = zeroPdu(command, sequence);
  answer.status = status;
  return answer;
}
