// Cuts a TCP byte stream into SMPP frames. Every PDU starts with its own 4-octet command_length (§3.2),
// so a frame is complete once that many octets have arrived. A command_length outside 16..max means the
// stream is lost: there is no marker to resynchronise on, so the session must nack and close (§4.3).
//
// Chunks are queued as received and each octet is copied at most once: a frame inside one chunk is a
// zero-copy view of it, a frame spanning chunks is assembled once it is complete. Feeding a large stream
// in small pieces therefore costs linear time, never re-concatenating what is already buffered.

import { CommandStatus, DEFAULT_MAX_COMMAND_LENGTH, HEADER_LENGTH } from './constants.js';

export interface FramingError {
  /** ESME_RINVCMDLEN: the status for the generic_nack sent before closing. */
  status: number;
  message: string;
  commandLength: number;
  /** From the bad header, when its octets had already arrived. */
  commandId: number | null;
  sequence: number | null;
}

export interface FramerOptions {
  /** Largest command_length accepted; default 64 KiB. */
  maxCommandLength?: number;
}

/**
 * Usage: on each socket 'data' event, `push(chunk)` then `for (const frame of framer) …`; when the loop
 * ends, check `error`. Frames are views of the pushed chunks (no copy), so do not reuse pushed buffers.
 */
export class PduFramer implements Iterable<Buffer> {
  readonly maxCommandLength: number;
  #chunks: Buffer[] = [];
  /** Index in #chunks of the first chunk with unread octets, and how far into it we have read. */
  #head = 0;
  #offset = 0;
  #buffered = 0;
  #error: FramingError | null = null;

  constructor(options: FramerOptions = {}) {
    this.maxCommandLength = options.maxCommandLength ?? DEFAULT_MAX_COMMAND_LENGTH;
  }

  /** The fatal error that stopped the framer, or null. Once set, push() ignores input. */
  get error(): FramingError | null {
    return this.#error;
  }

  /** Octets received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  push(chunk: Uint8Array): void {
    if (this.#error || chunk.length === 0) return;
    this.#chunks.push(
      Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length),
    );
    this.#buffered += chunk.length;
  }

  /** The next complete frame (exactly command_length octets), or null if more input is needed or on error. */
  next(): Buffer | null {
    if (this.#error || this.#buffered < 4) return null;
    const length = this.#peekUInt32(0);
    if (length < HEADER_LENGTH || length > this.maxCommandLength) {
      this.#error = {
        status: CommandStatus.ESME_RINVCMDLEN,
        message: `command_length ${length} is outside ${HEADER_LENGTH}..${this.maxCommandLength}; the stream cannot be resynchronised`,
        commandLength: length,
        commandId: this.#buffered >= 8 ? this.#peekUInt32(4) : null,
        sequence: this.#buffered >= HEADER_LENGTH ? this.#peekUInt32(12) : null,
      };
      this.#chunks = [];
      this.#head = this.#offset = this.#buffered = 0;
      return null;
    }
    return this.#buffered < length ? null : this.#take(length);
  }

  *[Symbol.iterator](): Iterator<Buffer> {
    for (let frame = this.next(); frame; frame = this.next()) yield frame;
  }

  /** Big-endian uint32 at `pos` octets past the read position; the caller ensures they are buffered. */
  #peekUInt32(pos: number): number {
    const first = this.#chunks[this.#head]!;
    const at = this.#offset + pos;
    if (at + 4 <= first.length) return first.readUInt32BE(at);
    let value = 0;
    for (let i = 0; i < 4; i++) value = value * 256 + this.#byteAt(pos + i);
    return value;
  }

  #byteAt(pos: number): number {
    let i = this.#head;
    let at = this.#offset + pos;
    while (at >= this.#chunks[i]!.length) at -= this.#chunks[i++]!.length;
    return this.#chunks[i]![at]!;
  }

  /** Removes and returns the next `length` octets; the caller ensures they are buffered. */
  #take(length: number): Buffer {
    this.#buffered -= length;
    const first = this.#chunks[this.#head]!;
    if (first.length - this.#offset >= length) {
      const frame = first.subarray(this.#offset, this.#offset + length);
      this.#advance(length);
      return frame;
    }
    const frame = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.#chunks[this.#head]!;
      const n = Math.min(length - filled, chunk.length - this.#offset);
      chunk.copy(frame, filled, this.#offset, this.#offset + n);
      filled += n;
      this.#advance(n);
    }
    return frame;
  }

  /** Moves the read position forward within the head chunk, dropping it once consumed. */
  #advance(n: number): void {
    this.#offset += n;
    if (this.#offset < this.#chunks[this.#head]!.length) return;
    this.#offset = 0;
    this.#head++;
    // Drop consumed chunks in batches so the array never shifts per chunk (which would be quadratic).
    if (this.#head === this.#chunks.length) {
      this.#chunks = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
  }
}
