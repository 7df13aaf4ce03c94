import { isUtf8 } from 'node:buffer';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { GatewayError } from '../errors.ts';
import { createBucket, take, type Bucket } from '../messages/token-bucket.ts';
import type { UpstreamConnection, UpstreamDialer, UpstreamDialOptions, UpstreamHandlers } from './upstream-types.ts';

/** RFC 6455 §1.3: the GUID appended to Sec-WebSocket-Key before hashing into Sec-WebSocket-Accept. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const DEFAULT_HIGH_WATER_BYTES = 1 << 20;
/** RFC 6455 §7.1.1: after the closing handshake the server should drop TCP first; we wait this long for it. */
const DEFAULT_CLOSE_TIMEOUT_MS = 1000;
/** A response head larger than this is not a WebSocket upgrade we want to keep reading. */
const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;
/**
 * Output buffer sizes. A buffer is handed to the socket at every flush and never reused, so an
 * idle connection holds none; the next one is sized from what the last tick wrote (twice that,
 * within these bounds) so that a busy connection encodes a tick's frames into one buffer.
 * Sizes under 4 KiB come from Node's shared Buffer pool.
 */
const MIN_OUT_BYTES = 1024;
const MAX_OUT_BYTES = 256 * 1024;
const NO_BUFFER = Buffer.alloc(0);
/**
 * One read buffer shared by every lean connection (net `onread`): each read is parsed synchronously,
 * and whatever must outlive the call (partial frames, fragments, a paused remainder) is copied out,
 * so no per-read allocation is needed.
 */
const READ_BUFFER_BYTES = 64 * 1024;

const OP_CONTINUATION = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

const CLOSE_PROTOCOL_ERROR = 1002;
const CLOSE_INVALID_PAYLOAD = 1007;
const CLOSE_POLICY = 1008;
const CLOSE_TOO_BIG = 1009;
const CLOSE_ABNORMAL = 1006;
const CLOSE_NO_STATUS = 1005;

export type FlushMode = 'immediate' | 'tick';

export interface LeanDialerOptions {
  /** Outbound bytes (ours + the socket's) above which `send` returns false. */
  highWaterBytes?: number;
  /** How long to wait for the upstream's close frame / TCP end after we sent a close frame. */
  closeTimeoutMs?: number;
  /**
   * When queued frames are written: 'immediate' batches everything queued during one event-loop
   * iteration (setImmediate), 'tick' flushes at the end of the current callback (process.nextTick).
   * 'immediate' is the default because uWS.js drains the nextTick and microtask queues after every
   * message callback (checked on this build: msg0 tick0 msg1 tick1 …), so in the relay 'tick' would
   * write once per client message; 'immediate' writes once per client read. In bench/upstream-leg.ts,
   * where sends come from the leg's own read callbacks, the two measure alike.
   */
  flush?: FlushMode;
  /** TLS settings for wss:// upstreams (e.g. `ca` for a private CA); host and servername are set from the URL. */
  tls?: tls.ConnectionOptions;
}

type LeanSettings = Required<Omit<LeanDialerOptions, 'tls'>> & Pick<LeanDialerOptions, 'tls'>;

/**
 * RFC 6455 §5.3 requires an unpredictable masking key per frame. Keys are drawn 4 bytes at a time
 * from a block of CSPRNG output, so one randomFillSync call serves 2048 frames.
 */
const maskPool = Buffer.allocUnsafe(8 * 1024);
let maskOffset = maskPool.length;

function nextMask(target: Buffer, at: number): void {
  if (maskOffset === maskPool.length) {
    randomFillSync(maskPool);
    maskOffset = 0;
  }
  target[at] = maskPool[maskOffset]!;
  target[at + 1] = maskPool[maskOffset + 1]!;
  target[at + 2] = maskPool[maskOffset + 2]!;
  target[at + 3] = maskPool[maskOffset + 3]!;
  maskOffset += 4;
}

const sharedReadBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);

/** Connections with queued output, flushed together once per event-loop iteration ('immediate' mode). */
const dirty: LeanConnection[] = [];
let flushScheduled = false;

function flushDirty(): void {
  flushScheduled = false;
  // Swap out the list first: a flush can run user callbacks (onDrain) that queue more output.
  const batch = dirty.splice(0, dirty.length);
  for (const conn of batch) conn.flush();
}

/** RFC 6455 §7.4.1/§7.4.2: codes that may appear in a close frame (same rule as `ws`). */
function isValidWireCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface ParsedHead {
  status: number;
  headers: Map<string, string>;
}

function parseResponseHead(head: string): ParsedHead | null {
  const lines = head.split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
  if (!statusLine) return null;
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    // RFC 9110 §5.3: repeated fields are equivalent to one comma-joined field.
    const previous = headers.get(name);
    headers.set(name, previous === undefined ? value : `${previous}, ${value}`);
  }
  return { status: Number(statusLine[1]), headers };
}

function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  return value.split(',').some((part) => part.trim().toLowerCase() === token);
}

class LeanConnection implements UpstreamConnection {
  protocol = '';

  readonly #socket: net.Socket;
  readonly #handlers: UpstreamHandlers;
  readonly #maxPayloadBytes: number;
  readonly #highWaterBytes: number;
  readonly #closeTimeoutMs: number;
  readonly #flushMode: FlushMode;

  // Outbound: frames are encoded into `out` between outStart and outEnd; flush hands that region to
  // the socket by reference (no copy) and drops the buffer, so written bytes are never overwritten.
  #out: Buffer = NO_BUFFER;
  #outStart = 0;
  #outEnd = 0;
  #outCapacity = MIN_OUT_BYTES;
  /** Bytes encoded since the last flush, to size the next buffer. */
  #tickBytes = 0;
  #queued = false;
  #needDrain = false;

  // Inbound parser state (RFC 6455 §5.2).
  readonly #head = Buffer.allocUnsafe(14);
  #headLength = 0;
  #frameOpcode = 0;
  #frameFin = false;
  /** Payload length of the frame whose header was just read. */
  #pendingLength = 0;
  #framePayload: Buffer | null = null;
  #framePayloadFilled = 0;
  #fragments: Buffer[] = [];
  #fragmentsBytes = 0;
  #fragmentsOpcode = 0;

  // Control frames: the upstream's ping+pong budget, and the one pong owed (§5.5.3: only the most
  // recent ping needs an answer), written at the next flush while the output is under highWaterBytes.
  readonly #controlBucket: Bucket | null;
  readonly #controlBurst: number;
  readonly #controlRefillPerMs: number;
  #pendingPong: Buffer | null = null;

  // Lifecycle.
  #userPaused = false;
  /** True while parse() runs inside handlers.batch, so onClose joins that batch instead of nesting one. */
  #inBatch = false;
  /** Bytes read but not parsed because the leg was paused mid-read (or arrived with the 101). */
  #held: Buffer | null = null;
  #heldScheduled = false;
  #closeSent = false;
  #closeReceived = false;
  #finished = false;
  #closeTimer: NodeJS.Timeout | null = null;

  constructor(socket: net.Socket, handlers: UpstreamHandlers, options: UpstreamDialOptions, lean: LeanSettings) {
    this.#socket = socket;
    this.#handlers = handlers;
    this.#maxPayloadBytes = options.maxPayloadBytes;
    this.#highWaterBytes = options.highWaterBytes ?? lean.highWaterBytes;
    this.#closeTimeoutMs = lean.closeTimeoutMs;
    this.#flushMode = lean.flush;
    const perSec = options.controlFramesPerSec;
    this.#controlBurst = perSec === undefined ? 0 : perSec * 2;
    this.#controlRefillPerMs = perSec === undefined ? 0 : perSec / 1000;
    this.#controlBucket = perSec === undefined ? null : createBucket(this.#controlBurst, Date.now());
  }

  get bufferedAmount(): number {
    return this.#outEnd - this.#outStart + this.#socket.writableLength;
  }

  /** Wires socket events once the upgrade succeeded; `rest` is what followed the 101 head. */
  activate(protocol: string, rest: Buffer | null): void {
    this.protocol = protocol;
    const socket = this.#socket;
    socket.on('drain', () => {
      if (this.#pendingPong !== null) this.#scheduleFlush();
      this.#checkDrain();
    });
    socket.on('error', (err) => this.#onSocketError(err));
    socket.on('close', () => this.#onSocketClose());
    if (rest !== null && rest.length > 0) {
      // The caller has not received this connection yet (the dial promise resolves after this
      // returns): hold the bytes and parse them once its continuation has run.
      this.#held = rest;
      this.#socket.pause();
      this.#scheduleHeld(true);
    }
  }

  // ── sending ────────────────────────────────────────────────────────────────────────────────

  send(data: ArrayBuffer | Uint8Array, isBinary: boolean): boolean {
    if (this.#closeSent || this.#finished) return true; // RFC 6455 §5.5.1: no data frames after a close frame.
    const payload = data instanceof Uint8Array ? data : new Uint8Array(data);
    this.#encode(isBinary ? OP_BINARY : OP_TEXT, payload);
    if (this.bufferedAmount <= this.#highWaterBytes) return true;
    this.#needDrain = true;
    return false;
  }

  /** Encodes one masked frame (RFC 6455 §5.2, §5.3) straight into the output buffer. */
  #encode(opcode: number, payload: Uint8Array): void {
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
    nextMask(out, p);
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
    this.#tickBytes += headerBytes + length;
    this.#scheduleFlush();
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

  #scheduleFlush(): void {
    if (this.#queued) return;
    this.#queued = true;
    if (this.#flushMode === 'tick') {
      process.nextTick(() => this.flush());
      return;
    }
    dirty.push(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushDirty);
    }
  }

  /** Called from a setImmediate/nextTick of our own: a failure ends this leg, not the process. */
  flush(): void {
    this.#guard(() => this.#flushNow());
  }

  #flushNow(): void {
    // Encoded while `queued` is still set, so that encode() does not schedule another flush.
    if (this.#pendingPong !== null && (this.#closeSent || this.bufferedAmount <= this.#highWaterBytes)) {
      const pong = this.#pendingPong;
      this.#pendingPong = null;
      if (!this.#closeSent) this.#encode(OP_PONG, pong);
    }
    this.#queued = false;
    if (this.#outEnd > this.#outStart) this.#writeOut();
    this.#outCapacity = Math.min(MAX_OUT_BYTES, Math.max(MIN_OUT_BYTES, this.#tickBytes * 2));
    this.#tickBytes = 0;
    this.#out = NO_BUFFER;
    this.#outStart = 0;
    this.#outEnd = 0;
    this.#checkDrain();
  }

  #writeOut(): void {
    const region = this.#out.subarray(this.#outStart, this.#outEnd);
    this.#outStart = this.#outEnd;
    if (this.#socket.destroyed || this.#socket.writableEnded) return;
    this.#socket.write(region);
  }

  #checkDrain(): void {
    if (!this.#needDrain || this.#finished || this.bufferedAmount > this.#highWaterBytes) return;
    this.#needDrain = false;
    this.#guard(() => this.#handlers.onDrain());
  }

  // ── receiving ──────────────────────────────────────────────────────────────────────────────

  /** Bytes read from the upstream: a view into the shared read buffer (ws://) or a TLS chunk. */
  onRead(chunk: Buffer): void {
    if (this.#finished || this.#closeReceived) return;
    // The common case of a read that only continues a large frame needs no cork around it.
    if (this.#framePayload !== null && this.#framePayloadFilled + chunk.length < this.#framePayload.length) {
      chunk.copy(this.#framePayload, this.#framePayloadFilled);
      this.#framePayloadFilled += chunk.length;
      return;
    }
    this.#deliver(chunk, true);
  }

  #deliver(chunk: Buffer, transient: boolean): void {
    let rest = 0;
    this.#guard(() =>
      this.#handlers.batch(() => {
        this.#inBatch = true;
        try {
          rest = this.#parse(chunk);
        } finally {
          this.#inBatch = false;
        }
      }),
    );
    if (rest < chunk.length && !this.#finished && !this.#closeReceived) {
      // Paused mid-read: keep the unparsed bytes (copied, the read buffer is reused) until resume().
      const remainder = chunk.subarray(rest);
      this.#held = transient ? Buffer.from(remainder) : remainder;
      this.#socket.pause();
    }
  }

  /** Parses frames from `chunk` and returns how far it got (less than the length only when paused). */
  #parse(chunk: Buffer): number {
    let pos = 0;
    const end = chunk.length;
    while (pos < end) {
      if (this.#userPaused || this.#finished || this.#closeReceived) return this.#closeReceived ? end : pos;

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

      // Frame header (RFC 6455 §5.2): assembled in `head` only when split across reads.
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
      if (headerBytes < 0) return end; // protocol failure: the leg is closing
      if (headerBytes === 0) {
        if (this.#headLength === 0) chunk.copy(this.#head, 0, pos, end);
        this.#headLength = available;
        return end;
      }
      pos += headerBytes - this.#headLength;
      this.#headLength = 0;

      const length = this.#pendingLength;
      if (end - pos >= length) {
        // Whole frame in this read: hand out a view, valid for the duration of onMessage.
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

  /**
   * Reads one frame header at src[at..at+available). Returns its size, 0 when more bytes are
   * needed, or -1 after failing the connection.
   */
  #readHeader(src: Buffer, at: number, available: number): number {
    if (available < 2) return 0;
    const b0 = src[at]!;
    const b1 = src[at + 1]!;
    if ((b0 & 0x70) !== 0) return this.#fail(CLOSE_PROTOCOL_ERROR, 'reserved bits set'); // §5.2, no extension negotiated
    if ((b1 & 0x80) !== 0) return this.#fail(CLOSE_PROTOCOL_ERROR, 'masked server frame'); // §5.1
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
      if (high > 0x1f_ffff) return this.#fail(CLOSE_TOO_BIG, 'frame length out of range');
      length = high * 0x1_0000_0000 + src.readUInt32BE(at + 6);
      size = 10;
    }

    if (opcode >= 0x8) {
      if (opcode > OP_PONG) return this.#fail(CLOSE_PROTOCOL_ERROR, `unknown opcode ${opcode}`);
      // §5.5: control frames are never fragmented and carry at most 125 bytes.
      if (!fin || length > 125) return this.#fail(CLOSE_PROTOCOL_ERROR, 'invalid control frame');
    } else if (opcode === OP_CONTINUATION) {
      if (this.#fragmentsOpcode === 0) {
        return this.#fail(CLOSE_PROTOCOL_ERROR, 'continuation without a message'); // §5.4
      }
      if (this.#fragmentsBytes + length > this.#maxPayloadBytes) return this.#fail(CLOSE_TOO_BIG, 'message too big');
    } else if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (this.#fragmentsOpcode !== 0) return this.#fail(CLOSE_PROTOCOL_ERROR, 'new message inside a fragmented one'); // §5.4
      if (length > this.#maxPayloadBytes) return this.#fail(CLOSE_TOO_BIG, 'message too big');
    } else {
      return this.#fail(CLOSE_PROTOCOL_ERROR, `unknown opcode ${opcode}`);
    }
    this.#frameFin = fin;
    this.#frameOpcode = opcode;
    this.#pendingLength = length;
    return size;
  }

  /** `view` is true when the payload is a view into a read buffer (copy before keeping it). */
  #onFrame(payload: Buffer, view: boolean): void {
    const opcode = this.#frameOpcode;
    if (opcode === OP_TEXT || opcode === OP_BINARY) {
      if (this.#frameFin) {
        // §8.1: invalid UTF-8 in a text message fails the connection with 1007; it is never relayed.
        if (opcode === OP_TEXT && !isUtf8(payload)) {
          this.#fail(CLOSE_INVALID_PAYLOAD, 'invalid UTF-8 in a text message');
          return;
        }
        this.#handlers.onMessage(payload, opcode === OP_BINARY);
        return;
      }
      this.#fragmentsOpcode = opcode;
      this.#fragments.push(view ? Buffer.from(payload) : payload);
      this.#fragmentsBytes = payload.length;
      return;
    }
    if (opcode === OP_CONTINUATION) {
      this.#fragments.push(view ? Buffer.from(payload) : payload);
      this.#fragmentsBytes += payload.length;
      if (!this.#frameFin) return;
      const message = this.#fragments.length === 1 ? this.#fragments[0]! : Buffer.concat(this.#fragments, this.#fragmentsBytes);
      const isBinary = this.#fragmentsOpcode === OP_BINARY;
      this.#fragments = [];
      this.#fragmentsBytes = 0;
      this.#fragmentsOpcode = 0;
      // The assembled message is checked: a code point may straddle fragments (§5.6, §8.1).
      if (!isBinary && !isUtf8(message)) {
        this.#fail(CLOSE_INVALID_PAYLOAD, 'invalid UTF-8 in a text message');
        return;
      }
      this.#handlers.onMessage(message, isBinary);
      return;
    }
    if ((opcode === OP_PING || opcode === OP_PONG) && !this.#takeControlFrame()) {
      this.#fail(CLOSE_POLICY, 'control frame rate exceeded');
      return;
    }
    if (opcode === OP_PING) {
      // §5.5.2/§5.5.3: answer with a pong carrying the same application data, once per flush for
      // the latest ping. A flood used to queue one pong per ping with no cap: a non-reading upstream
      // took the gateway from 141 MB to 1 GB RSS in 12 s (bench/ping-flood.ts).
      if (!this.#closeSent) {
        this.#pendingPong = Buffer.from(payload);
        this.#scheduleFlush();
      }
      return;
    }
    if (opcode === OP_CLOSE) this.#onCloseFrame(payload);
    // OP_PONG: unsolicited or answering nothing we sent; §5.5.3 says no response is expected.
  }

  #takeControlFrame(): boolean {
    const bucket = this.#controlBucket;
    return bucket === null || take(bucket, 1, this.#controlBurst, this.#controlRefillPerMs, Date.now()) === 0;
  }

  #onCloseFrame(payload: Buffer): void {
    this.#closeReceived = true;
    let code = CLOSE_NO_STATUS;
    let reason = '';
    if (payload.length === 1) {
      this.#fail(CLOSE_PROTOCOL_ERROR, 'close frame with a 1-byte body');
      return;
    }
    if (payload.length >= 2) {
      code = payload.readUInt16BE(0);
      if (!isValidWireCloseCode(code)) {
        this.#fail(CLOSE_PROTOCOL_ERROR, `invalid close code ${code}`);
        return;
      }
      if (!isUtf8(payload.subarray(2))) {
        this.#fail(CLOSE_INVALID_PAYLOAD, 'invalid UTF-8 in a close reason'); // §5.5.1, §8.1
        return;
      }
      reason = payload.toString('utf8', 2);
    }
    if (!this.#closeSent) {
      // §5.5.1: echo the status code we received, then stop sending.
      this.#queueClose(code === CLOSE_NO_STATUS ? null : code, '');
    }
    this.#flushNow();
    this.#socket.end();
    this.#armCloseTimer();
    this.#finish(code, reason);
  }

  /** Fails the connection (§7.1.7) with `code`: close frame, end, onClose. Returns -1 for readHeader. */
  #fail(code: number, reason: string): -1 {
    this.#closeReceived = true; // stop parsing whatever follows
    if (!this.#closeSent) this.#queueClose(code, reason);
    this.#flushNow();
    this.#socket.end();
    this.#armCloseTimer();
    this.#finish(code, reason, true);
    return -1;
  }

  // ── flow control and closing ───────────────────────────────────────────────────────────────

  pause(): void {
    this.#userPaused = true;
    this.#socket.pause();
  }

  resume(): void {
    if (!this.#userPaused) return;
    this.#userPaused = false;
    if (this.#held !== null) this.#scheduleHeld(false);
    else if (!this.#finished) this.#socket.resume();
  }

  /**
   * Held bytes are parsed on a later tick, never inside resume() (which the gateway calls from its
   * own uWS drain callback) nor before the dial promise's continuation ran.
   */
  #scheduleHeld(afterDial: boolean): void {
    if (this.#heldScheduled) return;
    this.#heldScheduled = true;
    const run = () => {
      this.#heldScheduled = false;
      if (this.#userPaused || this.#held === null) return;
      const held = this.#held;
      this.#held = null;
      if (!this.#finished && !this.#closeReceived) this.#deliver(held, false);
      if (this.#held === null && !this.#userPaused && !this.#finished) this.#socket.resume();
    };
    // setImmediate runs after every microtask, so after `await dial(...)` has continued.
    if (afterDial) setImmediate(run);
    else process.nextTick(run);
  }

  close(code: number, reason: string): void {
    if (this.#closeSent || this.#finished) return;
    // docs/contracts.md: 1005/1006/1015 never go on the wire; an empty close body means "no status" (§7.1.5).
    this.#queueClose(isValidWireCloseCode(code) ? code : null, reason);
    this.flush();
    if (this.#closeReceived) this.#socket.end();
    // The closing handshake needs the upstream's close frame (§7.1.2): a paused leg would never
    // read it and would end in the timeout, so reading resumes.
    else if (this.#userPaused) this.resume();
    this.#armCloseTimer();
  }

  terminate(): void {
    this.#socket.destroy();
  }

  #queueClose(code: number | null, reason: string): void {
    this.#closeSent = true;
    if (code === null) {
      this.#encode(OP_CLOSE, new Uint8Array(0));
      return;
    }
    // §5.5: a control frame body is at most 125 bytes, 2 of which are the code.
    let reasonBytes = Buffer.from(reason, 'utf8');
    if (reasonBytes.length > 123) reasonBytes = reasonBytes.subarray(0, 123);
    const body = Buffer.allocUnsafe(2 + reasonBytes.length);
    body.writeUInt16BE(code, 0);
    reasonBytes.copy(body, 2);
    this.#encode(OP_CLOSE, body);
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== null || this.#socket.destroyed) return;
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), this.#closeTimeoutMs);
    this.#closeTimer.unref();
  }

  #onSocketError(err: Error): void {
    // 'close' always follows and reports 1006 unless a close frame already arrived (§7.1.5); the
    // error is kept for debugging only, the contract has no channel for it.
    this.lastError = err;
  }

  /** The last socket or handler failure, for debugging. */
  lastError: Error | null = null;

  /** Also reached when the upstream ends TCP without a close frame: an abnormal closure (§7.1.5, 1006). */
  #onSocketClose(): void {
    if (this.#closeTimer !== null) clearTimeout(this.#closeTimer);
    this.#closeTimer = null;
    this.#held = null;
    this.#finish(CLOSE_ABNORMAL, '');
  }

  #finish(code: number, reason: string, failed = false): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#pendingPong = null;
    if (this.#inBatch) this.#handlers.onClose(code, reason, failed);
    else this.#guard(() => this.#handlers.batch(() => this.#handlers.onClose(code, reason, failed)));
  }

  /** Handler exceptions must not escape into the socket's event emitter (and the process). */
  #guard(run: () => void): void {
    try {
      run();
    } catch (err) {
      this.lastError = err instanceof Error ? err : new Error(String(err));
      this.#socket.destroy();
      if (!this.#finished) {
        this.#finished = true;
        try {
          this.#handlers.onClose(CLOSE_ABNORMAL, `handler failed: ${errorMessage(err)}`);
        } catch (again) {
          // Nothing is left to tell: the leg is already destroyed. Keep the first failure visible.
          process.emitWarning(`wsguard lean upstream: onClose threw after ${errorMessage(err)}: ${errorMessage(again)}`);
        }
      }
    }
  }
}

function requestHead(url: URL, key: string, options: UpstreamDialOptions): string {
  const path = `${url.pathname || '/'}${url.search}`;
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: ${url.host}`,
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`,
    'Sec-WebSocket-Version: 13',
  ];
  if (options.protocols.length > 0) lines.push(`Sec-WebSocket-Protocol: ${options.protocols.join(', ')}`);
  const reserved = new Set([
    'host',
    'upgrade',
    'connection',
    'sec-websocket-key',
    'sec-websocket-version',
    'sec-websocket-protocol',
    'sec-websocket-extensions',
  ]);
  for (const [name, value] of Object.entries(options.headers)) {
    // Header injection guard: a CR/LF in a forwarded value would split the request.
    if (reserved.has(name.toLowerCase()) || /[\r\n]/.test(name) || /[\r\n]/.test(value)) continue;
    lines.push(`${name}: ${value}`);
  }
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Checks the 101 response (RFC 6455 §4.1, client requirements 1–6); returns a failure message or the protocol. */
function checkUpgrade(head: ParsedHead, key: string, offered: string[]): { error: string } | { protocol: string } {
  if (head.status !== 101) return { error: `upstream answered the handshake with HTTP ${head.status}` };
  if (head.headers.get('upgrade')?.toLowerCase() !== 'websocket') return { error: 'upstream 101 without Upgrade: websocket' };
  if (!hasToken(head.headers.get('connection'), 'upgrade')) return { error: 'upstream 101 without Connection: Upgrade' };
  const expected = createHash('sha1')
    .update(key + ACCEPT_GUID)
    .digest('base64');
  if (head.headers.get('sec-websocket-accept') !== expected) return { error: 'upstream sent a wrong Sec-WebSocket-Accept' };
  if (head.headers.has('sec-websocket-extensions')) return { error: 'upstream selected an extension that was not offered' };
  const protocol = head.headers.get('sec-websocket-protocol') ?? '';
  if (protocol !== '' && !offered.includes(protocol)) return { error: 'upstream selected a subprotocol that was not offered' };
  return { protocol };
}

/** Builds a lean dialer; `dialLeanUpstream` is the default one. */
export function createLeanDialer(lean: LeanDialerOptions = {}): UpstreamDialer {
  const settings: LeanSettings = {
    highWaterBytes: lean.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES,
    closeTimeoutMs: lean.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
    flush: lean.flush ?? 'immediate',
    tls: lean.tls,
  };
  return (options, handlers) => dial(options, handlers, settings);
}

function dial(options: UpstreamDialOptions, handlers: UpstreamHandlers, settings: LeanSettings): Promise<UpstreamConnection> {
  return new Promise<UpstreamConnection>((resolve, reject) => {
    const url = options.url;
    const secure = url.protocol === 'wss:' || url.protocol === 'https:';
    if (!secure && url.protocol !== 'ws:' && url.protocol !== 'http:') {
      reject(new GatewayError('upstream_unavailable', `unsupported upstream URL scheme ${url.protocol}`));
      return;
    }
    const key = randomBytes(16).toString('base64');
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);

    let settled = false;
    let responseHead: Buffer | null = null;
    let connection: LeanConnection | null = null;

    const onBytes = (chunk: Buffer) => {
      if (connection !== null) {
        connection.onRead(chunk);
        return;
      }
      try {
        onHandshakeBytes(chunk);
      } catch (err) {
        fail('upstream_unavailable', `upstream handshake could not be read: ${errorMessage(err)}`, err);
      }
    };

    let socket: net.Socket;
    if (secure) {
      // TLS decrypts into its own buffers, so reads arrive as ordinary 'data' chunks.
      socket = tls.connect({
        ...settings.tls,
        host,
        port,
        servername: net.isIP(host) === 0 ? host : undefined,
        ALPNProtocols: ['http/1.1'],
      });
      socket.setNoDelay(true);
      socket.on('data', onBytes);
    } else {
      socket = net.connect({
        host,
        port,
        noDelay: true,
        onread: {
          buffer: sharedReadBuffer,
          callback: (bytes: number, buffer: Uint8Array) => {
            onBytes(Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
            return true;
          },
        },
      });
    }

    const fail = (code: 'upstream_unavailable' | 'upstream_timeout', message: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(new GatewayError(code, message, cause === undefined ? undefined : { cause }));
    };

    const timer = setTimeout(
      () => fail('upstream_timeout', `upstream did not complete the handshake within ${options.timeoutMs} ms`),
      options.timeoutMs,
    );
    const onAbort = () => fail('upstream_unavailable', 'upstream dial cancelled');
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });

    const onHandshakeBytes = (chunk: Buffer) => {
      if (settled) return;
      // The read buffer is shared and reused, so the partial head is copied.
      responseHead = responseHead === null ? Buffer.from(chunk) : Buffer.concat([responseHead, chunk]);
      const endOfHead = responseHead.indexOf('\r\n\r\n');
      if (endOfHead < 0) {
        if (responseHead.length > MAX_RESPONSE_HEAD_BYTES) fail('upstream_unavailable', 'upstream handshake response too large');
        return;
      }
      const parsed = parseResponseHead(responseHead.toString('latin1', 0, endOfHead));
      if (parsed === null) {
        fail('upstream_unavailable', 'upstream answered the handshake with something other than HTTP/1.1');
        return;
      }
      const verdict = checkUpgrade(parsed, key, options.protocols);
      if ('error' in verdict) {
        fail('upstream_unavailable', verdict.error);
        return;
      }
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.removeListener('error', onDialError);
      socket.removeListener('close', onDialClose);
      const rest = responseHead.length > endOfHead + 4 ? responseHead.subarray(endOfHead + 4) : null;
      responseHead = null;
      connection = new LeanConnection(socket, handlers, options, settings);
      connection.activate(verdict.protocol, rest);
      resolve(connection);
    };

    const onDialError = (err: NodeJS.ErrnoException) => {
      const code = err.code === 'ETIMEDOUT' ? 'upstream_timeout' : 'upstream_unavailable';
      fail(code, `upstream dial failed: ${err.message}`, err);
    };
    const onDialClose = () => fail('upstream_unavailable', 'upstream closed the connection before the handshake completed');

    socket.on('error', onDialError);
    socket.on('close', onDialClose);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      if (!settled) socket.write(requestHead(url, key, options));
    });
  });
}

export const dialLeanUpstream: UpstreamDialer = createLeanDialer();
