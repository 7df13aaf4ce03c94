/**
 * Handshake admission rate with the Redis limit store against the memory store, in one run, in
 * alternating rounds (the ratio is the figure to trust on a shared machine), and the Redis commands
 * each handshake costs (from INFO commandstats deltas; on the handshake path every command is its
 * own round trip, the renewal pipeline is one round trip for all live leases).
 *
 * Processes: a uWS echo upstream, two `wsguard serve` (limits.store=memory and =redis), one
 * redis-server (started here on a free loopback port, temp dir), and this process as the client:
 * `--concurrency` loops, each writing a raw HTTP upgrade on a fresh TCP connection, reading the 101
 * and closing, so that the client stays cheap and every handshake passes the attempt and the
 * concurrent-connection policies (acquire on open, release on close).
 *
 * Usage: npx tsx bench/limit-store-redis.ts [--rounds 3] [--seconds 3] [--concurrency 32] [--deadline-ms 50]
 * (a larger deadline separates the store's cost from deadline misses on an over-committed machine)
 */
import { connect } from 'node:net';
import { startEchoChild } from './lib/echo-server.ts';
import { startGatewayChild } from './lib/gateway-child.ts';
import { startRedis } from '../test/scale/redis-server.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}
const rounds = arg('rounds', 3);
const seconds = arg('seconds', 3);
const concurrency = arg('concurrency', 32);
const deadlineMs = arg('deadline-ms', 50);

const REQUEST = (port: number) =>
  `GET /x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;

let firstFailure: string | undefined;

/** true: 101; 'unavailable': 503 (store_unavailable: a Redis call missed its deadline); false: anything else. */
function handshake(port: number): Promise<boolean | 'unavailable'> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let head = '';
    s.setNoDelay(true);
    s.once('connect', () => s.write(REQUEST(port)));
    s.on('data', (c: Buffer) => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.destroy();
      const ok = head.startsWith('HTTP/1.1 101');
      if (head.startsWith('HTTP/1.1 503')) return resolve('unavailable');
      if (!ok) firstFailure ??= head.split('\r\n\r\n')[0]! + ' ' + head.split('\r\n\r\n')[1]?.slice(0, 200);
      resolve(ok);
    });
    s.once('error', (err) => {
      firstFailure ??= err.message;
      resolve(false);
    });
  });
}

async function drive(port: number, ms: number): Promise<{ ok: number; failed: number; unavailable: number }> {
  const end = performance.now() + ms;
  let ok = 0;
  let failed = 0;
  let unavailable = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const r = await handshake(port);
        if (r === true) ok++;
        else if (r === 'unavailable') unavailable++;
        else failed++;
      }
    }),
  );
  return { ok, failed, unavailable };
}

const redis = await startRedis();
const echo = await startEchoChild();
// Every handshake comes from 127.0.0.1: raise the per-client pending cap above the client's concurrency.
const common = [`server.maxPendingPerClient=${concurrency * 2}`];
const memory = await startGatewayChild(echo.port, [...common, 'limits.store=memory']);
const shared = await startGatewayChild(echo.port, [
  ...common,
  'limits.store=redis',
  `limits.redis.url=${redis.url}`,
  `limits.redis.deadlineMs=${deadlineMs}`,
]);

async function commandStats(): Promise<Map<string, number>> {
  const text = await redis.admin.info('commandstats');
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    const x = line.match(/^cmdstat_([^:]+):calls=(\d+)/);
    if (x && x[1] !== 'info') m.set(x[1]!, Number(x[2]));
  }
  return m;
}

try {
  await drive(memory.port, 500);
  await drive(shared.port, 500);
  const rows: Array<{ round: number; memory: number; redis: number; perHandshake: Record<string, number> }> = [];
  for (let round = 1; round <= rounds; round++) {
    const m = await drive(memory.port, seconds * 1000);
    const before = await commandStats();
    const r = await drive(shared.port, seconds * 1000);
    // Closes are released asynchronously after the client's FIN: let the last ZREMs land.
    await new Promise((res) => setTimeout(res, 300));
    const after = await commandStats();
    if (m.failed || r.failed) throw new Error(`failed handshakes: memory ${m.failed}, redis ${r.failed}; first: ${firstFailure}`);
    const perHandshake: Record<string, number> = {};
    for (const [cmd, calls] of after) {
      const d = calls - (before.get(cmd) ?? 0);
      if (d > 0) perHandshake[cmd] = Number((d / r.ok).toFixed(3));
    }
    // Redis 7 counts the commands a script runs in commandstats too; the round trips are the top-level ones.
    const trips = ['evalsha', 'eval', 'zrem', 'script'].reduce((n, c) => n + (perHandshake[c] ?? 0), 0);
    perHandshake.roundTrips = Number(trips.toFixed(3));
    rows.push({ round, memory: m.ok / seconds, redis: r.ok / seconds, perHandshake });
    console.log(
      `round ${round}: memory ${Math.round(m.ok / seconds)}/s, redis ${Math.round(r.ok / seconds)}/s (${r.unavailable} × 503 store_unavailable), ratio ${(r.ok / m.ok).toFixed(3)}, redis commands per handshake ${JSON.stringify(perHandshake)}`,
    );
  }
  const ratios = rows.map((x) => x.redis / x.memory).sort((a, b) => a - b);
  console.log(
    `median ratio redis/memory: ${ratios[Math.floor(ratios.length / 2)]!.toFixed(3)} (concurrency ${concurrency}, ${seconds} s rounds, deadline ${deadlineMs} ms)`,
  );
} finally {
  await memory.stop();
  await shared.stop();
  echo.child.kill('SIGKILL');
  await redis.stop();
}
