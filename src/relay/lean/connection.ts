import type net from 'node:net';
import { createBucket, take, type Bucket } from '../../messages/token-bucket.ts';
import { CLOSE, isSendableCloseCode } from '../close-codes.ts';
import type { UpstreamConnection, UpstreamDialOptions, UpstreamHandlers } from '../upstream-types.ts';
import { scheduleFlush } from './flush-scheduler.ts';
import { FrameReader, type FrameEvents } from './frame-reader.ts';
import { FrameWriter } from './frame-writer.ts';
import { OP_BINARY, OP_PONG, OP_TEXT } from './opcodes.ts';

export interface ConnectionSettings {
  /** Outbound bytes (ours + the socket's) above which `send` returns false, unless the dial options set it. */
  highWaterBytes: number;
  /** How long to wait for the upstream's close frame / TCP end after we sent a close frame. */
  closeTimeoutMs: number;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * One upgraded lean upstream connection: the socket's lifecycle, flow control both ways, the control
 * frame budget and the closing handshake. Framing is the reader's and the writer's.
 */
export class LeanConnection implements UpstreamConnection {
  protocol = '';

  readonly #socket: net.Socket;
  readonly #handlers: UpstreamHandlers;
  readonly #highWaterBytes: number;
  readonly #closeTimeoutMs: number;
  readonly #reader: FrameReader;
  readonly #writer: FrameWriter;

  /** In the flush scheduler's list. */
  #queued = false;
  #needDrain = false;

  // Control frames: the upstream's ping+pong budget, and the one pong owed (§5.5.3: only the most
  // recent ping needs an answer), written at the next flush while the output is under highWaterBytes.
  readonly #controlBucket: Bucket | null;
  readonly #controlBurst: number;
  readonly #controlRefillPerMs: number;
  #pendingPong: Buffer | null = null;

  #userPaused = false;
  /** True while the reader runs inside handlers.batch, so onClose joins that batch instead of nesting one. */
  #inBatch = false;
  /** Bytes read but not parsed because the leg was paused mid-read (or arrived with the 101). */
  #held: Buffer | null = null;
  #heldScheduled = false;
  #closeSent = false;
  #finished = false;
  #closeTimer: NodeJS.Timeout | null = null;

  constructor(socket: net.Socket, handlers: UpstreamHandlers, options: UpstreamDialOptions, settings: ConnectionSettings) {
    this.#socket = socket;
    this.#handlers = handlers;
    this.#highWaterBytes = options.highWaterBytes ?? settings.highWaterBytes;
    this.#closeTimeoutMs = settings.closeTimeoutMs;
    const perSec = options.controlFramesPerSec;
    this.#controlBurst = perSec === undefined ? 0 : perSec * 2;
    this.#controlRefillPerMs = perSec === undefined ? 0 : perSec / 1000;
    this.#controlBucket = perSec === undefined ? null : createBucket(this.#controlBurst, Date.now());
    const events: FrameEvents = {
      onMessage: (data, isBinary) => handlers.onMessage(data, isBinary),
      onPing: (payload) => this.#onPing(payload),
      onPong: () => this.#onPong(),
      onClose: (code, reason) => this.#onCloseFrame(code, reason),
      onError: (code, reason) => this.#fail(code, reason),
    };
    this.#reader = new FrameReader(events, { maxPayloadBytes: options.maxPayloadBytes });
    this.#writer = new FrameWriter((bytes) => {
      if (!socket.destroyed && !socket.writableEnded) socket.write(bytes);
    });
  }

  get bufferedAmount(): number {
    return this.#writer.pendingBytes + this.#socket.writableLength;
  }

  /** Wires socket events once the upgrade succeeded; `rest` is what followed the 101 head. */
  activate(protocol: string, rest: Buffer | null): void {
    this.protocol = protocol;
    const socket = this.#socket;
    socket.on('drain', () => {
      if (this.#pendingPong !== null) this.#scheduleFlush();
      this.#checkDrain();
    });
    // 'close' always follows and reports 1006 unless a close frame already arrived (§7.1.5); the
    // contract has no channel for the error itself.
    socket.on('error', () => undefined);
    socket.on('close', () => this.#onSocketClose());
    if (rest !== null && rest.length > 0) {
      // The caller has not received this connection yet (the dial promise resolves after this
      // returns): hold the bytes and parse them once its continuation has run.
      this.#held = rest;
      socket.pause();
      this.#scheduleHeld(true);
    }
  }

  // ── sending ────────────────────────────────────────────────────────────────────────────────

  send(data: ArrayBuffer | Uint8Array, isBinary: boolean): boolean {
    if (this.#closeSent || this.#finished) return true; // RFC 6455 §5.5.1: no data frames after a close frame.
    this.#writer.encode(isBinary ? OP_BINARY : OP_TEXT, data instanceof Uint8Array ? data : new Uint8Array(data));
    this.#scheduleFlush();
    if (this.bufferedAmount <= this.#highWaterBytes) return true;
    this.#needDrain = true;
    return false;
  }

  #scheduleFlush(): void {
    if (this.#queued) return;
    this.#queued = true;
    scheduleFlush(this);
  }

  /** Called by the flush scheduler: a failure ends this leg, not the process. */
  flush(): void {
    this.#guard(() => this.#flushNow());
  }

  #flushNow(): void {
    if (this.#pendingPong !== null && (this.#closeSent || this.bufferedAmount <= this.#highWaterBytes)) {
      const pong = this.#pendingPong;
      this.#pendingPong = null;
      if (!this.#closeSent) this.#writer.encode(OP_PONG, pong);
    }
    this.#queued = false;
    this.#writer.flush();
    this.#checkDrain();
  }

  #checkDrain(): void {
    if (!this.#needDrain || this.#finished || this.bufferedAmount > this.#highWaterBytes) return;
    this.#needDrain = false;
    this.#guard(() => this.#handlers.onDrain());
  }

  // ── receiving ──────────────────────────────────────────────────────────────────────────────

  /** Bytes read from the upstream: a view into the shared read buffer (ws://) or a TLS chunk. */
  onRead(chunk: Buffer): void {
    if (this.#finished || this.#reader.stopped) return;
    // A read that only continues a large frame needs no batch (cork) around it.
    if (this.#reader.absorb(chunk)) return;
    this.#deliver(chunk, true);
  }

  /** `transient`: the chunk's memory is reused after this call, so a held remainder is copied. */
  #deliver(chunk: Buffer, transient: boolean): void {
    let consumed = 0;
    this.#guard(() =>
      this.#handlers.batch(() => {
        this.#inBatch = true;
        try {
          consumed = this.#reader.push(chunk);
        } finally {
          this.#inBatch = false;
        }
      }),
    );
    if (consumed < chunk.length && !this.#finished && !this.#reader.stopped) {
      // Paused mid-read: keep the unparsed bytes until resume().
      const remainder = chunk.subarray(consumed);
      this.#held = transient ? Buffer.from(remainder) : remainder;
      this.#socket.pause();
    }
  }

  #takeControlFrame(): boolean {
    const bucket = this.#controlBucket;
    return bucket === null || take(bucket, 1, this.#controlBurst, this.#controlRefillPerMs, Date.now()) === 0;
  }

  #onPing(payload: Buffer): void {
    if (!this.#takeControlFrame()) {
      this.#fail(CLOSE.policyViolation, 'control frame rate exceeded');
      return;
    }
    // §5.5.2/§5.5.3: answer with a pong carrying the same application data, once per flush for
    // the latest ping. A flood used to queue one pong per ping with no cap: a non-reading upstream
    // took the gateway from 141 MB to 1 GB RSS in 12 s (bench/ping-flood.ts).
    if (!this.#closeSent) {
      this.#pendingPong = Buffer.from(payload);
      this.#scheduleFlush();
    }
  }

  /** Unsolicited or answering nothing we sent: §5.5.3 expects no response, but it counts against the budget. */
  #onPong(): void {
    if (!this.#takeControlFrame()) this.#fail(CLOSE.policyViolation, 'control frame rate exceeded');
  }

  #onCloseFrame(code: number, reason: string): void {
    // §5.5.1: echo the status code we received, then stop sending.
    if (!this.#closeSent) this.#queueClose(code === CLOSE.noStatus ? null : code, '');
    this.#flushNow();
    this.#socket.end();
    this.#armCloseTimer();
    this.#finish(code, reason);
  }

  /** Fails the connection (§7.1.7) with `code`: close frame, end, onClose. */
  #fail(code: number, reason: string): void {
    this.#reader.stop(); // whatever follows is not parsed
    if (!this.#closeSent) this.#queueClose(code, reason);
    this.#flushNow();
    this.#socket.end();
    this.#armCloseTimer();
    this.#finish(code, reason, true);
  }

  // ── flow control and closing ───────────────────────────────────────────────────────────────

  pause(): void {
    this.#userPaused = true;
    this.#reader.pause();
    this.#socket.pause();
  }

  resume(): void {
    if (!this.#userPaused) return;
    this.#userPaused = false;
    this.#reader.resume();
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
      if (!this.#finished && !this.#reader.stopped) this.#deliver(held, false);
      if (this.#held === null && !this.#userPaused && !this.#finished) this.#socket.resume();
    };
    // setImmediate runs after every microtask, so after `await dial(...)` has continued.
    if (afterDial) setImmediate(run);
    else process.nextTick(run);
  }

  close(code: number, reason: string): void {
    if (this.#closeSent || this.#finished) return;
    // docs/contracts.md: 1005/1006/1015 never go on the wire; an empty close body means "no status" (§7.1.5).
    this.#queueClose(isSendableCloseCode(code) ? code : null, reason);
    this.flush();
    // The closing handshake needs the upstream's close frame (§7.1.2): a paused leg would never
    // read it and would end in the timeout, so reading resumes.
    if (this.#userPaused) this.resume();
    this.#armCloseTimer();
  }

  terminate(): void {
    this.#socket.destroy();
  }

  #queueClose(code: number | null, reason: string): void {
    this.#closeSent = true;
    this.#writer.encodeClose(code, reason);
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== null || this.#socket.destroyed) return;
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), this.#closeTimeoutMs);
    this.#closeTimer.unref();
  }

  /** Also reached when the upstream ends TCP without a close frame: an abnormal closure (§7.1.5, 1006). */
  #onSocketClose(): void {
    if (this.#closeTimer !== null) clearTimeout(this.#closeTimer);
    this.#closeTimer = null;
    this.#held = null;
    this.#finish(CLOSE.abnormal, '');
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
      this.#socket.destroy();
      if (!this.#finished) {
        this.#finished = true;
        try {
          this.#handlers.onClose(CLOSE.abnormal, `handler failed: ${errorMessage(err)}`);
        } catch (again) {
          // Nothing is left to tell: the leg is already destroyed. Keep the first failure visible.
          process.emitWarning(`wsguard lean upstream: onClose threw after ${errorMessage(err)}: ${errorMessage(again)}`);
        }
      }
    }
  }
}
