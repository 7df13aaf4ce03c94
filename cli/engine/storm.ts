import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { CLOSE } from '../../src/relay/close-codes.ts';
import { CliError } from '../cli-error.ts';
import { delayBounds, describePolicy, nextDelay, withHint, type BackoffPolicy } from './backoff.ts';
import { retryMsFromReason, watchEnd } from './connection.ts';
import type { RunHooks } from './flood.ts';
import { createHistogram, recordMs, summarize } from './histogram.ts';
import { reconnectAdvice } from '../../src/relay/close-codes.ts';
import { closedOutcome, isRetryLaterClose, OutcomeCounter } from './outcomes.ts';
import { Recorder } from './recorder.ts';
import type { RunResult } from './result.ts';
import { DEFAULT_SATURATION_LIMITS } from './saturation.ts';
import type { StormSection } from './storm-types.ts';
import { DEFAULT_CAPS, Target, type TargetOptions } from './target.ts';

/**
 * Reconnect storm: hold N connections, drop a share of them at once, and watch the clients come
 * back under a reconnect policy. Measures how long recovery takes and what the server said while
 * it was overwhelmed (429s, try-again-later and connection-limit closes).
 */
export interface StormOptions extends TargetOptions {
  connections: number;
  /** Seconds after the start at which the drop happens. */
  dropAtSec: number;
  /** Share (0..100) of open connections to drop; `server` mode ignores it. */
  dropPercent: number;
  /**
   * Drop at --drop-at or, if later, once all connections are open (checked every 10 ms), so a slow
   * handshake phase does not shrink the population the storm hits.
   */
  dropAfterHeld?: boolean;
  /** reset: TCP RST (socket.resetAndDestroy); close: a clean normal close; server: wait for the server to close. */
  dropMode: 'reset' | 'close' | 'server';
  durationSec: number;
  policy: BackoffPolicy;
  /** Reconnect attempts per drop before a client gives up (0: unlimited). */
  maxAttempts: number;
  /** Wait at least Retry-After, or the retry_ms of a close that asks to come back later, before retrying. */
  honourRetryAfter: boolean;
  connectRate: number;
  /** An opened connection that closes within this window counts as a failed attempt. */
  settleMs: number;
}

export const STORM_DEFAULTS = Object.freeze({
  dropPercent: 100,
  dropMode: 'reset' as const,
  maxAttempts: 0,
  honourRetryAfter: false,
  connectRate: 1_000,
  settleMs: 200,
  handshakeTimeoutMs: 5_000,
  closeGraceMs: 1_000,
  caps: DEFAULT_CAPS,
  saturation: DEFAULT_SATURATION_LIMITS,
});

export interface AttemptEvent {
  client: number;
  /** 1 = first reconnect after the drop. */
  attempt: number;
  plannedDelayMs: number;
  actualDelayMs: number;
  bounds: [number, number];
  hintMs?: number;
}

export interface StormProgress {
  dropped: number;
  recovered: number;
  gaveUp: number;
}

export interface StormHooks extends RunHooks {
  onAttempt?: (e: AttemptEvent) => void;
  /** At the drop and whenever a client recovers or gives up: lets a caller wait for an event instead of a time. */
  onProgress?: (p: StormProgress) => void;
}

interface Client {
  id: number;
  ws?: WebSocket;
  state: 'idle' | 'connecting' | 'settling' | 'open' | 'waiting' | 'gave_up';
  /** Set when this client was dropped by the storm (or by the server in `server` mode). */
  droppedAt?: number;
  recoveredAt?: number;
  attempt: number;
  prevDelay: number;
  dropping: boolean;
  clientClosing: boolean;
  timer?: NodeJS.Timeout;
  attemptsSinceDrop: number;
}

const PERCENTS = [50, 90, 99, 100];

export async function runStorm(o: StormOptions, hooks: StormHooks = {}): Promise<RunResult> {
  if (!(o.connections > 0)) throw new CliError('usage', '--connections must be > 0');
  if (!(o.dropAtSec > 0 && o.dropAtSec < o.durationSec))
    throw new CliError('usage', '--drop-at must be inside the run (0 < drop-at < duration)');
  if (o.dropPercent < 0 || o.dropPercent > 100) throw new CliError('usage', '--drop-percent must be 0..100');
  const target = await Target.prepare(o, {
    durationSec: o.durationSec,
    peakConnections: o.connections,
    connRate: o.connectRate,
    connRateFlag: '--connect-rate',
    msgRate: 0,
  });
  return new StormRun(o, hooks, target).run();
}

/**
 * One storm: opens the clients at the connect rate, drops a share at --drop-at, and lets each
 * come back under the reconnect policy, counting into the shared Recorder like a flood does.
 */
export class StormRun {
  readonly #o: StormOptions;
  readonly #hooks: StormHooks;
  readonly #target: Target;
  readonly #rec: Recorder;
  readonly #duringRecovery = new OutcomeCounter();
  readonly #recoverH = createHistogram();
  readonly #delaysH = createHistogram();
  readonly #clients: Client[] = [];
  readonly #recoverTimes: number[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  #dropTime: number | undefined;
  #dropped = 0;
  #heldAtDrop = 0;
  #gaveUp = 0;
  #hintsHonoured = 0;
  #ending = false;
  #aborted: RunResult['aborted'];
  /** Called whenever the last open or opening socket goes, while the run is ending. */
  #onQuiet: (() => void) | undefined;

  constructor(o: StormOptions, hooks: StormHooks, target: Target) {
    this.#o = o;
    this.#hooks = hooks;
    this.#target = target;
    this.#rec = new Recorder(hooks.onSample, hooks.onLive);
    for (let i = 0; i < o.connections; i++) {
      this.#clients.push({ id: i, state: 'idle', attempt: 0, prevDelay: 0, dropping: false, clientClosing: false, attemptsSinceDrop: 0 });
    }
  }

  async run(): Promise<RunResult> {
    const o = this.#o;
    const rec = this.#rec;
    // Open the initial N at the connect rate.
    const gap = 1000 / o.connectRate;
    this.#clients.forEach((c, i) => this.#later(() => void this.#dial(c), i * gap));
    const sampler = setInterval(() => rec.sample(performance.now()), 1000);
    this.#later(() => this.#armDrop(), o.dropAtSec * 1000);
    await new Promise<void>((resolve) => {
      const end = setTimeout(resolve, o.durationSec * 1000);
      this.#hooks.signal?.addEventListener(
        'abort',
        () => {
          this.#aborted = { reason: 'aborted by signal (SIGINT)', atSec: rec.secondsSinceStart(performance.now()) };
          clearTimeout(end);
          resolve();
        },
        { once: true },
      );
    });
    await this.#end();
    clearInterval(sampler);
    rec.sample(performance.now());
    return this.#result();
  }

  /** A timer the end of the run cancels. */
  #later(fn: () => void, ms: number): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
    return t;
  }

  /**
   * Closes every client and waits for the sockets to go: terminated after the close grace, and
   * handshakes still pending at the deadline are counted as cancelled, not forgotten.
   */
  async #end(): Promise<void> {
    this.#ending = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const c of this.#clients) {
      clearTimeout(c.timer);
      if (c.ws) {
        c.clientClosing = true;
        c.ws.close(CLOSE.goingAway, 'wsguard storm complete');
      }
    }
    const rec = this.#rec;
    if (rec.open + rec.opening > 0) {
      await new Promise<void>((resolve) => {
        const terminate = setTimeout(() => {
          // The target did not answer our close frames in time: end the sockets ourselves.
          for (const c of this.#clients) c.ws?.terminate();
        }, this.#o.closeGraceMs);
        const deadline = setTimeout(done, this.#o.closeGraceMs + this.#o.handshakeTimeoutMs);
        function done(): void {
          clearTimeout(terminate);
          clearTimeout(deadline);
          resolve();
        }
        this.#onQuiet = done;
      });
      this.#onQuiet = undefined;
    }
    if (rec.opening > 0) rec.outcome('dropped.cancelled', 'handshake pending at end of run', rec.opening);
  }

  #quietCheck(): void {
    if (this.#onQuiet && this.#rec.open + this.#rec.opening === 0) this.#onQuiet();
  }

  #scheduleRetry(c: Client, hintMs: number | undefined): void {
    if (this.#ending) return;
    const o = this.#o;
    if (o.maxAttempts > 0 && c.droppedAt !== undefined && c.attemptsSinceDrop >= o.maxAttempts) {
      c.state = 'gave_up';
      this.#gaveUp++;
      this.#progress();
      return;
    }
    c.attempt++;
    if (c.droppedAt !== undefined) c.attemptsSinceDrop++;
    const prev = c.prevDelay;
    const planned = nextDelay(o.policy, c.attempt, prev);
    const delay = withHint(planned, hintMs, o.honourRetryAfter);
    if (delay > planned) this.#hintsHonoured++;
    c.prevDelay = planned;
    c.state = 'waiting';
    const scheduledAt = performance.now();
    recordMs(this.#delaysH, delay);
    c.timer = setTimeout(() => {
      const actual = performance.now() - scheduledAt;
      this.#hooks.onAttempt?.({
        client: c.id,
        attempt: c.attempt,
        plannedDelayMs: delay,
        actualDelayMs: actual,
        bounds: delayBounds(o.policy, c.attempt, prev),
        hintMs,
      });
      void this.#dial(c);
    }, delay);
  }

  /** An attempt failed or an open connection ended unasked: counted (already), then retried or given up. */
  #failed(c: Client, outcome: string, closeCode: number | undefined, hintMs: number | undefined): void {
    if (c.droppedAt !== undefined && c.recoveredAt === undefined) this.#duringRecovery.add(outcome);
    // A "do not reconnect" close (docs/contracts.md): a well-behaved client stops there.
    if (closeCode !== undefined && reconnectAdvice(closeCode) === 'stop') {
      c.state = 'gave_up';
      if (c.droppedAt !== undefined) {
        this.#gaveUp++;
        this.#progress();
      }
      return;
    }
    this.#scheduleRetry(c, hintMs);
  }

  async #dial(c: Client): Promise<void> {
    if (this.#ending) return;
    const o = this.#o;
    const rec = this.#rec;
    c.state = 'connecting';
    rec.attempt();
    const r = await this.#target.dial(c.id);
    if (!r.ok) {
      rec.failedAttempt(r.outcome, r.detail);
      this.#quietCheck();
      this.#failed(c, r.outcome, r.closeCode, r.retryAfterMs);
      return;
    }
    rec.openedSocket(r.connectMs);
    const ws = r.ws;
    c.ws = ws;
    c.state = 'settling';
    c.dropping = false;
    c.clientClosing = false;
    const openedAt = performance.now();
    const settle = setTimeout(() => {
      if (c.state !== 'settling') return;
      c.state = 'open';
      c.attempt = 0;
      c.prevDelay = 0;
      if (c.droppedAt !== undefined && c.recoveredAt === undefined) {
        c.recoveredAt = openedAt;
        recordMs(this.#recoverH, openedAt - c.droppedAt);
        this.#recoverTimes.push(openedAt - c.droppedAt);
        this.#progress();
      }
    }, o.settleMs);
    if (this.#ending) {
      c.clientClosing = true;
      ws.close(CLOSE.goingAway, 'wsguard storm complete');
    }
    watchEnd(
      ws,
      () => c.clientClosing,
      (outcome, code, reason) => {
        clearTimeout(settle);
        c.ws = undefined;
        if (c.dropping) {
          rec.closed(`dropped.${o.dropMode}`, '');
          this.#quietCheck();
          c.dropping = false;
          this.#scheduleRetry(c, undefined);
          return;
        }
        rec.closed(outcome, reason);
        this.#quietCheck();
        if (this.#ending || c.clientClosing) return;
        const now = performance.now();
        // In `server` mode the drop is whatever the server does after --drop-at.
        if (o.dropMode === 'server' && this.#dropTime !== undefined && c.state === 'open' && c.droppedAt === undefined) {
          c.droppedAt = now;
          c.attemptsSinceDrop = 0;
          this.#dropped++;
        } else if (c.state === 'open' && c.recoveredAt !== undefined) {
          // A recovered client dropped again is a new drop for the attempts count, not for recovery.
          c.attemptsSinceDrop = 0;
        }
        const hint = isRetryLaterClose(code) ? retryMsFromReason(reason) : undefined;
        c.state = 'waiting';
        this.#failed(c, outcome, outcome === closedOutcome(code) ? code : undefined, hint);
      },
    );
  }

  /** Drops at --drop-at or, with --drop-after-held, once every client is open (checked every 10 ms). */
  #armDrop(): void {
    const ready = !this.#o.dropAfterHeld || this.#clients.every((c) => c.state === 'open' || c.state === 'settling');
    if (ready) this.#drop();
    else this.#later(() => this.#armDrop(), 10);
  }

  #drop(): void {
    const o = this.#o;
    this.#dropTime = performance.now();
    this.#heldAtDrop = this.#rec.open;
    if (o.dropMode === 'server') {
      this.#progress();
      return;
    }
    // Settling clients are open too: the settle window only decides whether a *reconnect* counts.
    const openClients = this.#clients.filter((c) => (c.state === 'open' || c.state === 'settling') && c.ws);
    this.#heldAtDrop = openClients.length;
    const k = Math.round((openClients.length * o.dropPercent) / 100);
    // Fisher–Yates on a copy: which clients drop is random, how many is exact.
    for (let i = openClients.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [openClients[i], openClients[j]] = [openClients[j]!, openClients[i]!];
    }
    for (const c of openClients.slice(0, k)) {
      c.droppedAt = this.#dropTime;
      c.attemptsSinceDrop = 0;
      c.attempt = 0;
      c.prevDelay = 0;
      c.dropping = true;
      this.#dropped++;
      const ws = c.ws!;
      if (o.dropMode === 'reset') {
        // RST instead of FIN: the server sees ECONNRESET, like a NAT or load balancer dropping state.
        const sock = (ws as unknown as { _socket?: import('node:net').Socket })._socket;
        if (sock && typeof sock.resetAndDestroy === 'function') sock.resetAndDestroy();
        else ws.terminate();
      } else ws.close(CLOSE.normal, 'wsguard storm drop');
    }
    this.#progress();
  }

  #progress(): void {
    this.#hooks.onProgress?.({ dropped: this.#dropped, recovered: this.#recoverTimes.length, gaveUp: this.#gaveUp });
  }

  #stormSection(): StormSection {
    const o = this.#o;
    const dropped = this.#dropped;
    const recoverTimes = this.#recoverTimes.sort((a, b) => a - b);
    const timeToPercentMs: Record<string, number | null> = {};
    for (const p of PERCENTS) {
      const need = Math.ceil((dropped * p) / 100);
      timeToPercentMs[String(p)] = need === 0 ? 0 : recoverTimes.length >= need ? Math.round(recoverTimes[need - 1]!) : null;
    }
    const droppedClients = this.#clients.filter((c) => c.droppedAt !== undefined);
    const perClient: Record<string, number> = {};
    let sumAttempts = 0;
    let maxAttempts = 0;
    for (const c of droppedClients) {
      // attemptsSinceDrop counts scheduled retries; a recovered client's last one succeeded.
      const n = c.attemptsSinceDrop;
      perClient[String(n)] = (perClient[String(n)] ?? 0) + 1;
      sumAttempts += n;
      maxAttempts = Math.max(maxAttempts, n);
    }
    return {
      held: this.#heldAtDrop,
      dropped,
      dropMode: o.dropMode,
      dropAtSec: this.#dropTime === undefined ? o.dropAtSec : this.#rec.secondsSinceStart(this.#dropTime),
      policy:
        describePolicy(o.policy) +
        (o.maxAttempts > 0 ? `, max ${o.maxAttempts} attempts` : '') +
        (o.honourRetryAfter ? ', honours Retry-After' : ''),
      recover: summarize(this.#recoverH),
      timeToPercentMs,
      recovered: recoverTimes.length,
      gaveUp: this.#gaveUp,
      attemptsPerClient: {
        mean: droppedClients.length ? Math.round((sumAttempts / droppedClients.length) * 100) / 100 : 0,
        max: maxAttempts,
        histogram: perClient,
      },
      rejectionsDuringRecovery: this.#duringRecovery.toJSON(),
      delaysMs: summarize(this.#delaysH),
      retryAfterHonoured: this.#hintsHonoured,
    };
  }

  #result(): RunResult {
    const storm = this.#stormSection();
    // A storm sends no messages: nothing scheduled, nothing lost.
    const result = this.#rec.envelope('storm', this.#o, this.#target, this.#o.saturation, {
      scheduled: 0,
      lost: 0,
      aborted: this.#aborted,
    });
    return { ...result, storm };
  }
}
