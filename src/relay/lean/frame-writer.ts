import { csprngMask, type MaskSource } from './mask.ts';
import { OP_CLOSE } from './opcodes.ts';

/** Receives encoded bytes; the buffer is never written again, so it may be kept by reference. */
export type FrameSink = (bytes: Buffer) => void;

/**
 * Output buffer sizes. A buffer is handed to the sink at every flush and never reused, so an idle
 * writer holds none; the next one is sized from what the last flush wrote (twice that, within these
 * bounds) so that a busy connection encodes one event-loop iteration's frames into one buffer.
 * Sizes under 4 KiB come from Node's shared Buffer pool.
 */
const MIN_OUT_BYTES = 1024;
const MAX_OUT_BYTES = 256 * 1024;
const NO_BUFFER = Buffer.alloc(0);
/** RFC 6455 §5.5: a control frame body is at most 125 bytes, 2 of which are the close code. */
const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Encodes masked client frames (RFC 6455 §5.2, §5.3) into one buffer and hands the encoded region to
 * `sink` at flush() (or earlier, when a burst outgrows the buffer). It knows no socket.
 */
export class FrameWriter {
  readonly #sink: FrameSink;
  readonly #mask: MaskSource;
  // Frames are encoded into `out` between outStart and outEnd; the sink gets that region by
  // reference (no copy) and the buffer is dropped, so written bytes are never overwritten.
  #out: Buffer = NO_BUFFER;
  #outStart = 0;
  #outEnd = 0;
  #outCapacity = MIN_OUT_BYTES;
  /** Bytes encoded since the last flush, to size the next buffer. */
  #flushBytes = 0;

  constructor(sink: FrameSink, mask: MaskSource = csprngMask) {
    this.#sink = sink;
    this.#mask = mask;
  }

  /** Encoded bytes not yet handed to the sink. */
  get pendingBytes(): number {
    return this.#outEnd - this.#outStart;
  }

  /** Encodes one final (FIN) masked frame. */
  encode(opcode: number, payload: Uint8Array): void {
    const length = payload.length;
    const headerBytes = length < 126 ? 6 : length < 65536 ? 8 : 14;
    this.#reserve(headerBytes + length);
    const out = this.#out;
    let p = this.#outEnd;
    out[p] = 0x80 | opcode;
    if (length < 126) {
      out[p + 1] = 0x80 | length;
      p += 2;
    } else if (length < 65536) {
      out[p + 1] = 0x80 | 126;
      out[p + 2] = length >>> 8;
      out[p + 3] = length & 0xff;
      p += 4;
    } else {
      out[p + 1] = 0x80 | 127;
      out.writeUInt32BE(Math.floor(length / 0x1_0000_0000), p + 2);
      out.writeUInt32BE(length >>> 0, p + 6);
      p += 10;
    }
    this.#mask(out, p);
    const m0 = out[p]!;
    const m1 = out[p + 1]!;
    const m2 = out[p + 2]!;
    const m3 = out[p + 3]!;
    p += 4;
    const whole = length & ~3;
    let i = 0;
    for (; i < whole; i += 4) {
      out[p + i] = payload[i]! ^ m0;
      out[p + i + 1] = payload[i + 1]! ^ m1;
      out[p + i + 2] = payload[i + 2]! ^ m2;
      out[p + i + 3] = payload[i + 3]! ^ m3;
    }
    for (; i < length; i++) out[p + i] = payload[i]! ^ (i % 4 === 0 ? m0 : i % 4 === 1 ? m1 : m2);
    this.#outEnd = p + length;
    this.#flushBytes += headerBytes + length;
  }

  /** Encodes a close frame: `code` null means an empty body ("no status", §7.1.5); the reason is cut to fit. */
  encodeClose(code: number | null, reason: string): void {
    if (code === null) {
      this.encode(OP_CLOSE, NO_BUFFER);
      return;
    }
    let reasonBytes = Buffer.from(reason, 'utf8');
    if (reasonBytes.length > MAX_CLOSE_REASON_BYTES) reasonBytes = reasonBytes.subarray(0, MAX_CLOSE_REASON_BYTES);
    const body = Buffer.allocUnsafe(2 + reasonBytes.length);
    body.writeUInt16BE(code, 0);
    reasonBytes.copy(body, 2);
    this.encode(OP_CLOSE, body);
  }

  /** Hands what is encoded to the sink and drops the buffer; the next one is sized from this flush. */
  flush(): void {
    if (this.#outEnd > this.#outStart) this.#writeOut();
    this.#outCapacity = Math.min(MAX_OUT_BYTES, Math.max(MIN_OUT_BYTES, this.#flushBytes * 2));
    this.#flushBytes = 0;
    this.#out = NO_BUFFER;
    this.#outStart = 0;
    this.#outEnd = 0;
  }

  #reserve(bytes: number): void {
    if (this.#out.length - this.#outEnd >= bytes) return;
    // A burst outgrew the buffer: what is queued goes out now, so the new buffer never needs a
    // copy of it, and the next one is larger.
    if (this.#outEnd > this.#outStart) {
      this.#writeOut();
      this.#outCapacity = Math.min(this.#outCapacity * 2, MAX_OUT_BYTES);
    }
    this.#out = Buffer.allocUnsafe(Math.max(this.#outCapacity, bytes));
    this.#outStart = 0;
    this.#outEnd = 0;
  }

  #writeOut(): void {
    const region = this.#out.subarray(this.#outStart, this.#outEnd);
    this.#outStart = this.#outEnd;
    this.#sink(region);
  }
}
