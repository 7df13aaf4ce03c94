/**
 * One load-generator process of the comparison benchmark, forked by GeneratorPool with its index g:
 * it dials from 127.0.g.1–250 and runs the tasks the parent sends over IPC, reporting its own CPU time
 * (process.cpuUsage) with each result. Connections that stay open (rate, hold, storm) go through the
 * lean client leg; upgrade churn (upgrades) uses a raw attempt on Node's TCP handles that only reads
 * the status (attempt()).
 */
import { createHmac } from 'node:crypto';
import hdr from 'hdr-histogram-js';
import { dialLeanUpstream } from '../../src/relay/lean/dial.ts';
import { checkUpgrade, MAX_RESPONSE_HEAD_BYTES, newKey, parseResponseHead, requestHead } from '../../src/relay/lean/handshake.ts';
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
  /**
   * Attempts per second in total, started on a schedule (at most `concurrency` in flight: a slow answer
   * delays the next attempts, which then start at once); without it, each starts when one completes.
   */
  rate?: number;
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

/** An attempt unanswered this long counts as 'timeout' (and frees its slot). */
const ATTEMPT_TIMEOUT_MS = 10_000;
/** The outcome of a complete 101 head: admitted only when it passes the lean leg's own checks (Sec-WebSocket-Accept among them). */
function check101(head: string, key: string): string {
  const parsed = parseResponseHead(head);
  return parsed && !('error' in checkUpgrade(parsed, key, [])) ? '101' : 'bad-101';
}

/**
 * Node's own TCP handles (what net.Socket wraps), for upgrade churn: one attempt is a handle, a bind,
 * a connect, one write, reads into one shared buffer and a reset, without a Socket's streams, event
 * emitter and state objects. Measured against wsguard's 429 path (bench/compare/flood-cpu.ts, one
 * generator, 32 in flight): 61–66 µs of generator CPU per attempt, where net.connect (onread into a
 * shared buffer, destroy) took 86–93 µs and the lean client leg 117–135 µs; with net.connect the
 * generator ran at 92% CPU and wsguard at 82–89%, with these handles wsguard reached 100% first.
 * About half the rest is kernel work that loopback charges to the caller (the server's side of the
 * connect, write and close runs in our syscalls). process.binding is deprecated (DEP0111, a warning
 * only with --pending-deprecation); if a Node release drops these bindings the generator fails at
 * start, loudly, and net.connect is the fallback.
 */
interface TcpHandle {
  bind(address: string, port: number): number;
  connect(req: object, address: string, port: number): number;
  setNoDelay(on: boolean): number;
  readStart(): number;
  useUserBuffer(buffer: Uint8Array): void;
  writeBuffer(req: object, data: Uint8Array): number;
  writeLatin1String(req: object, data: string): number;
  close(callback: () => void): void;
  /** Close with RST (SO_LINGER 0): what net.Socket.resetAndDestroy() uses. */
  reset(callback: () => void): number;
  onread: (arrayBuffer: ArrayBuffer | undefined) => void;
}
const binding = (name: string) => (process as unknown as { binding(name: string): Record<string, unknown> }).binding(name);
const tcpWrap = binding('tcp_wrap') as {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => { oncomplete: (status: number) => void; address: string; port: number };
  constants: { SOCKET: number };
};
const streamWrap = binding('stream_wrap') as {
  WriteWrap: new () => { handle: TcpHandle; oncomplete: () => void; async: boolean };
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
};
const noop = () => {};

/**
 * One upgrade attempt on a fresh TCP connection: write the request, read until the status line is
 * complete (for a 101, the whole head, to check its Sec-WebSocket-Accept), close the socket.
 * Resolves with the status ('101', '429', …), 'bad-101', 'malformed', 'error' (socket error or close
 * before a status line) or 'timeout'.
 */
function attempt(host: string, port: number, localAddress: string, request: Buffer | string, key: string): Promise<string> {
  return new Promise((resolve) => {
    let pending: Buffer | null = null;
    let done = false;
    const handle = new tcpWrap.TCP(tcpWrap.constants.SOCKET);
    const timer = setTimeout(() => finish('timeout'), ATTEMPT_TIMEOUT_MS);
    const finish = (outcome: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      // Reset, not FIN: churn at 10k+/s from a few source addresses on one host otherwise fills the
      // kernel's TIME_WAIT table (131,072 here, `ss -s`), and every later row ran slower for every system
      // (the rejection row: 8,123 429s/s with the table nearly empty, 5,178/s after the handshake rows
      // of five systems had filled it). With a reset neither side keeps TIME_WAIT.
      if (handle.reset(noop) !== 0) handle.close(noop);
      resolve(outcome);
    };
    const onBytes = (chunk: Buffer) => {
      const bytes: Buffer = pending ? Buffer.concat([pending, chunk]) : chunk;
      pending = null;
      const lineEnd = bytes.indexOf('\r\n');
      if (lineEnd >= 0) {
        const status = parseResponseHead(bytes.toString('latin1', 0, lineEnd))?.status;
        if (status === undefined) return finish('malformed');
        if (status !== 101) return finish(String(status));
        const headEnd = bytes.indexOf('\r\n\r\n');
        if (headEnd >= 0) return finish(check101(bytes.toString('latin1', 0, headEnd), key));
      }
      if (bytes.length > MAX_RESPONSE_HEAD_BYTES) return finish('malformed');
      // The read buffer is reused by the next read: keep a copy of a partial head.
      pending = Buffer.from(bytes);
    };
    // With a user buffer the bytes are at its start; the count (or a negative errno, EOF included) is in streamBaseState.
    handle.onread = () => {
      const n = streamWrap.streamBaseState[streamWrap.kReadBytesOrError]!;
      if (done || n === 0) return;
      if (n < 0) return finish('error');
      onBytes(readBuffer.subarray(0, n));
    };
    handle.useUserBuffer(readBuffer);
    if (handle.bind(localAddress, 0) !== 0) return finish('error');
    const connect = new tcpWrap.TCPConnectWrap();
    connect.address = host;
    connect.port = port;
    connect.oncomplete = (status) => {
      if (done) return;
      if (status < 0) return finish('error');
      handle.setNoDelay(true);
      handle.readStart();
      const write = new streamWrap.WriteWrap();
      write.handle = handle;
      write.oncomplete = noop;
      write.async = false;
      if ((typeof request === 'string' ? handle.writeLatin1String(write, request) : handle.writeBuffer(write, request)) !== 0)
        finish('error');
    };
    if (handle.connect(connect, host, port) !== 0) finish('error');
  });
}

/** Shared by every attempt's reads: each read is parsed before the next can land in it. */
const readBuffer = Buffer.allocUnsafe(64 * 1024);

/** Fresh connection per attempt: connect, upgrade request, status, drop. Counts outcomes by HTTP status (101 = admitted). */
async function upgrades(t: UpgradeTask) {
  const url = new URL(t.url);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? 80 : Number(url.port);
  if (url.protocol !== 'ws:') throw new Error(`upgrades: only ws:// URLs (got ${url.protocol})`);
  // One key per task: the attempts only have to be valid upgrades, and each 101 is still checked against it.
  const key = newKey();
  const headers = t.mintSecret
    ? Object.fromEntries(Object.entries(t.headers).filter(([k]) => k.toLowerCase() !== 'authorization'))
    : t.headers;
  const request = (extra: Record<string, string> = {}) => requestHead(url, key, { protocols: [], headers: { ...headers, ...extra } });
  const fixedRequest = t.mintSecret ? null : Buffer.from(request(), 'latin1');
  const statuses: Record<string, number> = {};
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + t.seconds * 1000;
  let scheduled = 0;
  await Promise.all(
    Array.from({ length: t.concurrency }, async () => {
      while (performance.now() < end) {
        if (t.rate) {
          const due = start + (1000 * scheduled++) / t.rate;
          if (due >= end) break;
          const wait = due - performance.now();
          if (wait > 0) await sleep(wait);
        }
        const bytes = fixedRequest ?? request({ authorization: `Bearer ${mintToken(t.mintSecret!)}` });
        const s = await attempt(host, port, t.fixedSource ?? nextSource(), bytes, key);
        statuses[s] = (statuses[s] ?? 0) + 1;
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return { statuses, cpuMs: (cpu.user + cpu.system) / 1000, systemMs: cpu.system / 1000, wallMs: performance.now() - start };
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
