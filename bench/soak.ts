/**
 * Soak run (not in CI): mixed traffic against a child gateway for `--minutes` (default 10), sampling
 * every `--every` seconds (default 10), then a verdict on whether each curve stayed flat.
 *   npm run soak -- --minutes 10 --every 10 --tolerance 0.2
 * Traffic: steady echo clients, a bounded connection storm every 30 s, a message-rate violator, bad
 * tokens, and the upstream killed and restarted every 60 s. Loopback only; every loop bounded.
 * Exit 1 when a curve is not flat or nothing was measured.
 */
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { WebSocketServer } from 'ws';
import { PROMETHEUS_NAMES, RUNTIME_PROMETHEUS_NAMES } from '../src/telemetry/names.ts';
import { signToken, TEST_SECRET } from '../test/helpers/tokens.ts';
import { closedPort } from '../test/helpers/upstream.ts';
import { fdCount, rssBytes, startChildGateway } from '../test/security/helpers/child-gateway.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}
const minutes = arg('minutes', 10);
const everySec = arg('every', 10);
const tolerance = arg('tolerance', 0.2);
const STEADY = 20;
const STORM = 100;

// --- upstream (restartable on a fixed port) ----------------------------------------------------
const upstreamPort = await closedPort();
let upstream: WebSocketServer | null = null;
async function upstreamUp(): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: upstreamPort, perMessageDeflate: false });
  await new Promise<void>((r, j) => (wss.once('listening', () => r()), wss.once('error', j)));
  wss.on('connection', (ws) => ws.on('message', (d, bin) => ws.send(d, { binary: bin })));
  upstream = wss;
}
async function upstreamDown(): Promise<void> {
  const wss = upstream;
  upstream = null;
  if (!wss) return;
  for (const c of wss.clients) c.terminate();
  await new Promise<void>((r) => wss.close(() => r()));
}
await upstreamUp();

const gw = await startChildGateway({
  server: { host: '127.0.0.1', port: 0, drainWindowMs: 0 },
  telemetry: { admin: { host: '127.0.0.1', port: 0 }, logs: { level: 'warn' } },
  routes: [{ path: '/ws/', upstream: `ws://127.0.0.1:${upstreamPort}/ws/` }],
  auth: { secret: TEST_SECRET },
  // Everything comes from 127.0.0.1: per-IP limits are raised so that only the violator trips one.
  limits: { attempts: { max: 1e9 }, concurrent: { max: 100_000 } },
  messages: { rate: { perMinute: 6000, burst: 50 } },
});
const base = `ws://127.0.0.1:${gw.port}/ws/soak`;
console.log(`soak: ${minutes} min, sample every ${everySec} s, gateway pid ${gw.pid} port ${gw.port}, upstream port ${upstreamPort}`);

// --- traffic -----------------------------------------------------------------------------------
let handshakeMs: number[] = [];
const counts = { opened: 0, echoed: 0, rejected: 0, closes: new Map<number, number>(), errors: 0 };
let stopping = false;

function connect(url: string, timeoutMs = 5000): Promise<WebSocket | null> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let rejectedHere = false;
    const timer = setTimeout(() => (ws.terminate(), resolve(null)), timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      handshakeMs.push(performance.now() - t0);
      counts.opened++;
      resolve(ws);
    });
    ws.once('unexpected-response', (_q, res) => {
      rejectedHere = true;
      clearTimeout(timer);
      counts.rejected++;
      res.resume();
      ws.terminate();
      resolve(null);
    });
    ws.once('error', () => {
      clearTimeout(timer);
      // After an HTTP rejection ws also reports an error: count only failures that were not rejections.
      if (!rejectedHere) counts.errors++;
      resolve(null);
    });
    ws.on('close', (code) => counts.closes.set(code, (counts.closes.get(code) ?? 0) + 1));
  });
}

/** A steady client: ~10 messages a second, reconnecting (after 200 ms) whenever it is closed. */
async function steady(): Promise<void> {
  while (!stopping) {
    const ws = await connect(`${base}?access_token=${await signToken({}, 3600)}`);
    if (!ws) {
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    ws.on('message', () => counts.echoed++);
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => (stopping ? ws.close() : ws.readyState === WebSocket.OPEN && ws.send('x'.repeat(64))), 100);
      ws.once('close', () => (clearInterval(timer), resolve()));
    });
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function storm(): Promise<void> {
  const token = await signToken({}, 600);
  const sockets = await Promise.all(Array.from({ length: STORM }, () => connect(`${base}?access_token=${token}`)));
  for (const ws of sockets) ws?.close();
}

async function violator(): Promise<void> {
  const ws = await connect(`${base}?access_token=${await signToken({}, 600)}`);
  if (!ws) return;
  // 200 back to back against a burst of 50: the gateway closes with 4129.
  for (let i = 0; i < 200 && ws.readyState === WebSocket.OPEN; i++) ws.send('v');
  await new Promise<void>((r) => {
    const timer = setTimeout(() => (ws.terminate(), r()), 5000);
    ws.once('close', () => (clearTimeout(timer), r()));
  });
}

async function badTokens(): Promise<void> {
  const expired = await signToken({}, -10);
  await Promise.all(['garbage', expired, `${expired.slice(0, -3)}abc`].map((t) => connect(`${base}?access_token=${t}`)));
}

// --- sampling ----------------------------------------------------------------------------------
interface Sample {
  t: number;
  rssMiB: number;
  fds: number;
  loopP99Ms: number;
  handshakeP99Ms: number;
  active: number;
}
const samples: Sample[] = [];

async function scrape(): Promise<{ loopP99Ms: number; active: number }> {
  const text = await (await fetch(gw.metricsUrl, { signal: AbortSignal.timeout(3000) })).text();
  const value = (name: string) => {
    const m = text.match(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)`, 'm'));
    return m ? Number(m[1]) : NaN;
  };
  const activeTotal = [...text.matchAll(new RegExp(`^${PROMETHEUS_NAMES.connectionsActive}(?:\\{[^}]*\\})? ([0-9.eE+-]+)`, 'gm'))].reduce(
    (s, m) => s + Number(m[1]),
    0,
  );
  // The runtime gauge is in seconds.
  return { loopP99Ms: value(RUNTIME_PROMETHEUS_NAMES.eventLoopDelayP99) * 1000, active: activeTotal };
}

function p99(values: number[]): number {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
}

async function sample(t: number): Promise<void> {
  if (gw.child.exitCode !== null) return;
  let m = { loopP99Ms: NaN, active: NaN };
  try {
    m = await scrape();
  } catch (err) {
    console.log(`scrape failed: ${(err as Error).message}`);
  }
  const s: Sample = {
    t,
    rssMiB: rssBytes(gw.pid) / 2 ** 20,
    fds: fdCount(gw.pid),
    loopP99Ms: m.loopP99Ms,
    handshakeP99Ms: p99(handshakeMs),
    active: m.active,
  };
  handshakeMs = [];
  samples.push(s);
  console.log(
    `${String(Math.round(t)).padStart(6)} s  rss ${s.rssMiB.toFixed(1).padStart(7)} MiB  fds ${String(s.fds).padStart(5)}  loop p99 ${s.loopP99Ms.toFixed(1).padStart(6)} ms  handshake p99 ${s.handshakeP99Ms.toFixed(1).padStart(7)} ms  active ${s.active}`,
  );
}

// --- run ----------------------------------------------------------------------------------------
const started = Date.now();
const end = started + minutes * 60_000;
const steadyDone = Promise.all(Array.from({ length: STEADY }, () => steady()));
let tick = 0;
while (Date.now() < end && gw.child.exitCode === null) {
  await new Promise((r) => setTimeout(r, Math.min(everySec * 1000, Math.max(0, end - Date.now()))));
  tick++;
  const elapsed = (Date.now() - started) / 1000;
  const jobs: Promise<unknown>[] = [badTokens(), violator()];
  if (tick % Math.max(1, Math.round(30 / everySec)) === 0) jobs.push(storm());
  if (tick % Math.max(1, Math.round(60 / everySec)) === 0)
    jobs.push(
      upstreamDown()
        .then(() => new Promise((r) => setTimeout(r, 1000)))
        .then(upstreamUp),
    );
  await Promise.all(jobs);
  await sample(elapsed);
}
stopping = true;
await Promise.race([steadyDone, new Promise((r) => setTimeout(r, 5000))]);
const crashed = gw.child.exitCode !== null || gw.child.signalCode !== null;

// --- verdict ------------------------------------------------------------------------------------
function median(v: number[]): number {
  const s = v.filter(Number.isFinite).sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)]! : NaN;
}
// Warm-up: the first sixth of the samples (JIT, pools, first storm) is not judged.
const judged = samples.slice(Math.floor(samples.length / 6));
const third = Math.max(1, Math.floor(judged.length / 3));
// Absolute slack keeps tiny numbers (2 ms of loop delay, a few fds) from failing on noise.
const curves: Array<[keyof Sample, number]> = [
  ['rssMiB', 8],
  ['fds', 10],
  ['loopP99Ms', 5],
  ['handshakeP99Ms', 10],
];
let flat = judged.length >= 3;
console.log(
  `\nsamples ${samples.length} (judged ${judged.length}); opened ${counts.opened}, echoed ${counts.echoed}, rejected ${counts.rejected}, errors ${counts.errors}`,
);
console.log(
  `client closes: ${[...counts.closes]
    .sort((a, b) => a[0] - b[0])
    .map(([c, n]) => `${c}×${n}`)
    .join(' ')}`,
);
for (const [key, slack] of curves) {
  const first = median(judged.slice(0, third).map((s) => s[key]));
  const last = median(judged.slice(-third).map((s) => s[key]));
  const ok = Number.isFinite(first) && Number.isFinite(last) && last <= first * (1 + tolerance) + slack;
  if (!ok) flat = false;
  console.log(
    `${key.padEnd(15)} first-third median ${first.toFixed(1).padStart(8)}  last-third median ${last.toFixed(1).padStart(8)}  ${ok ? 'flat' : 'NOT FLAT'}`,
  );
}
if (crashed) console.log(`gateway exited during the soak\n${gw.stderr().slice(-3000)}`);
if (counts.echoed === 0) flat = false;
await gw.stop();
await upstreamDown();
console.log(`verdict: ${flat && !crashed ? 'flat' : 'FAIL'}`);
process.exit(flat && !crashed ? 0 : 1);
