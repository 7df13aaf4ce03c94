import type { WebSocket } from 'uWebSockets.js';
import type { Config } from '../config/schema.ts';
import { ERROR_CODES } from '../errors.ts';
import { checkRate, createRateState, type RateState } from '../messages/rate-policy.ts';
import { createBucket, take, type Bucket } from '../messages/token-bucket.ts';
import { NOOP_CONNECTION, type ConnectionObservation, type Initiator, type RouteCounters } from '../telemetry/observer.ts';
import { clampReason, CLOSE, clientCloseToUpstream, upstreamCloseToClient } from './close-codes.ts';
import type { UpstreamConnection, UpstreamHandlers } from './upstream-types.ts';

/**
 * uWS copies the userData object at upgrade (docs/architecture.md), so the state both legs share lives in the
 * Connection that userData only references. `rejection` is set instead in rejectWith: close mode.
 */
export interface UserData {
  conn: Connection | null;
  rejection: { code: number; reason: string } | null;
}

/**
 * admitted: the handshake passed and the upstream is being dialled or has answered; the client's
 * socket is not open yet (upstream messages are held). open: relaying. closing: a close was started
 * (by anyone); nothing more is relayed. closed: both legs are done, the slot is given back.
 * docs/contracts.md draws the lifecycle with the code each exit yields.
 */
export type ConnectionState = 'admitted' | 'open' | 'closing' | 'closed';

export interface ConnectionOptions {
  config: Config;
  counters: RouteCounters;
  /** Gives the concurrent slot back; called once when the connection ends. */
  release: () => void;
  /** Token expiry (ms since epoch) to close on, or null. */
  tokenExpiresAtMs: number | null;
  /** Called once with the connection when it ends, so the gateway can forget it. */
  onEnded: (conn: Connection) => void;
}

const BACKPRESSURE_CODE = ERROR_CODES.backpressure.closeCode;
const CONTROL_RATE_CODE = ERROR_CODES.control_rate.closeCode;
/** How long a client may take to answer our close frame before its TCP connection is dropped. */
const CLOSE_GRACE_MS = 5_000;

/**
 * The two-way pump for one admitted connection: uWS client leg ⇄ upstream leg. Messages go through
 * untouched (same bytes, same opcode, same order); close codes are mapped both ways; a slow side
 * pauses the other where it can and is closed with 4102 if it stays slow, so nothing is lost quietly.
 */
export class Connection {
  #ws: WebSocket<UserData> | null = null;
  #upstream: UpstreamConnection | null = null;
  #state: ConnectionState = 'admitted';
  /** The code and reason the connection ended with, for a client socket that opens after the end. */
  #endedWith: [number, string] | null = null;
  #upstreamEnded = false;
  /** Reports nothing until the handshake is accepted (`accepted`): a rejected attempt is counted as a rejection only. */
  #telemetry: ConnectionObservation = NOOP_CONNECTION;
  /** Upstream messages that arrived between the upstream's 101 and the client's open. */
  #early: Array<[Buffer, boolean]> = [];
  #earlyClose: [number, string] | null = null;
  #initiator: Initiator | null = null;
  #openedAtMs = 0;
  #messagesIn = 0;
  #messagesOut = 0;
  readonly #rate: RateState;
  /** The client's ping+pong budget (messages.controlFramesPerSec, burst of twice that). */
  readonly #control: Bucket;
  #upstreamPaused = false;
  #clientStall: NodeJS.Timeout | null = null;
  #upstreamStall: NodeJS.Timeout | null = null;
  #deadline: NodeJS.Timeout | null = null;
  #forceClose: NodeJS.Timeout | null = null;

  readonly #o: ConnectionOptions;

  constructor(o: ConnectionOptions) {
    this.#o = o;
    this.#rate = createRateState(o.config.messages.rate, Date.now());
    this.#control = createBucket(o.config.messages.controlFramesPerSec * 2, Date.now());
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Handlers for the upstream dial; they are live from the dial on. */
  readonly upstreamHandlers: UpstreamHandlers = {
    batch: (deliver) => {
      const ws = this.#ws;
      if (ws && this.#state === 'open') ws.cork(deliver);
      else deliver();
    },
    onMessage: (data, isBinary) => this.#fromUpstream(data, isBinary),
    onClose: (code, reason, failed) => this.#upstreamClosed(code, reason, failed === true),
    onDrain: () => {
      if (this.#clientStall) clearTimeout(this.#clientStall);
      this.#clientStall = null;
    },
  };

  /** The handshake was accepted: from here the connection reports through its telemetry handle. */
  accepted(telemetry: ConnectionObservation): void {
    this.#telemetry = telemetry;
  }

  /** The dial succeeded: the connection owns the upstream leg from here. Closed at once if the connection already ended. */
  attachUpstream(upstream: UpstreamConnection): void {
    this.#upstream = upstream;
    if (this.#state === 'closing' || this.#state === 'closed') {
      this.#upstreamEnded = true;
      upstream.close(CLOSE.goingAway, 'client went away');
    }
  }

  /** The client's socket opened (uWS `open`): deliver what the upstream already sent, arm timers. */
  attach(ws: WebSocket<UserData>): void {
    if (this.#state !== 'admitted') {
      // Ended between the 101 and uWS `open` (a drain): the client still hears why.
      const [code, reason] = this.#endedWith ?? [CLOSE.goingAway, 'connection ended'];
      ws.end(code, clampReason(reason));
      return;
    }
    this.#ws = ws;
    this.#state = 'open';
    this.#openedAtMs = Date.now();
    this.#telemetry.opened();
    const early = this.#early;
    this.#early = [];
    ws.cork(() => {
      for (const [data, isBinary] of early) this.#fromUpstream(data, isBinary);
    });
    if (this.#earlyClose) {
      this.close(...this.#earlyClose, 'upstream');
      return;
    }
    this.#armDeadline();
  }

  #armDeadline(): void {
    const { config, tokenExpiresAtMs } = this.#o;
    const lifetimeAt = config.server.maxLifetimeSec > 0 ? this.#openedAtMs + config.server.maxLifetimeSec * 1000 : Infinity;
    const expiryAt = config.auth.closeOnExpiry && tokenExpiresAtMs !== null ? tokenExpiresAtMs : Infinity;
    const at = Math.min(lifetimeAt, expiryAt);
    if (at === Infinity) return;
    // setTimeout's delay is a 32-bit int; longer deadlines re-arm when the first timer fires.
    const delay = Math.max(0, Math.min(at - Date.now(), 2 ** 31 - 1));
    this.#deadline = setTimeout(() => {
      if (Date.now() < at) return this.#armDeadline();
      if (expiryAt <= lifetimeAt) this.close(ERROR_CODES.token_expired.closeCode, 'token expired', 'gateway');
      else this.close(CLOSE.lifetimeReached, 'connection lifetime reached', 'gateway');
    }, delay);
  }

  fromClient(message: ArrayBuffer, isBinary: boolean): void {
    if (this.#state !== 'open') return;
    const { config } = this.#o;
    const size = message.byteLength;
    if (size > config.messages.maxBytes) {
      this.close(CLOSE.tooBig, 'message too big', 'gateway');
      return;
    }
    const verdict = checkRate(this.#rate, config.messages.rate, size, Date.now());
    if (verdict !== 'pass') {
      this.#telemetry.rateLimited(verdict);
      if (verdict === 'close') this.close(ERROR_CODES.message_rate.closeCode, 'message rate exceeded', 'gateway');
      else this.#dropNotice();
      return;
    }
    const upstream = this.#upstream;
    if (!upstream) return;
    this.#messagesIn++;
    const counters = this.#o.counters;
    counters.messagesIn++;
    counters.bytesIn += size;
    if (upstream.send(message, isBinary)) return;
    // The upstream is not keeping up. uWS (this version) cannot pause reading a WebSocket, so the
    // client is given maxStallMs to let the upstream catch up, within a hard byte cap.
    if (upstream.bufferedAmount > config.backpressure.maxBufferedBytes) {
      this.#backpressureClose('client_to_upstream', 'upstream too slow');
    } else if (!this.#clientStall) {
      this.#clientStall = setTimeout(
        () => this.#backpressureClose('client_to_upstream', 'upstream too slow'),
        config.backpressure.maxStallMs,
      );
    }
  }

  /**
   * uWS `ping`/`pong` from the client. uWS has already answered a ping (it always does), so a flood
   * is stopped by closing: measured before this, ~9.6 M pings in 8 s on one connection were answered.
   */
  controlFromClient(): void {
    if (this.#state !== 'open') return;
    const perSec = this.#o.config.messages.controlFramesPerSec;
    if (take(this.#control, 1, perSec * 2, perSec / 1000, Date.now()) === 0) return;
    this.#telemetry.controlFramesLimited('client_to_upstream');
    this.close(CONTROL_RATE_CODE, 'control frame rate exceeded', 'gateway');
  }

  #dropNotice(): void {
    const { notice } = this.#o.config.messages.rate;
    const now = Date.now();
    if (!notice || now - this.#rate.lastNoticeMs < 1000 || !this.#ws) return;
    this.#rate.lastNoticeMs = now;
    this.#ws.send('{"type":"wsguard.rate_limited","action":"drop"}', false);
  }

  #fromUpstream(data: Uint8Array, isBinary: boolean): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    const ws = this.#ws;
    if (!ws || this.#state === 'admitted') {
      // `data` is only valid during the call: keep a copy until the client's open.
      this.#early.push([Buffer.from(data), isBinary]);
      return;
    }
    this.#messagesOut++;
    const counters = this.#o.counters;
    counters.messagesOut++;
    counters.bytesOut += data.byteLength;
    const status = ws.send(data, isBinary, false);
    if (status === 1) return;
    const { backpressure } = this.#o.config;
    // 2 = uWS dropped the message (over maxBackpressure): close rather than lose data quietly.
    if (status === 2) {
      this.#backpressureClose('upstream_to_client', 'client too slow');
      return;
    }
    if (!this.#upstreamPaused && ws.getBufferedAmount() > backpressure.highWaterBytes) {
      this.#upstreamPaused = true;
      this.#upstream?.pause();
      this.#telemetry.backpressure('upstream_to_client', 'pause');
      this.#upstreamStall = setTimeout(() => this.#backpressureClose('upstream_to_client', 'client too slow'), backpressure.maxStallMs);
    }
  }

  /** uWS `drain`: the client's buffer went down; resume the upstream once under the mark. */
  clientDrained(): void {
    const ws = this.#ws;
    if (!this.#upstreamPaused || !ws || this.#state !== 'open') return;
    if (ws.getBufferedAmount() > this.#o.config.backpressure.highWaterBytes) return;
    this.#upstreamPaused = false;
    if (this.#upstreamStall) clearTimeout(this.#upstreamStall);
    this.#upstreamStall = null;
    this.#upstream?.resume();
  }

  #backpressureClose(direction: 'client_to_upstream' | 'upstream_to_client', reason: string): void {
    this.#telemetry.backpressure(direction, 'close');
    this.close(BACKPRESSURE_CODE, reason, 'gateway');
  }

  /**
   * `failed`: the leg failed the upstream itself (it already sent the upstream `code`). The client
   * did nothing wrong, so it is told 1014 bad gateway with the leg's reason, not the leg's code.
   */
  #upstreamClosed(code: number, reason: string, failed: boolean): void {
    const closedByUs = this.#upstreamEnded;
    this.#upstreamEnded = true;
    const telemetry = this.#telemetry;
    if (failed && code === CONTROL_RATE_CODE) {
      telemetry.controlFramesLimited('upstream_to_client');
      telemetry.upstreamFailed('control_flood');
    } else if (failed) {
      telemetry.upstreamFailed('protocol');
    } else if (code === CLOSE.abnormal && !closedByUs) {
      // The app dropped TCP without a close frame while the gateway still relayed (not a reply to our close).
      telemetry.upstreamFailed('abnormal_close');
    }
    if (this.#state === 'closing' || this.#state === 'closed') return;
    const toClient = failed ? CLOSE.badGateway : upstreamCloseToClient(code);
    const why = failed ? `upstream ${reason}` : reason;
    if (this.#state === 'admitted') {
      this.#earlyClose = [toClient, why];
      return;
    }
    this.close(toClient, why, 'upstream');
  }

  /** Ends the connection from the gateway's or the upstream's side: the client gets `code`. */
  close(code: number, reason: string, initiator: Initiator): void {
    if (this.#state === 'closing' || this.#state === 'closed') return;
    const wasOpen = this.#state === 'open';
    this.#state = 'closing';
    this.#initiator ??= initiator;
    // The upstream is told at once: the client's half may take long (a slow client reads the close
    // frame only after the data queued before it).
    this.#closeUpstream(code, reason);
    const ws = this.#ws;
    if (ws && wasOpen) {
      ws.end(code, clampReason(reason));
      // uWS calls `close` → clientClosed when the close handshake completes; a client that never
      // reads its close frame is cut off after a grace period.
      this.#forceClose = setTimeout(() => {
        if (this.#state !== 'closed') ws.close();
      }, CLOSE_GRACE_MS);
      return;
    }
    this.#finish(code, reason);
  }

  /** uWS `close`: the client leg is gone (whoever started it). */
  clientClosed(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#initiator ??= 'client';
    this.#finish(code, reason);
  }

  /** The handshake was abandoned before the client opened (client abort, deadline). */
  abandon(): void {
    if (this.#state === 'closed') return;
    this.#initiator ??= 'client';
    this.#finish(CLOSE.goingAway, 'client aborted the handshake');
  }

  #closeUpstream(code: number, reason: string): void {
    const upstream = this.#upstream;
    if (!upstream || this.#upstreamEnded) return;
    this.#upstreamEnded = true;
    // A paused leg could not read the upstream's close reply, and the close handshake would hang.
    if (this.#upstreamPaused) upstream.resume();
    if (this.#initiator === 'client') upstream.close(clientCloseToUpstream(code), clampReason(reason));
    else upstream.close(CLOSE.goingAway, clampReason(`wsguard: ${reason}`));
  }

  #finish(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#endedWith = [code, reason];
    for (const t of [this.#clientStall, this.#upstreamStall, this.#deadline, this.#forceClose]) if (t) clearTimeout(t);
    this.#closeUpstream(code, reason);
    this.#o.release();
    this.#telemetry.closed({
      code,
      initiator: this.#initiator ?? 'client',
      durationMs: this.#openedAtMs ? Date.now() - this.#openedAtMs : 0,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
    });
    this.#o.onEnded(this);
  }
}
