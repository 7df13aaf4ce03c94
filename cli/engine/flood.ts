import { performance } from 'node:perf_hooks';
import { CLOSE } from '../../src/relay/close-codes.ts';
import { CliError } from '../cli-error.ts';
import { connect } from './connection.ts';
import { wsGenSocket, type GenConnectResult, type GenSocket, type Transport } from './gen-socket.ts';
import { leanConnect } from './lean-client.ts';
import { DueHeap } from './due-heap.ts';
import { recordMs } from './histogram.ts';
import { killSwitchReason, type KillSwitch } from './kill-switch.ts';
import type { LiveTotals } from './live-totals.ts';
import { loadModelFor, TickContext, type LoadModel, type LoadShape } from './load-models/index.ts';
import { createPayloadFactory, parseMarker, type PayloadFactory, type PayloadSpec } from './payload.ts';
import { Recorder } from './recorder.ts';
import { SendTimes } from './send-times.ts';
import { createPayloadBytes } from './payload-bytes.ts';
import type { RunResult, SeriesPoint } from './result.ts';
import { DEFAULT_SATURATION_LIMITS } from './saturation.ts';
import { Target, type TargetOptions } from './target.ts';

export type { KillSwitch };

export interface FloodOptions extends TargetOptions, LoadShape {
  url: string;
  durationSec: number;
  /** Messages per second per connection (0: connections only). */
  msgRate: number;
  payload: PayloadSpec;
  /** Expect the server to echo; enables RTT and lost-message accounting. */
  expectEcho: boolean;
  /** Per-connection unanswered-message window (0: unlimited, pure open loop). */
  maxInFlight: number;
  /** Pause sending on a connection while this many bytes wait in its send buffer. */
  maxBufferedBytes: number;
  drainMs: number;
  killSwitch?: KillSwitch;
  /** Client for the connections: the lean client (default) or `ws`, kept for comparison. */
  transport?: Transport;
}

/** What a caller may watch or stop while a run (flood or storm) is going. */
export interface RunHooks {
  onSample?: (p: SeriesPoint) => void;
  /** The running totals for the live exporters (cli/live/live-metrics.ts), each second and at the end. */
  onLive?: (t: LiveTotals) => void;
  signal?: AbortSignal;
}

export const FLOOD_DEFAULTS = Object.freeze({
  msgRate: 0,
  expectEcho: true,
  maxInFlight: 0,
  maxBufferedBytes: 1 << 20,
  drainMs: 1_000,
  closeGraceMs: 2_000,
  handshakeTimeoutMs: 5_000,
});

/** Scheduler tick; also the granularity of intended send times within a connection. */
const TICK_MS = 1;
/** Sends per tick before yielding to I/O, so receives (and RTTs) are not starved by sending. */
const MAX_SENDS_PER_TICK = 2_000;

interface Conn {
  id: number;
  userIndex: number;
  sock?: GenSocket;
  state: 'opening' | 'open' | 'ended';
  clientClosing: boolean;
  openedAt: number;
  closeAt: number;
  // send schedule
  due: number;
  heapIndex: number;
  firstDue: number;
  nextSeq: number;
  inFlight: number;
  blocked: boolean;
  unblockedAt: number;
  sendTimes?: SendTimes;
  payload?: PayloadFactory;
  /** The lean transport's in-place payload (payload-bytes.ts); text or binary as `payloadBinary`. */
  payloadBytes?: ((seq: number) => Buffer) | null;
}

/**
 * A flood: one load model (fixed, open or ramp) decides when connections start; the run dials them
 * through the shared Target, paces messages on each, and counts everything into a Recorder.
 */
export async function runFlood(opts: FloodOptions, hooks: RunHooks = {}): Promise<RunResult> {
  const model = loadModelFor(opts);
  if (!(opts.durationSec > 0)) throw new CliError('usage', '--duration must be > 0');
  if (opts.msgRate < 0) throw new CliError('usage', '--rate must be >= 0');
  const peak = model.peakConnections();
  const rate = model.connRate();
  const target = await Target.prepare(opts, {
    durationSec: opts.durationSec,
    peakConnections: peak,
    connRate: rate.perSec,
    connRateFlag: rate.flag,
    msgRate: peak * opts.msgRate,
  });
  return new FloodRun(opts, hooks, target, model).run();
}

export class FloodRun {
  readonly #rec: Recorder;
  readonly #heap = new DueHeap<Conn>();
  readonly #conns = new Set<Conn>();
  readonly #buffered = new Set<Conn>();
  readonly #o: FloodOptions;
  readonly #hooks: RunHooks;
  readonly #target: Target;
  readonly #model: LoadModel;
  readonly #ctx: TickContext;
  readonly #periodMs: number;
  readonly #t0: number;
  readonly #endAt: number;
  readonly #connect: (o: import('./connection.ts').ConnectOptions) => Promise<GenConnectResult>;
  #nextId = 0;
  /** Open connections we sent a close to and that have not ended yet. */
  #closing = 0;
  #unsentLate = 0;
  #lastTick: number;
  #phase: 'running' | 'draining' | 'closing' | 'done' = 'running';
  #aborted: { reason: string; atSec: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #hardTimer: NodeJS.Timeout | undefined;
  #nextSampleAt: number;
  #finish!: () => void;

  constructor(o: FloodOptions, hooks: RunHooks, target: Target, model: LoadModel) {
    this.#o = o;
    this.#hooks = hooks;
    this.#target = target;
    this.#model = model;
    this.#rec = new Recorder(hooks.onSample, hooks.onLive);
    this.#t0 = this.#rec.t0;
    this.#periodMs = o.msgRate > 0 ? 1000 / o.msgRate : Infinity;
    this.#endAt = this.#t0 + o.durationSec * 1000;
    this.#lastTick = this.#t0;
    this.#nextSampleAt = this.#t0 + 1000;
    this.#ctx = new TickContext({ start: (lateMs) => this.startConnection(lateMs), windDown: (n) => this.windDown(n) });
    this.#connect = o.transport === 'ws' ? connectWs : leanConnect;
  }

  async run(): Promise<RunResult> {
    const done = new Promise<void>((resolve) => (this.#finish = resolve));
    const onAbort = (): void => this.#abort('aborted by signal (SIGINT)');
    this.#hooks.signal?.addEventListener('abort', onAbort, { once: true });
    // Hard limit: whatever happens (a server that never answers close, a stuck handshake), the run
    // ends by this deadline.
    const hardMs = this.#o.durationSec * 1000 + this.#o.drainMs + this.#o.closeGraceMs + this.#o.handshakeTimeoutMs + 2_000;
    this.#hardTimer = setTimeout(() => this.#hardStop(), hardMs);
    this.#schedule();
    await done;
    this.#hooks.signal?.removeEventListener('abort', onAbort);
    return this.#result();
  }

  #schedule(): void {
    this.#timer = setTimeout(() => this.#tick(), TICK_MS);
  }

  #tick(): void {
    const now = performance.now();
    const dt = (now - this.#lastTick) / 1000;
    this.#lastTick = now;
    if (this.#phase === 'running') {
      if (now >= this.#endAt) this.#beginDrain();
      else {
        this.#ctx.set((now - this.#t0) / 1000, dt, this.#rec.attempts, this.#rec.open + this.#rec.opening - this.#closing);
        this.#model.tick(this.#ctx);
        this.#sendDue(now);
      }
    }
    if (now >= this.#nextSampleAt) this.#sample(now);
    if (this.#phase === 'draining' && (this.#inFlightTotal() === 0 || now >= this.#endAt + this.#o.drainMs)) this.#beginClose();
    if (this.#phase === 'closing' && this.#rec.open + this.#rec.opening === 0) this.#complete();
    if (this.#phase !== 'done') this.#schedule();
  }

  // ---- arrivals (decided by the load model) -------------------------------------------------

  /** A connection starts; `lateMs` is an open-model arrival's lateness, which is the generator's. */
  startConnection(lateMs?: number): void {
    if (lateMs !== undefined) recordMs(this.#rec.sendLag, lateMs);
    const id = this.#nextId++;
    const c: Conn = {
      id,
      userIndex: this.#target.userIndex(id),
      state: 'opening',
      clientClosing: false,
      openedAt: 0,
      closeAt: Infinity,
      due: Infinity,
      heapIndex: -1,
      firstDue: 0,
      nextSeq: 0,
      inFlight: 0,
      blocked: false,
      unblockedAt: 0,
    };
    this.#rec.attempt();
    this.#conns.add(c);
    void this.#dial(c);
  }

  windDown(excess: number): void {
    for (const c of this.#conns) {
      if (excess <= 0) return;
      if (c.state !== 'open' || c.clientClosing) continue;
      this.#closeConn(c, CLOSE.normal, 'wsguard ramp down');
      excess--;
    }
  }

  async #dial(c: Conn): Promise<void> {
    const o = this.#o;
    const r = await this.#target.dialWith(c.id, this.#connect);
    if (!r.ok) {
      c.state = 'ended';
      this.#conns.delete(c);
      this.#rec.failedAttempt(r.outcome, r.detail);
      return;
    }
    this.#rec.openedSocket(r.connectMs);
    const sock = r.sock;
    c.sock = sock;
    c.state = 'open';
    const now = performance.now();
    c.openedAt = now;
    c.closeAt = now + this.#model.holdMs;
    sock.watch(
      () => c.clientClosing,
      (data, readAt) => this.#onMessage(c, data, readAt),
      (outcome, _code, reason) => this.#onEnd(c, outcome, reason),
    );
    if (this.#phase !== 'running') {
      this.#closeConn(c, CLOSE.goingAway, 'wsguard flood complete');
      return;
    }
    if (o.msgRate > 0 || c.closeAt !== Infinity) {
      c.payload = createPayloadFactory(o.payload, c.userIndex);
      if (o.transport !== 'ws') c.payloadBytes = createPayloadBytes(o.payload, c.userIndex);
      if (o.expectEcho) c.sendTimes = new SendTimes();
      // Spread first sends over one period so N connections do not fire in lockstep.
      const phase = o.msgRate > 0 ? ((c.id * 0.618_033_988_75) % 1) * this.#periodMs : 0;
      c.firstDue = now + phase;
      c.due = Math.min(o.msgRate > 0 ? c.firstDue : Infinity, c.closeAt);
      this.#heap.push(c);
    }
  }

  #onEnd(c: Conn, outcome: string, reason: string): void {
    if (c.state !== 'open') return;
    c.state = 'ended';
    if (c.clientClosing) this.#closing--;
    this.#heap.remove(c);
    this.#buffered.delete(c);
    this.#conns.delete(c);
    this.#rec.closed(outcome, reason);
  }

  #closeConn(c: Conn, code: number, reason: string): void {
    if (c.clientClosing) return;
    c.clientClosing = true;
    if (c.state === 'open') this.#closing++;
    this.#heap.remove(c);
    this.#buffered.delete(c);
    c.sock?.close(code, reason);
  }

  // ---- sending -------------------------------------------------------------------------------

  #sendDue(now: number): void {
    let budget = MAX_SENDS_PER_TICK;
    // Connections paused on a full send buffer resume once the kernel has taken the bytes.
    for (const c of this.#buffered) {
      if ((c.sock?.bufferedAmount ?? 0) < this.#o.maxBufferedBytes) {
        this.#buffered.delete(c);
        c.unblockedAt = now;
        this.#heap.push(c);
      }
    }
    for (let c = this.#heap.peek(); c && c.due <= now && budget > 0; c = this.#heap.peek()) {
      this.#heap.pop();
      if (c.closeAt <= now) {
        this.#closeConn(c, CLOSE.normal, 'wsguard hold time over');
        continue;
      }
      budget -= this.#sendFrom(c, now, budget);
      if (c.blocked || this.#buffered.has(c)) continue;
      c.due = Math.min(c.due, c.closeAt);
      this.#heap.push(c);
    }
  }

  /** Sends every message of `c` that is due, within the window; returns how many were sent. */
  #sendFrom(c: Conn, now: number, budget: number): number {
    const sock = c.sock!;
    let n: number;
    // Corked while a backlog of due messages goes out, so they leave in one write, not one each
    // (the lean client batches per event-loop iteration by itself).
    sock.cork();
    try {
      n = this.#sendLoop(c, sock, now, budget);
    } finally {
      sock.uncork();
    }
    return n;
  }

  #sendLoop(c: Conn, ws: GenSocket, now: number, budget: number): number {
    const o = this.#o;
    const rec = this.#rec;
    const binary = o.payload.binary === true;
    let n = 0;
    while (c.due <= now && n < budget && c.due < c.closeAt) {
      if (o.maxInFlight > 0 && o.expectEcho && c.inFlight >= o.maxInFlight) {
        c.blocked = true;
        return n;
      }
      if (ws.bufferedAmount >= o.maxBufferedBytes) {
        this.#buffered.add(c);
        return n;
      }
      const seq = c.nextSeq++;
      if (c.payloadBytes) {
        const bytes = c.payloadBytes(seq);
        ws.send(bytes, binary);
        rec.bytesOut += bytes.length;
      } else {
        const data = c.payload!(seq);
        ws.send(data);
        rec.bytesOut += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
      }
      n++;
      rec.sent++;
      // Lateness the target did not cause: measured from when the message was both due and allowed.
      recordMs(rec.sendLag, now - Math.max(c.due, c.unblockedAt));
      if (c.sendTimes) {
        c.sendTimes.set(seq, now);
        c.inFlight++;
      }
      c.due = c.firstDue + c.nextSeq * this.#periodMs;
    }
    return n;
  }

  #onMessage(c: Conn, data: Buffer, readAt: number | undefined): void {
    const now = readAt ?? performance.now();
    const rec = this.#rec;
    rec.received++;
    rec.bytesIn += data.length;
    if (!c.sendTimes) return;
    const seq = parseMarker(data);
    const actual = c.sendTimes.take(seq);
    if (actual === undefined) {
      rec.unmatched++;
      return;
    }
    c.inFlight--;
    // Coordinated-omission correction: the clock starts when the message was meant to leave,
    // so time the target made us wait before sending counts against the target.
    const intended = c.firstDue + seq * this.#periodMs;
    rec.roundTrip(now - intended, now - actual);
    if (c.blocked && c.inFlight < this.#o.maxInFlight && this.#phase === 'running' && c.state === 'open') {
      c.blocked = false;
      c.unblockedAt = now;
      this.#heap.push(c);
    }
  }

  #inFlightTotal(): number {
    if (!this.#o.expectEcho) return 0;
    let n = 0;
    for (const c of this.#conns) n += c.inFlight;
    return n;
  }

  // ---- phases --------------------------------------------------------------------------------

  #beginDrain(): void {
    this.#phase = 'draining';
    // Messages that were due but never left, on connections the target was not holding back.
    for (const c of this.#conns) {
      if (c.state !== 'open' || c.blocked || this.#buffered.has(c) || this.#o.msgRate === 0) continue;
      const stop = Math.min(this.#endAt, c.closeAt);
      if (c.due <= stop) this.#unsentLate += Math.floor((stop - c.due) / this.#periodMs) + 1;
    }
    while (this.#heap.pop());
    this.#buffered.clear();
  }

  #beginClose(): void {
    this.#phase = 'closing';
    for (const c of this.#conns) {
      if (c.state === 'open') this.#closeConn(c, CLOSE.goingAway, 'wsguard flood complete');
    }
    setTimeout(() => {
      // The target did not answer our close frame in time: end the sockets ourselves.
      for (const c of this.#conns) if (c.state === 'open') c.sock?.terminate();
    }, this.#o.closeGraceMs).unref();
  }

  #abort(reason: string): void {
    if (this.#aborted || this.#phase === 'done') return;
    this.#aborted = { reason, atSec: this.#rec.secondsSinceStart(performance.now()) };
    if (this.#phase === 'running') this.#beginDrain();
    if (this.#phase === 'draining') this.#beginClose();
  }

  #hardStop(): void {
    if (this.#phase === 'done') return;
    this.#aborted ??= { reason: 'hard duration limit reached', atSec: this.#rec.secondsSinceStart(performance.now()) };
    for (const c of this.#conns) {
      if (c.state === 'open') c.sock?.terminate();
    }
    this.#complete();
  }

  #complete(): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    clearTimeout(this.#timer);
    clearTimeout(this.#hardTimer);
    // Handshakes still pending at the hard stop are counted, not forgotten.
    if (this.#rec.opening > 0) this.#rec.outcome('dropped.cancelled', 'handshake pending at end of run', this.#rec.opening);
    this.#finish();
  }

  // ---- sampling ------------------------------------------------------------------------------

  #sample(now: number): void {
    this.#nextSampleAt += 1000;
    this.#rec.sample(now);
    this.#checkKillSwitch();
  }

  #checkKillSwitch(): void {
    if (!this.#o.killSwitch || this.#phase !== 'running') return;
    const reason = killSwitchReason(this.#rec.series, this.#o.killSwitch);
    if (reason) this.#abort(reason);
  }

  #result(): RunResult {
    const rec = this.#rec;
    let lost = 0;
    for (const c of this.#conns) lost += c.inFlight;
    const lostTotal = this.#o.expectEcho ? rec.sent - (rec.received - rec.unmatched) : 0;
    return rec.envelope('flood', this.#o, this.#target, this.#o.saturation ?? DEFAULT_SATURATION_LIMITS, {
      activeMs: this.#o.durationSec * 1000,
      scheduled: rec.sent + this.#unsentLate,
      lost: Math.max(lost, lostTotal),
      aborted: this.#aborted,
    });
  }
}

async function connectWs(o: import('./connection.ts').ConnectOptions): Promise<GenConnectResult> {
  const r = await connect(o);
  return r.ok ? { ok: true, sock: wsGenSocket(r.ws), connectMs: r.connectMs } : r;
}
