import { isUtf8 } from 'node:buffer';
import { CLOSE, isSendableCloseCode } from '../close-codes.ts';
import { OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT } from './opcodes.ts';

/**
 * What the reader found. Payloads may be views into the bytes given to push(): valid only during the
 * call. After onClose or onError the reader is stopped and reports nothing more.
 */
export interface FrameEvents {
  onMessage(data: Buffer, isBinary: boolean): void;
  onPing(payload: Buffer): void;
  onPong(payload: Buffer): void;
  /** A valid close frame; `code` is 1005 when its body was empty (§7.1.5). */
  onClose(code: number, reason: string): void;
  /** The upstream broke the protocol or a limit; `code` is what to fail the connection with (§7.1.7). */
  onError(code: number, reason: string): void;
}

export interface FrameReaderOptions {
  /** Largest message (all fragments together); past it: 1009. */
  maxPayloadBytes: number;
  /** Most frames one message may span, empty ones included; past it: 1008. Default MAX_FRAGMENTS. */
  maxFragments?: number;
}

/**
 * Default bound on frames per message. Zero-length continuation frames cost no payload bytes, so
 * maxPayloadBytes alone let an upstream grow the fragment list without end (a Buffer object per
 * frame). 1024 frames hold a 1 MiB message sent in 1 KiB pieces; a real sender fragments far more
 * coarsely. Counted like `ws`'s maxFragments, and failed with the same 1008: the message broke a
 * limit on its shape, not on its size.
 */
export const MAX_FRAGMENTS = 1024;

/**
 * Parses server frames (RFC 6455 §5.2) from bytes as they arrive, however they are split, and
 * reports messages, control frames and failures, each failure with the close code it calls for.
 * It knows no socket: the caller feeds it with push() and acts on the events.
 */
export class FrameReader {
  readonly #events: FrameEvents;
  readonly #maxPayloadBytes: number;
  readonly #maxFragments: number;

  /** A frame header split across reads is assembled here. */
  readonly #head = Buffer.allocUnsafe(14);
  #headLength = 0;
  #frameOpcode = 0;
  #frameFin = false;
  /** Payload length of the frame whose header was just read. */
  #pendingLength = 0;
  /** The payload of a frame split across reads, filled as bytes arrive. */
  #framePayload: Buffer | null = null;
  #framePayloadFilled = 0;
  /** The message being assembled from fragments; opcode 0 when none is. */
  #fragments: Buffer[] = [];
  #fragmentsBytes = 0;
  #fragmentsOpcode = 0;
  #fragmentCount = 0;

  #paused = false;
  #stopped = false;

  constructor(events: FrameEvents, options: FrameReaderOptions) {
    this.#events = events;
    this.#maxPayloadBytes = options.maxPayloadBytes;
    this.#maxFragments = options.maxFragments ?? MAX_FRAGMENTS;
  }

  /** True after a close frame or a failure: push() then consumes everything and reports nothing. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Stops at the next frame boundary; push() returns how far it got. May be called from an event. */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
  }

  /** Stops for good (the owner failed the connection for its own reason). */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * The common case of a read that only continues a large frame: copies it and returns true, so
   * the caller can skip whatever it does around push() (the gateway's cork). False: call push().
   */
  absorb(chunk: Buffer): boolean {
    const payload = this.#framePayload;
    if (payload === null || this.#framePayloadFilled + chunk.length >= payload.length) return false;
    chunk.copy(payload, this.#framePayloadFilled);
    this.#framePayloadFilled += chunk.length;
    return true;
  }

  /**
   * Parses frames from `chunk` and returns how many bytes it consumed: all of them unless paused
   * (then the caller keeps the rest, copied if the chunk's memory is reused, and pushes it later).
   */
  push(chunk: Buffer): number {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.#stopped) return end;
      if (this.#paused) return pos;

      if (this.#framePayload !== null) {
        const take = Math.min(end - pos, this.#framePayload.length - this.#framePayloadFilled);
        chunk.copy(this.#framePayload, this.#framePayloadFilled, pos, pos + take);
        this.#framePayloadFilled += take;
        pos += take;
        if (this.#framePayloadFilled < this.#framePayload.length) return pos;
        const payload = this.#framePayload;
        this.#framePayload = null;
        this.#onFrame(payload, false);
        continue;
      }

      // Frame header: assembled in `head` only when split across reads.
      let src: Buffer = chunk;
      let at = pos;
      let available = end - pos;
      if (this.#headLength > 0) {
        const take = Math.min(end - pos, this.#head.length - this.#headLength);
        chunk.copy(this.#head, this.#headLength, pos, pos + take);
        src = this.#head;
        at = 0;
        available = this.#headLength + take;
      }
      const headerBytes = this.#readHeader(src, at, available);
      if (headerBytes < 0) return end;
      if (headerBytes === 0) {
        if (this.#headLength === 0) chunk.copy(this.#head, 0, pos, end);
        this.#headLength = available;
        return end;
      }
      pos += headerBytes - this.#headLength;
      this.#headLength = 0;

      const length = this.#pendingLength;
      if (end - pos >= length) {
        // Whole frame in this chunk: hand out a view, valid for the duration of the event.
        const payload = chunk.subarray(pos, pos + length);
        pos += length;
        this.#onFrame(payload, true);
      } else {
        this.#framePayload = Buffer.allocUnsafe(length);
        this.#framePayloadFilled = 0;
      }
    }
    return end;
  }

  /** Reads one frame header at src[at..at+available). Returns its size, 0 when more bytes are needed, -1 after a failure. */
  #readHeader(src: Buffer, at: number, available: number): number {
    if (available < 2) return 0;
    const b0 = src[at]!;
    const b1 = src[at + 1]!;
    if ((b0 & 0x70) !== 0) return this.#fail(CLOSE.protocolError, 'reserved bits set'); // §5.2, no extension negotiated
    if ((b1 & 0x80) !== 0) return this.#fail(CLOSE.protocolError, 'masked server frame'); // §5.1
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    let length = b1 & 0x7f;
    let size = 2;
    if (length === 126) {
      if (available < 4) return 0;
      length = src.readUInt16BE(at + 2);
      size = 4;
    } else if (length === 127) {
      if (available < 10) return 0;
      const high = src.readUInt32BE(at + 2);
      // §5.2: the most significant bit must be 0; anything past 2^53 is past any maxPayloadBytes.
      if (high > 0x1f_ffff) return this.#fail(CLOSE.tooBig, 'frame length out of range');
      length = high * 0x1_0000_0000 + src.readUInt32BE(at + 6);
      size = 10;
    }

    if (opcode >= 0x8) {
      if (opcode > OP_PONG) return this.#fail(CLOSE.protocolError, `unknown opcode ${opcode}`);
      // §5.5: control frames are never fragmented and carry at most 125 bytes.
      if (!fin || length > 125) return this.#fail(CLOSE.protocolError, 'invalid control frame');
    } else if (opcode === OP_CONTINUATION) {
      if (this.#fragmentsOpcode === 0) return this.#fail(CLOSE.protocolError, 'continuation without a message'); // §5.4
      if (this.#fragmentsBytes + length > this.#maxPayloadBytes) return this.#fail(CLOSE.tooBig, 'message too big');
      if (++this.#fragmentCount > this.#maxFragments) return this.#fail(CLOSE.policyViolation, 'too many message fragments');
    } else if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (this.#fragmentsOpcode !== 0) return this.#fail(CLOSE.protocolError, 'new message inside a fragmented one'); // §5.4
      if (length > this.#maxPayloadBytes) return this.#fail(CLOSE.tooBig, 'message too big');
    } else {
      return this.#fail(CLOSE.protocolError, `unknown opcode ${opcode}`);
    }
    this.#frameFin = fin;
    this.#frameOpcode = opcode;
    this.#pendingLength = length;
    return size;
  }

  /** `view` is true when the payload is a view into the pushed chunk (copied before it is kept). */
  #onFrame(payload: Buffer, view: boolean): void {
    const opcode = this.#frameOpcode;
    if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (this.#frameFin) {
        // §8.1: invalid UTF-8 in a text message fails the connection with 1007; it is never reported.
        if (opcode === OP_TEXT && !isUtf8(payload)) {
          this.#fail(CLOSE.invalidPayload, 'invalid UTF-8 in a text message');
          return;
        }
        this.#events.onMessage(payload, opcode === OP_BINARY);
        return;
      }
      this.#fragmentsOpcode = opcode;
      this.#fragmentCount = 1;
      if (payload.length > 0) this.#fragments.push(view ? Buffer.from(payload) : payload);
      this.#fragmentsBytes = payload.length;
      return;
    }
    if (opcode === OP_CONTINUATION) {
      // Empty fragments are counted (readHeader) but not kept.
      if (payload.length > 0) this.#fragments.push(view ? Buffer.from(payload) : payload);
      this.#fragmentsBytes += payload.length;
      if (!this.#frameFin) return;
      const fragments = this.#fragments;
      const message = fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments, this.#fragmentsBytes);
      const isBinary = this.#fragmentsOpcode === OP_BINARY;
      this.#fragments = [];
      this.#fragmentsBytes = 0;
      this.#fragmentsOpcode = 0;
      this.#fragmentCount = 0;
      // The assembled message is checked: a code point may straddle fragments (§5.6, §8.1).
      if (!isBinary && !isUtf8(message)) {
        this.#fail(CLOSE.invalidPayload, 'invalid UTF-8 in a text message');
        return;
      }
      this.#events.onMessage(message, isBinary);
      return;
    }
    if (opcode === OP_PING) this.#events.onPing(payload);
    else if (opcode === OP_PONG) this.#events.onPong(payload);
    else if (opcode === OP_CLOSE) this.#onCloseFrame(payload);
  }

  #onCloseFrame(payload: Buffer): void {
    if (payload.length === 1) {
      this.#fail(CLOSE.protocolError, 'close frame with a 1-byte body');
      return;
    }
    let code: number = CLOSE.noStatus;
    let reason = '';
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!isSendableCloseCode(code)) {
        this.#fail(CLOSE.protocolError, `invalid close code ${code}`);
        return;
      }
      if (!isUtf8(payload.subarray(2))) {
        this.#fail(CLOSE.invalidPayload, 'invalid UTF-8 in a close reason'); // §5.5.1, §8.1
        return;
      }
      reason = payload.toString('utf8', 2);
    }
    this.#stopped = true;
    this.#events.onClose(code, reason);
  }

  #fail(code: number, reason: string): -1 {
    this.#stopped = true;
    this.#events.onError(code, reason);
    return -1;
  }
}
