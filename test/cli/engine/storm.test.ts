import { afterEach, describe, expect, it } from 'vitest';
import type { RunResult } from '../../../cli/engine/result.ts';
import {
  runStorm,
  STORM_DEFAULTS,
  type AttemptEvent,
  type StormHooks,
  type StormOptions,
  type StormProgress,
} from '../../../cli/engine/storm.ts';
import { DEFAULT_SATURATION_LIMITS } from '../../../cli/engine/saturation.ts';
import { renderMarkdown } from '../../../cli/report/markdown.ts';
import { renderTerminal } from '../../../cli/report/terminal.ts';
import { wsServer, type TestServer } from '../helpers/servers.ts';

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

function stormOptions(url: string, o: Partial<StormOptions>): StormOptions {
  return {
    ...STORM_DEFAULTS,
    url,
    connections: 10,
    dropAtSec: 0.4,
    // A loaded CI machine can take longer than 0.4 s to open 10 connections.
    dropAfterHeld: true,
    // An upper bound only: runUntil ends the run at the event each test waits for, so a busy
    // machine makes a test slower, never wrong.
    durationSec: 30,
    policy: { kind: 'immediate' },
    settleMs: 50,
    closeGraceMs: 300,
    handshakeTimeoutMs: 2_000,
    saturation: { ...DEFAULT_SATURATION_LIMITS, maxEventLoopP99Ms: 10_000 },
    ...o,
  };
}

/** Runs a storm until `done` holds (recovered, gave up, …), then ends it as Ctrl-C would. */
async function runUntil(o: StormOptions, done: (p: StormProgress) => boolean, hooks: StormHooks = {}): Promise<RunResult> {
  const ac = new AbortController();
  const r = await runStorm(o, {
    ...hooks,
    signal: ac.signal,
    onProgress: (p) => {
      hooks.onProgress?.(p);
      if (done(p)) ac.abort();
    },
  });
  // Reached the event, not the 30 s bound.
  expect(r.aborted?.reason).toContain('aborted by signal');
  return r;
}

const allRecovered = (p: StormProgress): boolean => p.dropped === 10 && p.recovered === 10;

/**
 * After the first connection loss, refuses the next `refusals` handshakes (by count, not by a time
 * window: on a busy machine a window can pass before any reconnect arrives), then admits again.
 */
async function overwhelmedServer(
  refusals: number,
  refusal: { status: number; headers?: Record<string, string> } | { close: number; reason: string },
): Promise<TestServer> {
  let lost = false;
  let left = refusals;
  const refuseNow = (): boolean => {
    if (!lost || left <= 0) return false;
    left--;
    return true;
  };
  const s = await wsServer({
    reject: () => ('status' in refusal && refuseNow() ? refusal : undefined),
    onConnection: (ws) => {
      if ('close' in refusal && refuseNow()) ws.close(refusal.close, refusal.reason);
      ws.on('close', () => {
        lost = true;
      });
    },
  });
  servers.push(s);
  return s;
}

describe('runStorm', () => {
  it('reconnects after a TCP reset with a fixed delay and reports time to recover', async () => {
    const s = await overwhelmedServer(0, { status: 503 });
    const events: AttemptEvent[] = [];
    const r = await runUntil(stormOptions(s.url, { policy: { kind: 'fixed', delayMs: 200 }, dropMode: 'reset' }), allRecovered, {
      onAttempt: (e) => events.push(e),
    });
    const st = r.storm!;
    expect(st.dropped).toBe(10);
    expect(st.recovered).toBe(10);
    expect(r.outcomes['dropped.reset']).toBe(10);
    expect(st.recover.min).toBeGreaterThanOrEqual(200);
    expect(st.recover.p99).toBeLessThan(700);
    expect(st.timeToPercentMs['100']).toBeGreaterThanOrEqual(200);
    expect(st.attemptsPerClient).toMatchObject({ mean: 1, max: 1 });
    expect(events).toHaveLength(10);
    for (const e of events) expect(e.actualDelayMs).toBeGreaterThanOrEqual(199);
    // Both text renderers show the same recovery row: recovered, gave up, then the percentiles.
    const row = `${st.recovered} | ${st.gaveUp}`;
    expect(renderMarkdown(r)).toContain('| recovered | gave up | p50 ms | p99 ms | max ms |');
    expect(renderMarkdown(r)).toContain(`| ${row} |`);
    expect(renderTerminal(r)).toMatch(/recovery\s+recovered\s+gave up\s+p50 ms/);
    expect(renderTerminal(r)).toMatch(new RegExp(`\\s${st.recovered}\\s+${st.gaveUp}\\s`));
  });

  it('spreads retries with exponential full jitter inside the policy bounds while the server refuses', async () => {
    // 25 refusals over 10 clients: some client is refused at least three times.
    const s = await overwhelmedServer(25, { status: 503 });
    const events: AttemptEvent[] = [];
    const r = await runUntil(
      stormOptions(s.url, { policy: { kind: 'exponential', baseMs: 50, capMs: 400, jitter: 'full' }, dropMode: 'close' }),
      allRecovered,
      { onAttempt: (e) => events.push(e) },
    );
    const st = r.storm!;
    expect(st.recovered).toBe(10);
    expect(st.rejectionsDuringRecovery['rejected.503']).toBeGreaterThan(0);
    expect(st.attemptsPerClient.max).toBeGreaterThan(1);
    expect(events.some((e) => e.attempt >= 3)).toBe(true);
    for (const e of events) {
      const [lo, hi] = e.bounds;
      expect(e.plannedDelayMs).toBeGreaterThanOrEqual(lo);
      expect(e.plannedDelayMs).toBeLessThanOrEqual(hi);
      // The wait really happened. Node truncates a timer's delay to whole ms and measures it on the
      // loop's cached ms clock, so it may fire up to ~2 ms before the fractional plan.
      expect(e.actualDelayMs).toBeGreaterThanOrEqual(e.plannedDelayMs - 2);
    }
    // And typically on time: a shared CI machine may deschedule us now and then, so the median
    // lateness is what is bounded, not every single timer.
    const lateness = events.map((e) => e.actualDelayMs - e.plannedDelayMs).sort((a, b) => a - b);
    expect(lateness[Math.floor(lateness.length / 2)]!).toBeLessThan(60);
    const first = events.filter((e) => e.attempt === 1).map((e) => e.plannedDelayMs);
    expect(new Set(first).size).toBeGreaterThan(1);
  });

  it('honours Retry-After as a floor on the policy delay when asked', async () => {
    const s = await overwhelmedServer(10, { status: 429, headers: { 'Retry-After': '1' } });
    const honour = await runUntil(stormOptions(s.url, { policy: { kind: 'fixed', delayMs: 20 }, honourRetryAfter: true }), allRecovered);
    expect(honour.storm!.rejectionsDuringRecovery['rejected.429']).toBeGreaterThan(0);
    expect(honour.storm!.retryAfterHonoured).toBeGreaterThan(0);
    expect(honour.storm!.recover.max).toBeGreaterThanOrEqual(1000);
  });

  it('reads retry_ms from a 4100 close reason as a hint', async () => {
    const s = await overwhelmedServer(10, { close: 4100, reason: '{"r":"conn_limit","retry_ms":400}' });
    const r = await runUntil(stormOptions(s.url, { policy: { kind: 'immediate' }, honourRetryAfter: true }), allRecovered);
    expect(r.storm!.rejectionsDuringRecovery['closed.4100']).toBeGreaterThan(0);
    expect(r.storm!.recovered).toBe(10);
    expect(r.storm!.recover.max).toBeGreaterThanOrEqual(400);
  });

  it('in server mode, counts what the server closes after the drop time and watches the clients return', async () => {
    const first = new Set<import('ws').WebSocket>();
    let restarted = false;
    const s = await wsServer({
      onConnection: (ws) => {
        if (!restarted) first.add(ws);
      },
    });
    servers.push(s);
    const r = await runUntil(
      stormOptions(s.url, {
        dropMode: 'server',
        dropAtSec: 0.2,
        policy: { kind: 'fixed', delayMs: 50 },
      }),
      allRecovered,
      {
        // A server restart in miniature, once the storm's drop time has come and every client is held:
        // every first connection is closed with 1012 (service restart); later ones stay.
        onProgress: (p) => {
          if (restarted || p.recovered > 0) return;
          restarted = true;
          for (const ws of first) ws.close(1012, 'restart');
        },
      },
    );
    expect(r.storm!.dropped).toBe(10);
    expect(r.storm!.recovered).toBe(10);
    expect(r.outcomes['closed.1012']).toBe(10);
    expect(r.storm!.recover.min).toBeGreaterThanOrEqual(50);
  });

  it('gives up after max attempts', async () => {
    const s = await overwhelmedServer(Infinity, { status: 503 });
    const r = await runUntil(stormOptions(s.url, { policy: { kind: 'fixed', delayMs: 30 }, maxAttempts: 3 }), (p) => p.gaveUp === 10);
    expect(r.storm!.gaveUp).toBe(10);
    expect(r.storm!.attemptsPerClient).toMatchObject({ mean: 3, max: 3 });
    expect(r.storm!.timeToPercentMs['50']).toBeNull();
  });
});
