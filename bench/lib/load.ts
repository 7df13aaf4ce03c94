/**
 * The benchmark's load generator. It drives connections through the lean client leg (the cheapest
 * client we have, so that the generator is not the bottleneck) and measures two things:
 *
 * - throughput: each connection keeps `window` messages in flight (closed loop), for `seconds`;
 * - latency: an open-loop paced schedule at `ratePerSecond` in total, with the round trip measured
 *   from each message's intended send time, so that a stall is not hidden (coordinated omission).
 *
 * Every message sent must come back: a result that lost messages is an error, not a figure.
 */
import hdr from 'hdr-histogram-js';
import { dialLeanUpstream } from '../../src/relay/lean/dial.ts';
import type { UpstreamConnection, UpstreamDialer } from '../../src/relay/upstream-types.ts';

export interface LoadSettings {
  connections: number;
  bytes: number;
  window: number;
  seconds: number;
  warmupSeconds: number;
  /** Total offered rate in the latency phase. */
  ratePerSecond: number;
  latencySeconds: number;
}

/** What the relay benchmarks run unless told otherwise: 50 connections of 64 B, 100 in flight each. */
export const DEFAULT_LOAD: Readonly<LoadSettings> = {
  connections: 50,
  bytes: 64,
  window: 100,
  seconds: 5,
  warmupSeconds: 1,
  ratePerSecond: 10_000,
  latencySeconds: 3,
};

export interface LoadResult {
  messagesPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  latencySamples: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Conn {
  leg: UpstreamConnection;
  onEcho: (data: Uint8Array) => void;
}

async function openAll(url: string, n: number, closed: { n: number; codes: string[] }, dial: UpstreamDialer): Promise<Conn[]> {
  const conns: Conn[] = [];
  for (let i = 0; i < n; i++) {
    const slot = { onEcho: (_d: Uint8Array) => {} };
    const leg = await dial(
      { url: new URL(url), headers: {}, protocols: [], timeoutMs: 5000, maxPayloadBytes: 16 * 1024 * 1024 },
      {
        onMessage: (data) => slot.onEcho(data),
        onClose: (code, reason) => {
          closed.n++;
          closed.codes.push(`${code} ${reason}`);
        },
        onDrain: () => {},
        batch: (deliver) => deliver(),
      },
    );
    conns.push({
      leg,
      set onEcho(fn: (d: Uint8Array) => void) {
        slot.onEcho = fn;
      },
      get onEcho() {
        return slot.onEcho;
      },
    });
  }
  return conns;
}

async function throughput(conns: Conn[], s: LoadSettings): Promise<number> {
  const payload = new Uint8Array(s.bytes).fill(0x61);
  let received = 0;
  let sent = 0;
  let stopped = false;
  for (const c of conns) {
    c.onEcho = () => {
      received++;
      if (!stopped) {
        c.leg.send(payload, true);
        sent++;
      }
    };
  }
  for (const c of conns) for (let w = 0; w < s.window; w++) c.leg.send(payload, true);
  sent += conns.length * s.window;
  await sleep(s.warmupSeconds * 1000);
  const from = received;
  const t0 = performance.now();
  await sleep(s.seconds * 1000);
  const measured = received - from;
  const elapsed = (performance.now() - t0) / 1000;
  stopped = true;
  const until = Date.now() + 10_000;
  while (received < sent && Date.now() < until) await sleep(10);
  if (received !== sent) throw new Error(`throughput: sent ${sent}, ${received} came back`);
  return Math.round(measured / elapsed);
}

async function latency(conns: Conn[], s: LoadSettings): Promise<{ p50: number; p99: number; p999: number; n: number }> {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const payload = Buffer.alloc(s.bytes, 0x62);
  let received = 0;
  let sent = 0;
  for (const c of conns) {
    c.onEcho = (data) => {
      received++;
      // The intended send time rides in the first 8 bytes (µs, float64).
      const intendedUs = Buffer.from(data.buffer, data.byteOffset, 8).readDoubleLE(0);
      histogram.recordValue(Math.max(1, Math.round(performance.now() * 1000 - intendedUs)));
    };
  }
  const perConnIntervalMs = (1000 * conns.length) / s.ratePerSecond;
  const start = performance.now();
  const end = start + s.latencySeconds * 1000;
  // Connection i's k-th message is due at start + (i / n + k) * interval: staggered, paced, open loop.
  const next = conns.map((_, i) => start + (i / conns.length) * perConnIntervalMs);
  while (performance.now() < end) {
    const now = performance.now();
    for (let i = 0; i < conns.length; i++) {
      while (next[i]! <= now && next[i]! < end) {
        payload.writeDoubleLE(next[i]! * 1000, 0);
        conns[i]!.leg.send(payload, true);
        sent++;
        next[i]! += perConnIntervalMs;
      }
    }
    // A 1 ms timer, not a spin: the generator shares 2 cores with the system under test. Lateness
    // of this tick is charged to the measured round trip (it counts from the intended time).
    await sleep(1);
  }
  const until = Date.now() + 10_000;
  while (received < sent && Date.now() < until) await sleep(10);
  if (received !== sent) throw new Error(`latency: sent ${sent}, ${received} came back`);
  const ms = (p: number) => Number((histogram.getValueAtPercentile(p) / 1000).toFixed(3));
  const result = { p50: ms(50), p99: ms(99), p999: ms(99.9), n: histogram.totalCount };
  histogram.destroy();
  return result;
}

/** `dial` opens the generator's connections (a lean dialer with TLS settings for wss://). */
export async function runLoad(url: string, s: LoadSettings, dial: UpstreamDialer = dialLeanUpstream): Promise<LoadResult> {
  const closed = { n: 0, codes: [] as string[] };
  const conns = await openAll(url, s.connections, closed, dial);
  try {
    const messagesPerSecond = await throughput(conns, s).catch((err: Error) => {
      throw new Error(`${err.message}; connections closed early: ${closed.codes.join(', ') || 'none'}`);
    });
    const lat = await latency(conns, s);
    return { messagesPerSecond, p50Ms: lat.p50, p99Ms: lat.p99, p999Ms: lat.p999, latencySamples: lat.n };
  } finally {
    for (const c of conns) c.leg.close(1000, 'bench done');
    const until = Date.now() + 3000;
    while (closed.n < conns.length && Date.now() < until) await sleep(10);
    for (const c of conns) c.leg.terminate();
  }
}
