/**
 * One load-generator process of the comparison benchmark, forked by GeneratorPool with its index g:
 * it dials from 127.0.g.1–250 through the lean client leg (the cheapest client we have) and runs the
 * tasks the parent sends over IPC, reporting its own CPU time (process.cpuUsage) with each result.
 */
import { createHmac } from 'node:crypto';
import hdr from 'hdr-histogram-js';
import { dialLeanUpstream } from '../../src/relay/lean/dial.ts';
import type { UpstreamConnection } from '../../src/relay/upstream-types.ts';

const g = Number(process.argv[2] ?? 1);
let sourceSeq = 0;
const nextSource = () => `127.0.${g}.${1 + (sourceSeq++ % 250)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Leg {
  leg: UpstreamConnection;
  onMessage: (data: Uint8Array) => void;
  closed: string | null;
}

async function open(url: string, headers: Record<string, string>, localAddress = nextSource()): Promise<Leg> {
  const slot: Leg = { leg: null as unknown as UpstreamConnection, onMessage: () => {}, closed: null };
  slot.leg = await dialLeanUpstream(
    { url: new URL(url), headers, protocols: [], timeoutMs: 10_000, maxPayloadBytes: 16 * 1024 * 1024, localAddress },
    {
      onMessage: (d) => slot.onMessage(d),
      onClose: (code) => {
        slot.closed = String(code);
      },
      onDrain: () => {},
      batch: (deliver) => deliver(),
    },
  );
  return slot;
}

/** HTTP status of a refused upgrade, from the dial's error message; 'error' when there was none. */
const statusOf = (err: unknown) => /HTTP (\d{3})/.exec(String((err as Error)?.message))?.[1] ?? 'error';

async function openMany(url: string, headers: Record<string, string>, n: number, parallel = 50): Promise<Leg[]> {
  const legs: Leg[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(parallel, n) }, async () => {
      while (next < n) {
        next++;
        legs.push(await open(url, headers));
      }
    }),
  );
  return legs;
}

interface RateTask {
  url: string;
  headers: Record<string, string>;
  connections: number;
  bytes: number;
  rate: number;
  seconds: number;
  /** Extra connections that send `floodRate` in total, far over the message rate limit (noisy neighbour). */
  floodConnections?: number;
  floodRate?: number;
  /** Sent and counted but not recorded: the first moments pay for JIT and the proxies' first buffers. */
  warmupMs?: number;
}

/** Open loop at `rate` in total, round trip counted from each message's intended send time (CO-corrected). */
async function rate(t: RateTask) {
  const legs = await openMany(t.url, t.headers, t.connections);
  const flood = t.floodConnections ? await openMany(t.url, t.headers, t.floodConnections) : [];
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  let received = 0;
  let sent = 0;
  let floodSent = 0;
  let floodReceived = 0;
  let recordFromUs = Infinity;
  for (const l of legs)
    l.onMessage = (data) => {
      received++;
      const intendedUs = Buffer.from(data.buffer, data.byteOffset, 8).readDoubleLE(0);
      if (intendedUs >= recordFromUs) histogram.recordValue(Math.max(1, Math.round(performance.now() * 1000 - intendedUs)));
    };
  for (const l of flood) l.onMessage = () => floodReceived++;
  const payload = Buffer.alloc(t.bytes, 0x62);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + (t.warmupMs ?? 0) + t.seconds * 1000;
  recordFromUs = (start + (t.warmupMs ?? 0)) * 1000;
  const interval = (1000 * legs.length) / t.rate;
  const floodInterval = flood.length ? (1000 * flood.length) / (t.floodRate ?? 1) : Infinity;
  const next = legs.map((_, i) => start + (i / legs.length) * interval);
  const floodNext = flood.map((_, i) => start + (i / flood.length) * floodInterval);
  while (performance.now() < end) {
    const now = performance.now();
    for (let i = 0; i < legs.length; i++) {
      while (next[i]! <= now && next[i]! < end) {
        if (legs[i]!.closed === null) {
          payload.writeDoubleLE(next[i]! * 1000, 0);
          legs[i]!.leg.send(payload, true);
          sent++;
        }
        next[i]! += interval;
      }
    }
    for (let i = 0; i < flood.length; i++) {
      while (floodNext[i]! <= now && floodNext[i]! < end) {
        if (flood[i]!.closed === null) {
          flood[i]!.leg.send(payload, true);
          floodSent++;
        }
        floodNext[i]! += floodInterval;
      }
    }
    // A 1 ms timer, not a spin: lateness of this tick is charged to the round trip (it counts from the intended time).
    await sleep(1);
  }
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  const until = Date.now() + 3000;
  while (received < sent && Date.now() < until) await sleep(5);
  const ms = (p: number) => (histogram.totalCount ? histogram.getValueAtPercentile(p) / 1000 : NaN);
  const result = {
    sent,
    received,
    p50: ms(50),
    p99: ms(99),
    p999: ms(99.9),
    closed: legs.filter((l) => l.closed !== null).length,
    floodSent,
    floodReceived,
    floodClosed: flood.filter((l) => l.closed !== null).length,
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs,
  };
  histogram.destroy();
  for (const l of [...legs, ...flood]) l.leg.terminate();
  return result;
}

interface UpgradeTask {
  url: string;
  headers: Record<string, string>;
  seconds: number;
  concurrency: number;
  /** Dial every attempt from this one address (the flooding client); else rotate over the range. */
  fixedSource?: string;
  /** Send a new HS256 token with this secret on every attempt (a distinct sub each), replacing any authorization header. */
  mintSecret?: string;
}

let minted = 0;

/** A compact HS256 JWS signed here with node:crypto: about 5 µs, so minting does not make the generator the bottleneck. */
function mintToken(secret: string): string {
  const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: `g${g}-${++minted}`, exp: Math.floor(Date.now() / 1000) + 3600 })}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** Fresh connection per attempt: dial, upgrade, drop. Counts outcomes by HTTP status (101 = admitted). */
async function upgrades(t: UpgradeTask) {
  const statuses: Record<string, number> = {};
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + t.seconds * 1000;
  await Promise.all(
    Array.from({ length: t.concurrency }, async () => {
      while (performance.now() < end) {
        try {
          const headers = t.mintSecret ? { ...t.headers, authorization: `Bearer ${mintToken(t.mintSecret)}` } : t.headers;
          const l = await open(t.url, headers, t.fixedSource ?? nextSource());
          l.leg.terminate();
          statuses['101'] = (statuses['101'] ?? 0) + 1;
        } catch (err) {
          const s = statusOf(err);
          statuses[s] = (statuses[s] ?? 0) + 1;
        }
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { statuses, cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - start };
}

let held: Leg[] = [];

async function hold(t: { url: string; headers: Record<string, string>; n: number }) {
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  held = await openMany(t.url, t.headers, t.n);
  const cpu = process.cpuUsage(cpu0);
  return { opened: held.length, cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - start };
}

function release() {
  for (const l of held) l.leg.terminate();
  held = [];
  return { cpuMs: 0, wallMs: 0 };
}

/** Reconnect storm: drop every held connection at once, then redial each until admitted; time to the last. */
async function storm(t: { url: string; headers: Record<string, string>; timeoutMs: number }) {
  const n = held.length;
  for (const l of held) l.leg.terminate();
  held = [];
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const deadline = start + t.timeoutMs;
  let retries = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(200, n) }, async () => {
      while (next < n && performance.now() < deadline) {
        next++;
        for (;;) {
          try {
            held.push(await open(t.url, t.headers));
            break;
          } catch {
            retries++;
            if (performance.now() > deadline) return;
            await sleep(10);
          }
        }
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { readmitted: held.length, of: n, retries, cpuMs: (cpu.user + cpu.system) / 1000, wallMs: performance.now() - start };
}

const tasks: Record<string, (t: never) => Promise<unknown> | unknown> = { rate, upgrades, hold, release, storm };

process.on('message', (m: { id: number; kind: string }) => {
  void (async () => {
    try {
      const result = await tasks[m.kind]!(m as never);
      process.send!({ id: m.id, ok: true, result });
    } catch (err) {
      process.send!({ id: m.id, ok: false, error: (err as Error).message });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
process.send!({ ready: true });
