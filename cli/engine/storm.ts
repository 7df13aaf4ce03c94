import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { CliError } from '../cli-error.ts';
import { createHandshakeAuth } from './auth.ts';
import { delayBounds, describePolicy, nextDelay, withHint, type BackoffPolicy } from './backoff.ts';
import { connect, retryMsFromReason, watchEnd } from './connection.ts';
import { DEFAULT_CAPS, type TargetOptions } from './flood.ts';
import { createHistogram, recordMs, summarize } from './histogram.ts';
import { isRetryLaterClose, OutcomeCounter } from './outcomes.ts';
import { readHostLimits, runPreflight } from './preflight.ts';
import type { RunResult, SeriesPoint } from './result.ts';
import { DEFAULT_SATURATION_LIMITS, judgeSaturation, SaturationMonitor } from './saturation.ts';
import type { StormSection } from './storm-types.ts';

/**
 * Reconnect storm: hold N connections, drop a share of them at once, and watch the clients come
 * back under a reconnect policy. Measures how long recovery takes and what the server said while
 * it was overwhelmed (429s, 1013/4100 closes).
 */
export interface StormOptions extends TargetOptions {
  url: string;
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
  /** reset: TCP RST (socket.resetAndDestroy); close: clean 1000 close; server: wait for the server to close. */
  dropMode: 'reset' | 'close' | 'server';
  durationSec: number;
  policy: BackoffPolicy;
  /** Reconnect attempts per drop before a client gives up (0: unlimited). */
  maxAttempts: number;
  /** Wait at least Retry-After / a 4100–4199 or 1013 close's retry_ms before retrying. */
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

export interface StormHooks {
  onSample?: (p: SeriesPoint) => void;
  onAttempt?: (e: AttemptEvent) => void;
  signal?: AbortSignal;
}

interface Client {
  id: number;
  userIndex: number;
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
  if (o.connections > o.caps.maxConnections)
    throw new CliError('cap_exceeded', `--connections ${o.connections} exceeds --max-connections ${o.caps.maxConnections}`);
  if (o.connectRate > o.caps.maxConnRate)
    throw new CliError('cap_exceeded', `--connect-rate ${o.connectRate} exceeds --max-conn-rate ${o.caps.maxConnRate}`);
  if (o.durationSec > o.caps.maxDurationSec)
    throw new CliError('cap_exceeded', `--duration ${o.durationSec}s exceeds --max-duration ${o.caps.maxDurationSec}s`);
  if (!(o.dropAtSec > 0 && o.dropAtSec < o.durationSec))
    throw new CliError('usage', '--drop-at must be inside the run (0 < drop-at < duration)');
  if (o.dropPercent < 0 || o.dropPercent > 100) throw new CliError('usage', '--drop-percent must be 0..100');
  const limits = readHostLimits();
  const preflight = runPreflight(
    {
      peakConnections: o.connections,
      connRate: o.connectRate,
      durationSec: o.durationSec,
      sourceIpCount: o.sourceIps?.length ?? 1,
      targetIsLoopback: /\/\/(127\.|localhost|\[::1\])/.test(o.url),
    },
    limits,
  );
  const fatal = preflight.filter((c) => c.fatal && !c.ok);
  if (fatal.length > 0 && !o.ignorePreflight)
    throw new CliError('preflight', `pre-flight failed: ${fatal.map((c) => c.message).join('; ')}`);

  const handshake = createHandshakeAuth(o.url, o.auth);
  // A key or claims mistake is a usage error before the run, not N failed attempts.
  await handshake(o.userOffset ?? 0);
  const t0 = performance.now();
  const startedAt = new Date();
  const outcomes = new OutcomeCounter();
  const duringRecovery = new OutcomeCounter();
  const connectH = createHistogram();
  const recoverH = createHistogram();
  const delaysH = createHistogram();
  const monitor = new SaturationMonitor();
  const series: SeriesPoint[] = [];
  const clients: Client[] = [];
  const recoverTimes: number[] = [];
  let attempts = 0;
  let opened = 0;
  let open = 0;
  let connecting = 0;
  let peakOpen = 0;
  let dropTime: number | undefined;
  let dropped = 0;
  let heldAtDrop = 0;
  let gaveUp = 0;
  let hintsHonoured = 0;
  let ending = false;
  let aborted: RunResult['aborted'];
  const last = { attempts: 0, opened: 0, outcomes: new Map<string, number>() };

  const scheduleRetry = (c: Client, hintMs: number | undefined): void => {
    if (ending) return;
    if (o.maxAttempts > 0 && c.droppedAt !== undefined && c.attemptsSinceDrop >= o.maxAttempts) {
      c.state = 'gave_up';
      gaveUp++;
      return;
    }
    c.attempt++;
    if (c.droppedAt !== undefined) c.attemptsSinceDrop++;
    const prev = c.prevDelay;
    const planned = nextDelay(o.policy, c.attempt, prev);
    const delay = withHint(planned, hintMs, o.honourRetryAfter);
    if (delay > planned) hintsHonoured++;
    c.prevDelay = planned;
    c.state = 'waiting';
    const scheduledAt = performance.now();
    recordMs(delaysH, delay);
    c.timer = setTimeout(() => {
      const actual = performance.now() - scheduledAt;
      hooks.onAttempt?.({
        client: c.id,
        attempt: c.attempt,
        plannedDelayMs: delay,
        actualDelayMs: actual,
        bounds: delayBounds(o.policy, c.attempt, prev),
        hintMs,
      });
      void dial(c);
    }, delay);
  };

  const failed = (c: Client, outcome: string, detail: string, hintMs: number | undefined): void => {
    outcomes.add(outcome, detail);
    if (c.droppedAt !== undefined && c.recoveredAt === undefined) duringRecovery.add(outcome);
    // 4000–4099 means "do not reconnect" (docs/contracts.md): a well-behaved client stops there.
    const code = outcome.startsWith('closed.') ? Number(outcome.slice(7)) : 0;
    if (code >= 4000 && code <= 4099) {
      c.state = 'gave_up';
      if (c.droppedAt !== undefined) gaveUp++;
      return;
    }
    scheduleRetry(c, hintMs);
  };

  const dial = async (c: Client): Promise<void> => {
    if (ending) return;
    c.state = 'connecting';
    attempts++;
    connecting++;
    let h;
    try {
      h = await handshake(c.userIndex);
    } catch (err) {
      connecting--;
      failed(c, 'error.TOKEN_MINT', (err as Error).message, undefined);
      return;
    }
    const r = await connect({
      url: h.url,
      headers: h.headers,
      protocols: h.protocols,
      origin: o.origin,
      handshakeTimeoutMs: o.handshakeTimeoutMs,
      localAddress: o.sourceIps?.[c.id % o.sourceIps.length],
      rejectUnauthorized: o.insecure ? false : undefined,
    });
    connecting--;
    if (!r.ok) {
      failed(c, r.outcome, r.detail, r.retryAfterMs);
      return;
    }
    // Only handshakes that opened: refusals would make a closed port look fast.
    recordMs(connectH, r.connectMs);
    opened++;
    open++;
    peakOpen = Math.max(peakOpen, open);
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
        recordMs(recoverH, openedAt - c.droppedAt);
        recoverTimes.push(openedAt - c.droppedAt);
      }
    }, o.settleMs);
    if (ending) {
      c.clientClosing = true;
      ws.close(1001, 'wsguard storm complete');
    }
    watchEnd(
      ws,
      () => c.clientClosing,
      (outcome, code, reason) => {
        clearTimeout(settle);
        open--;
        c.ws = undefined;
        if (c.dropping) {
          outcomes.add(`dropped.${o.dropMode}`);
          c.dropping = false;
          scheduleRetry(c, undefined);
          return;
        }
        if (ending || c.clientClosing) {
          outcomes.add(outcome, reason);
          return;
        }
        const now = performance.now();
        // In `server` mode the drop is whatever the server does after --drop-at.
        if (o.dropMode === 'server' && dropTime !== undefined && c.state === 'open' && c.droppedAt === undefined) {
          c.droppedAt = now;
          c.attemptsSinceDrop = 0;
          dropped++;
        } else if (c.state === 'open' && c.recoveredAt !== undefined) {
          // A recovered client dropped again is a new drop for the attempts count, not for recovery.
          c.attemptsSinceDrop = 0;
        }
        const hint = isRetryLaterClose(code) ? retryMsFromReason(reason) : undefined;
        c.state = 'waiting';
        failed(c, outcome, reason, hint);
      },
    );
  };

  const drop = (): void => {
    dropTime = performance.now();
    heldAtDrop = open;
    if (o.dropMode === 'server') return;
    // Settling clients are open too: the settle window only decides whether a *reconnect* counts.
    const openClients = clients.filter((c) => (c.state === 'open' || c.state === 'settling') && c.ws);
    heldAtDrop = openClients.length;
    const k = Math.round((openClients.length * o.dropPercent) / 100);
    // Fisher–Yates on a copy: which clients drop is random, how many is exact.
    for (let i = openClients.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [openClients[i], openClients[j]] = [openClients[j]!, openClients[i]!];
    }
    for (const c of openClients.slice(0, k)) {
      c.droppedAt = dropTime;
      c.attemptsSinceDrop = 0;
      c.attempt = 0;
      c.prevDelay = 0;
      c.dropping = true;
      dropped++;
      const ws = c.ws!;
      if (o.dropMode === 'reset') {
        // RST instead of FIN: the server sees ECONNRESET, like a NAT or load balancer dropping state.
        const sock = (ws as unknown as { _socket?: import('node:net').Socket })._socket;
        if (sock && typeof sock.resetAndDestroy === 'function') sock.resetAndDestroy();
        else ws.terminate();
      } else ws.close(1000, 'wsguard storm drop');
    }
  };

  const sample = (): void => {
    const now = performance.now();
    const { cpuCores } = monitor.sample();
    const delta: Record<string, number> = {};
    for (const [k, v] of outcomes.counts) {
      const d = v - (last.outcomes.get(k) ?? 0);
      if (d > 0) delta[k] = d;
      last.outcomes.set(k, v);
    }
    const p: SeriesPoint = {
      t: Math.round((now - t0) / 1000),
      open,
      opening: connecting,
      attempts: attempts - last.attempts,
      opened: opened - last.opened,
      outcomes: delta,
      sent: 0,
      received: 0,
      bytesOut: 0,
      bytesIn: 0,
      rttP50Ms: 0,
      rttP99Ms: 0,
      cpuCores,
    };
    last.attempts = attempts;
    last.opened = opened;
    series.push(p);
    hooks.onSample?.(p);
  };

  // Open the initial N at the connect rate.
  const userOffset = o.userOffset ?? 0;
  for (let i = 0; i < o.connections; i++) {
    clients.push({
      id: i,
      userIndex: userOffset + i * (o.userStride ?? 1),
      state: 'idle',
      attempt: 0,
      prevDelay: 0,
      dropping: false,
      clientClosing: false,
      attemptsSinceDrop: 0,
    });
  }
  const gap = 1000 / o.connectRate;
  const openTimers = clients.map((c, i) => setTimeout(() => void dial(c), i * gap));
  const sampler = setInterval(sample, 1000);
  let dropTimer: NodeJS.Timeout;
  const armDrop = (): void => {
    const ready = !o.dropAfterHeld || clients.every((c) => c.state === 'open' || c.state === 'settling');
    if (ready) drop();
    else dropTimer = setTimeout(armDrop, 10);
  };
  dropTimer = setTimeout(armDrop, o.dropAtSec * 1000);

  await new Promise<void>((resolve) => {
    const end = setTimeout(resolve, o.durationSec * 1000);
    hooks.signal?.addEventListener(
      'abort',
      () => {
        aborted = { reason: 'aborted by signal (SIGINT)', atSec: Math.round((performance.now() - t0) / 100) / 10 };
        clearTimeout(end);
        resolve();
      },
      { once: true },
    );
  });
  ending = true;
  for (const t of openTimers) clearTimeout(t);
  clearTimeout(dropTimer);
  for (const c of clients) clearTimeout(c.timer);
  for (const c of clients) {
    if (c.ws) {
      c.clientClosing = true;
      c.ws.close(1001, 'wsguard storm complete');
    }
  }
  const closeDeadline = performance.now() + o.closeGraceMs + o.handshakeTimeoutMs;
  while ((open > 0 || connecting > 0) && performance.now() < closeDeadline) {
    await new Promise((r) => setTimeout(r, 20));
    if (performance.now() > closeDeadline - o.handshakeTimeoutMs) for (const c of clients) c.ws?.terminate();
  }
  if (connecting > 0) outcomes.add('dropped.cancelled', 'handshake pending at end of run', connecting);
  clearInterval(sampler);
  sample();
  const eld = monitor.stop();

  recoverTimes.sort((a, b) => a - b);
  const timeToPercentMs: Record<string, number | null> = {};
  for (const p of PERCENTS) {
    const need = Math.ceil((dropped * p) / 100);
    timeToPercentMs[String(p)] = need === 0 ? 0 : recoverTimes.length >= need ? Math.round(recoverTimes[need - 1]!) : null;
  }
  const droppedClients = clients.filter((c) => c.droppedAt !== undefined);
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
  const storm: StormSection = {
    held: heldAtDrop,
    dropped,
    dropMode: o.dropMode,
    dropAtSec: dropTime === undefined ? o.dropAtSec : Math.round((dropTime - t0) / 100) / 10,
    policy:
      describePolicy(o.policy) +
      (o.maxAttempts > 0 ? `, max ${o.maxAttempts} attempts` : '') +
      (o.honourRetryAfter ? ', honours Retry-After' : ''),
    recover: summarize(recoverH),
    timeToPercentMs,
    recovered: recoverTimes.length,
    gaveUp,
    attemptsPerClient: {
      mean: droppedClients.length ? Math.round((sumAttempts / droppedClients.length) * 100) / 100 : 0,
      max: maxAttempts,
      histogram: perClient,
    },
    rejectionsDuringRecovery: duringRecovery.toJSON(),
    delaysMs: summarize(delaysH),
    retryAfterHonoured: hintsHonoured,
  };
  const empty = summarize(createHistogram());
  const outcomesJson = outcomes.toJSON();
  const durationMs = performance.now() - t0;
  return {
    kind: 'storm',
    version: 1,
    target: o.url,
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(durationMs),
    config: { ...o, auth: o.auth ? { tokenIn: o.auth.tokenIn, jwt: o.auth.jwt ? { alg: o.auth.jwt.alg } : undefined } : undefined },
    shards: 1,
    connections: { attempts, opened, peakOpen },
    outcomes: outcomesJson,
    outcomeDetails: outcomes.detailsJSON(),
    messages: { sent: 0, received: 0, lost: 0, unmatched: 0, bytesOut: 0, bytesIn: 0, ratePerSecOut: 0, ratePerSecIn: 0 },
    latency: { rtt: empty, rttUncorrected: empty, connect: summarize(connectH) },
    saturation: judgeSaturation(
      {
        ...eld,
        cpuCoresPeak: monitor.cpuPeak,
        sendLagP99Ms: 0,
        scheduled: 0,
        sent: 0,
        fdPeak: monitor.fdPeak,
        fdLimit: limits.fdLimit,
        outcomes: outcomesJson,
      },
      o.saturation,
    ),
    preflight,
    aborted,
    series,
    storm,
  };
}
