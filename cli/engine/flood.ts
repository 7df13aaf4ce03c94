import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { CliError } from '../cli-error.ts';
import { createHandshakeAuth, type AuthOptions } from './auth.ts';
import { connect, watchEnd } from './connection.ts';
import { DueHeap } from './due-heap.ts';
import { createHistogram, recordMs, summarize, type Histogram } from './histogram.ts';
import { killSwitchReason, type KillSwitch } from './kill-switch.ts';
import { OutcomeCounter } from './outcomes.ts';
import { createPayloadFactory, parseMarker, type PayloadFactory, type PayloadSpec } from './payload.ts';
import { readHostLimits, runPreflight, type PreflightCheck } from './preflight.ts';
import type { RunResult, SeriesPoint } from './result.ts';
import { DEFAULT_SATURATION_LIMITS, judgeSaturation, SaturationMonitor, type SaturationLimits } from './saturation.ts';

export interface Stage {
  durationSec: number;
  /** Open connections wanted at the end of the stage (linear ramp from the previous target). */
  target: number;
}

export interface Caps {
  maxConnections: number;
  maxConnRate: number;
  maxMsgRate: number;
  maxDurationSec: number;
}

export type { KillSwitch };

export const DEFAULT_CAPS: Caps = Object.freeze({ maxConnections: 10_000, maxConnRate: 2_000, maxMsgRate: 200_000, maxDurationSec: 3_600 });

/** How every toolkit run reaches its target and guards itself: shared by flood and storm. */
export interface TargetOptions {
  handshakeTimeoutMs: number;
  closeGraceMs: number;
  auth?: AuthOptions;
  origin?: string;
  sourceIps?: string[];
  /**
   * Virtual user of connection k is userOffset + k·userStride: shares (workers, shards, both
   * nested) interleave, so their users never collide and tokens stay distinct.
   */
  userOffset?: number;
  userStride?: number;
  /** Accept any TLS certificate (self-signed test setups). */
  insecure?: boolean;
  caps: Caps;
  saturation: SaturationLimits;
  /** Skip the fatal pre-flight verdict (checks are still reported). */
  ignorePreflight?: boolean;
}

export interface FloodOptions extends TargetOptions {
  url: string;
  durationSec: number;
  /** Fixed model: hold this many connections. */
  connections?: number;
  /** Open model: new connections per second, each held `holdSec` (default: to the end). */
  arrivalRate?: number;
  holdSec?: number;
  /** Ramp model. */
  stages?: Stage[];
  /** Cap on new connections per second for fixed and ramp models (default: caps.maxConnRate). */
  connectRate?: number;
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
}

export interface FloodHooks {
  onSample?: (p: SeriesPoint) => void;
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
  ws?: WebSocket;
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
  sendTimes?: Map<number, number>;
  payload?: PayloadFactory;
}

function validate(o: FloodOptions): void {
  const models = [o.connections !== undefined, o.arrivalRate !== undefined, o.stages !== undefined].filter(Boolean).length;
  if (models !== 1) throw new CliError('usage', 'choose exactly one of --connections, --arrival-rate, --stages');
  if (!(o.durationSec > 0)) throw new CliError('usage', '--duration must be > 0');
  if (o.durationSec > o.caps.maxDurationSec) {
    throw new CliError('cap_exceeded', `--duration ${o.durationSec}s exceeds --max-duration ${o.caps.maxDurationSec}s`);
  }
  const peak = peakConnections(o);
  if (peak > o.caps.maxConnections) {
    throw new CliError('cap_exceeded', `the run would hold up to ${peak} connections, above --max-connections ${o.caps.maxConnections}`);
  }
  const connRate = o.arrivalRate ?? o.connectRate ?? 0;
  if (connRate > o.caps.maxConnRate) {
    throw new CliError('cap_exceeded', `${connRate} new connections/s exceeds --max-conn-rate ${o.caps.maxConnRate}`);
  }
  if (o.msgRate < 0) throw new CliError('usage', '--rate must be >= 0');
  const msgRate = peak * o.msgRate;
  if (msgRate > o.caps.maxMsgRate) {
    throw new CliError(
      'cap_exceeded',
      `${peak} connections × ${o.msgRate} msg/s = ${msgRate} msg/s exceeds --max-msg-rate ${o.caps.maxMsgRate}`,
    );
  }
  let url: URL;
  try {
    url = new URL(o.url);
  } catch (err) {
    throw new CliError('usage', `invalid target URL ${o.url}`, { cause: err });
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new CliError('usage', `target must be ws:// or wss://, got ${url.protocol}`);
}

export function peakConnections(o: Pick<FloodOptions, 'connections' | 'arrivalRate' | 'holdSec' | 'durationSec' | 'stages'>): number {
  if (o.connections !== undefined) return o.connections;
  if (o.arrivalRate !== undefined) return Math.ceil(o.arrivalRate * Math.min(o.holdSec ?? o.durationSec, o.durationSec));
  return Math.max(0, ...(o.stages ?? []).map((s) => s.target));
}

/** Open connections wanted at `t` seconds in the ramp model. */
export function stageTarget(stages: Stage[], t: number): number {
  let from = 0;
  let start = 0;
  for (const s of stages) {
    if (t < start + s.durationSec) return Math.round(from + ((s.target - from) * (t - start)) / s.durationSec);
    from = s.target;
    start += s.durationSec;
  }
  return from;
}

function isLoopback(url: string): boolean {
  const h = new URL(url).hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || h.startsWith('127.');
}

/** Redacts secrets from the options recorded in the result. */
function publicConfig(o: FloodOptions): Record<string, unknown> {
  const { auth, ...rest } = o;
  return {
    ...rest,
    auth: auth
      ? {
          tokenIn: auth.tokenIn,
          jwt: auth.jwt ? { alg: auth.jwt.alg, expSec: auth.jwt.expSec, claimsTemplate: auth.jwt.claimsTemplate } : undefined,
          headers: Object.keys(auth.headers ?? {}),
        }
      : undefined,
  };
}

export async function runFlood(opts: FloodOptions, hooks: FloodHooks = {}): Promise<RunResult> {
  validate(opts);
  const limits = readHostLimits();
  const preflight: PreflightCheck[] = runPreflight(
    {
      peakConnections: peakConnections(opts),
      connRate: opts.arrivalRate ?? opts.connectRate ?? opts.caps.maxConnRate,
      durationSec: opts.durationSec,
      sourceIpCount: opts.sourceIps?.length ?? 1,
      targetIsLoopback: isLoopback(opts.url),
    },
    limits,
  );
  const fatal = preflight.filter((c) => c.fatal && !c.ok);
  if (fatal.length > 0 && !opts.ignorePreflight) {
    throw new CliError('preflight', `pre-flight failed: ${fatal.map((c) => c.message).join('; ')}`);
  }
  // Mint the first user's token now, so a key or claims mistake is a usage error (exit 3), not a
  // run full of failed attempts.
  await createHandshakeAuth(opts.url, opts.auth)(opts.userOffset ?? 0);
  return new FloodRun(opts, hooks, preflight, limits.fdLimit).run();
}

class FloodRun {
  readonly #outcomes = new OutcomeCounter();
  readonly #rtt = createHistogram();
  readonly #rttRaw = createHistogram();
  readonly #connectH = createHistogram();
  readonly #sendLag = createHistogram();
  readonly #intervalRtt = createHistogram();
  readonly #heap = new DueHeap<Conn>();
  readonly #conns = new Set<Conn>();
  readonly #buffered = new Set<Conn>();
  readonly #series: SeriesPoint[] = [];
  readonly #monitor = new SaturationMonitor();
  readonly #handshake;
  readonly #periodMs: number;
  readonly #t0 = performance.now();
  readonly #startedAt = new Date();
  readonly #endAt: number;
  #nextId = 0;
  #attempts = 0;
  #opened = 0;
  #open = 0;
  #opening = 0;
  #peakOpen = 0;
  /** Open connections we sent a close to and that have not ended yet. */
  #closing = 0;
  #sent = 0;
  #received = 0;
  #unmatched = 0;
  #bytesOut = 0;
  #bytesIn = 0;
  #unsentLate = 0;
  /** Starts at 1 so the first connection goes out on the first tick. */
  #connectBudget = 1;
  #lastTick: number;
  #phase: 'running' | 'draining' | 'closing' | 'done' = 'running';
  #aborted: { reason: string; atSec: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #hardTimer: NodeJS.Timeout | undefined;
  #nextSampleAt: number;
  #last = { attempts: 0, opened: 0, sent: 0, received: 0, bytesOut: 0, bytesIn: 0, outcomes: new Map<string, number>() };
  #finish!: () => void;

  readonly #o: FloodOptions;

  readonly #hooks: FloodHooks;

  readonly #preflight: PreflightCheck[];

  readonly #fdLimit: number | undefined;

  constructor(
    o: FloodOptions,

    hooks: FloodHooks,

    preflight: PreflightCheck[],

    fdLimit: number | undefined,
  ) {
    this.#o = o;

    this.#hooks = hooks;

    this.#preflight = preflight;

    this.#fdLimit = fdLimit;
    this.#handshake = createHandshakeAuth(o.url, o.auth);
    this.#periodMs = o.msgRate > 0 ? 1000 / o.msgRate : Infinity;
    this.#endAt = this.#t0 + o.durationSec * 1000;
    this.#lastTick = this.#t0;
    this.#nextSampleAt = this.#t0 + 1000;
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
        this.#arrivals(now, dt);
        this.#sendDue(now);
      }
    }
    if (now >= this.#nextSampleAt) this.#sample(now);
    if (this.#phase === 'draining' && (this.#inFlightTotal() === 0 || now >= this.#endAt + this.#o.drainMs)) this.#beginClose();
    if (this.#phase === 'closing' && this.#open + this.#opening === 0) this.#complete();
    if (this.#phase !== 'done') this.#schedule();
  }

  // ---- arrivals ------------------------------------------------------------------------------

  #arrivals(now: number, dt: number): void {
    const elapsed = (now - this.#t0) / 1000;
    const o = this.#o;
    if (o.arrivalRate !== undefined) {
      const want = Math.floor(o.arrivalRate * elapsed) + 1;
      while (this.#attempts < want) {
        // Open-model arrivals have intended times too; lateness here is the generator's.
        recordMs(this.#sendLag, now - (this.#t0 + (this.#attempts * 1000) / o.arrivalRate));
        this.#startConnection();
      }
      return;
    }
    const target = o.connections ?? stageTarget(o.stages!, elapsed);
    const rate = o.connectRate ?? o.caps.maxConnRate;
    // Token bucket so a large fixed N opens at the connect-rate cap, not in one burst.
    this.#connectBudget = Math.min(Math.max(1, rate), this.#connectBudget + rate * dt);
    // Connections we already asked to close no longer count, or a ramp-down would close too many.
    const live = this.#open + this.#opening - this.#closing;
    if (o.connections !== undefined) {
      while (this.#attempts < target && this.#connectBudget >= 1) {
        this.#connectBudget -= 1;
        this.#startConnection();
      }
      return;
    }
    let n = live;
    while (n < target && this.#connectBudget >= 1) {
      this.#connectBudget -= 1;
      this.#startConnection();
      n++;
    }
    if (n > target) this.#rampDown(n - target);
  }

  #rampDown(excess: number): void {
    for (const c of this.#conns) {
      if (excess <= 0) return;
      if (c.state !== 'open' || c.clientClosing) continue;
      this.#closeConn(c, 1000, 'wsguard ramp down');
      excess--;
    }
  }

  #startConnection(): void {
    const id = this.#nextId++;
    const userIndex = (this.#o.userOffset ?? 0) + id * (this.#o.userStride ?? 1);
    const c: Conn = {
      id,
      userIndex,
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
    this.#attempts++;
    this.#opening++;
    this.#conns.add(c);
    void this.#dial(c);
  }

  async #dial(c: Conn): Promise<void> {
    const o = this.#o;
    let h;
    try {
      h = await this.#handshake(c.userIndex);
    } catch (err) {
      // Minting was checked before the run; a later failure is counted, not thrown into the void.
      this.#opening--;
      c.state = 'ended';
      this.#conns.delete(c);
      this.#outcomes.add('error.TOKEN_MINT', (err as Error).message);
      return;
    }
    const sources = o.sourceIps;
    const r = await connect({
      url: h.url,
      headers: h.headers,
      protocols: h.protocols,
      origin: o.origin,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      localAddress: sources && sources.length > 0 ? sources[c.id % sources.length] : undefined,
      rejectUnauthorized: o.insecure ? false : undefined,
    });
    this.#opening--;
    if (!r.ok) {
      c.state = 'ended';
      this.#conns.delete(c);
      this.#outcomes.add(r.outcome, r.detail);
      return;
    }
    // Handshake time of connections that opened: a refusal's few microseconds would pull the
    // percentiles down and make a closed port look fast.
    recordMs(this.#connectH, r.connectMs);
    const ws = r.ws;
    c.ws = ws;
    c.state = 'open';
    this.#opened++;
    this.#open++;
    this.#peakOpen = Math.max(this.#peakOpen, this.#open);
    const now = performance.now();
    c.openedAt = now;
    if (o.arrivalRate !== undefined && o.holdSec !== undefined) c.closeAt = now + o.holdSec * 1000;
    watchEnd(
      ws,
      () => c.clientClosing,
      (outcome, _code, reason) => this.#onEnd(c, outcome, reason),
    );
    ws.on('message', (data: Buffer) => this.#onMessage(c, data));
    if (this.#phase !== 'running') {
      this.#closeConn(c, 1001, 'wsguard flood complete');
      return;
    }
    if (o.msgRate > 0 || c.closeAt !== Infinity) {
      c.payload = createPayloadFactory(o.payload, c.userIndex);
      if (o.expectEcho) c.sendTimes = new Map();
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
    this.#open--;
    if (c.clientClosing) this.#closing--;
    this.#heap.remove(c);
    this.#buffered.delete(c);
    this.#conns.delete(c);
    this.#outcomes.add(outcome, reason);
  }

  #closeConn(c: Conn, code: number, reason: string): void {
    if (c.clientClosing) return;
    c.clientClosing = true;
    if (c.state === 'open') this.#closing++;
    this.#heap.remove(c);
    this.#buffered.delete(c);
    c.ws?.close(code, reason);
  }

  // ---- sending -------------------------------------------------------------------------------

  #sendDue(now: number): void {
    let budget = MAX_SENDS_PER_TICK;
    // Connections paused on a full send buffer resume once the kernel has taken the bytes.
    for (const c of this.#buffered) {
      if ((c.ws?.bufferedAmount ?? 0) < this.#o.maxBufferedBytes) {
        this.#buffered.delete(c);
        c.unblockedAt = now;
        this.#heap.push(c);
      }
    }
    for (let c = this.#heap.peek(); c && c.due <= now && budget > 0; c = this.#heap.peek()) {
      this.#heap.pop();
      if (c.closeAt <= now) {
        this.#closeConn(c, 1000, 'wsguard hold time over');
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
    const ws = c.ws!;
    let n: number;
    // Corked while a backlog of due messages goes out, so they leave in one writev, not one each.
    const sock = (ws as unknown as { _socket?: import('node:net').Socket })._socket;
    sock?.cork();
    try {
      n = this.#sendLoop(c, ws, now, budget);
    } finally {
      sock?.uncork();
    }
    return n;
  }

  #sendLoop(c: Conn, ws: WebSocket, now: number, budget: number): number {
    const o = this.#o;
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
      const data = c.payload!(seq);
      ws.send(data);
      n++;
      this.#sent++;
      this.#bytesOut += typeof data === 'string' ? Buffer.byteLength(data) : data.length;
      // Lateness the target did not cause: measured from when the message was both due and allowed.
      recordMs(this.#sendLag, now - Math.max(c.due, c.unblockedAt));
      if (c.sendTimes) {
        c.sendTimes.set(seq, now);
        c.inFlight++;
      }
      c.due = c.firstDue + c.nextSeq * this.#periodMs;
    }
    return n;
  }

  #onMessage(c: Conn, data: Buffer): void {
    const now = performance.now();
    this.#received++;
    this.#bytesIn += data.length;
    if (!c.sendTimes) return;
    const seq = parseMarker(data);
    const actual = seq >= 0 ? c.sendTimes.get(seq) : undefined;
    if (actual === undefined) {
      this.#unmatched++;
      return;
    }
    c.sendTimes.delete(seq);
    c.inFlight--;
    // Coordinated-omission correction: the clock starts when the message was meant to leave,
    // so time the target made us wait before sending counts against the target.
    const intended = c.firstDue + seq * this.#periodMs;
    recordMs(this.#rtt, now - intended);
    recordMs(this.#intervalRtt, now - intended);
    recordMs(this.#rttRaw, now - actual);
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
      if (c.state === 'open') this.#closeConn(c, 1001, 'wsguard flood complete');
    }
    setTimeout(() => {
      // The target did not answer our close frame in time: end the sockets ourselves.
      for (const c of this.#conns) if (c.state === 'open') c.ws?.terminate();
    }, this.#o.closeGraceMs).unref();
  }

  #abort(reason: string): void {
    if (this.#aborted || this.#phase === 'done') return;
    this.#aborted = { reason, atSec: Math.round((performance.now() - this.#t0) / 100) / 10 };
    if (this.#phase === 'running') this.#beginDrain();
    if (this.#phase === 'draining') this.#beginClose();
  }

  #hardStop(): void {
    if (this.#phase === 'done') return;
    this.#aborted ??= { reason: 'hard duration limit reached', atSec: Math.round((performance.now() - this.#t0) / 100) / 10 };
    for (const c of this.#conns) {
      if (c.state === 'open') c.ws?.terminate();
    }
    this.#complete();
  }

  #complete(): void {
    if (this.#phase === 'done') return;
    this.#phase = 'done';
    clearTimeout(this.#timer);
    clearTimeout(this.#hardTimer);
    // Handshakes still pending at the hard stop are counted, not forgotten.
    if (this.#opening > 0) this.#outcomes.add('dropped.cancelled', 'handshake pending at end of run', this.#opening);
    this.#finish();
  }

  // ---- sampling ------------------------------------------------------------------------------

  #sample(now: number): void {
    this.#nextSampleAt += 1000;
    const { cpuCores } = this.#monitor.sample();
    const outcomes: Record<string, number> = {};
    for (const [k, v] of this.#outcomes.counts) {
      const d = v - (this.#last.outcomes.get(k) ?? 0);
      if (d > 0) outcomes[k] = d;
      this.#last.outcomes.set(k, v);
    }
    const ms = (h: Histogram, p: number): number => (h.totalCount === 0 ? 0 : Math.round(h.getValueAtPercentile(p)) / 1000);
    const point: SeriesPoint = {
      t: Math.round((now - this.#t0) / 1000),
      open: this.#open,
      opening: this.#opening,
      attempts: this.#attempts - this.#last.attempts,
      opened: this.#opened - this.#last.opened,
      outcomes,
      sent: this.#sent - this.#last.sent,
      received: this.#received - this.#last.received,
      bytesOut: this.#bytesOut - this.#last.bytesOut,
      bytesIn: this.#bytesIn - this.#last.bytesIn,
      rttP50Ms: ms(this.#intervalRtt, 50),
      rttP99Ms: ms(this.#intervalRtt, 99),
      rttCount: this.#intervalRtt.totalCount,
      cpuCores,
    };
    this.#intervalRtt.reset();
    Object.assign(this.#last, {
      attempts: this.#attempts,
      opened: this.#opened,
      sent: this.#sent,
      received: this.#received,
      bytesOut: this.#bytesOut,
      bytesIn: this.#bytesIn,
    });
    this.#series.push(point);
    this.#hooks.onSample?.(point);
    this.#checkKillSwitch();
  }

  #checkKillSwitch(): void {
    if (!this.#o.killSwitch || this.#phase !== 'running') return;
    const reason = killSwitchReason(this.#series, this.#o.killSwitch);
    if (reason) this.#abort(reason);
  }

  #result(): RunResult {
    const durationMs = performance.now() - this.#t0;
    const activeMs = Math.max(1, Math.min(durationMs, this.#o.durationSec * 1000));
    const eld = this.#monitor.stop();
    const outcomes = this.#outcomes.toJSON();
    let lost = 0;
    for (const c of this.#conns) lost += c.inFlight;
    const lostTotal = this.#o.expectEcho ? this.#sent - (this.#received - this.#unmatched) : 0;
    const saturation = judgeSaturation(
      {
        ...eld,
        cpuCoresPeak: this.#monitor.cpuPeak,
        sendLagP99Ms: this.#sendLag.totalCount === 0 ? 0 : Math.round(this.#sendLag.getValueAtPercentile(99)) / 1000,
        scheduled: this.#sent + this.#unsentLate,
        sent: this.#sent,
        fdPeak: this.#monitor.fdPeak,
        fdLimit: this.#fdLimit,
        outcomes,
      },
      this.#o.saturation ?? DEFAULT_SATURATION_LIMITS,
    );
    return {
      kind: 'flood',
      version: 1,
      target: this.#o.url,
      startedAt: this.#startedAt.toISOString(),
      durationMs: Math.round(durationMs),
      config: publicConfig(this.#o),
      shards: 1,
      connections: { attempts: this.#attempts, opened: this.#opened, peakOpen: this.#peakOpen },
      outcomes,
      outcomeDetails: this.#outcomes.detailsJSON(),
      messages: {
        sent: this.#sent,
        received: this.#received,
        lost: Math.max(lost, lostTotal),
        unmatched: this.#unmatched,
        bytesOut: this.#bytesOut,
        bytesIn: this.#bytesIn,
        ratePerSecOut: Math.round((this.#sent / activeMs) * 1000),
        ratePerSecIn: Math.round((this.#received / activeMs) * 1000),
      },
      latency: { rtt: summarize(this.#rtt), rttUncorrected: summarize(this.#rttRaw), connect: summarize(this.#connectH) },
      saturation,
      preflight: this.#preflight,
      aborted: this.#aborted,
      series: this.#series,
    };
  }
}
