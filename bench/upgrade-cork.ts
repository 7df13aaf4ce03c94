/**
 * The post-101 drop on bare uWS, without wsguard (not a speed benchmark): a uWS app whose upgrade
 * handler answers on a later macrotask, as an async upgrade does, and a client that opens N
 * connections one after another and counts those closed right after their open.
 *
 *   GLIBC_TUNABLES=glibc.malloc.tcache_count=0:glibc.malloc.perturb=16 npx tsx bench/upgrade-cork.ts cork 20
 *
 * Modes: `cork` runs `res.upgrade` inside `res.cork` (what uWS documents for async upgrades),
 * `plain` runs it outside any cork (uWS.js prints a warning per upgrade on stderr), `anchor` runs it
 * inside the cork of a held request (src/gateway/cork-anchor.ts, what wsguard does). The glibc
 * settings fill freed memory with 0x10, which is what uWS 20.30's `res.cork` misreads as
 * HTTP_CONNECTION_CLOSE after an in-place upgrade; without them the drop is rare. Exit 1 when a
 * connection was dropped. Loopback only.
 */
import pino from 'pino';
import WebSocket from 'ws';
import { CorkAnchor } from '../src/gateway/cork-anchor.ts';
import { uws } from '../src/gateway/uws.ts';

const mode = process.argv[2] ?? 'cork';
const n = Number(process.argv[3] ?? 20);
if (!['cork', 'plain', 'anchor'].includes(mode) || !Number.isInteger(n) || n < 1 || n > 10_000) {
  process.stderr.write('usage: upgrade-cork.ts cork|plain|anchor [connections 1..10000]\n');
  process.exit(2);
}

const anchor = mode === 'anchor' ? await CorkAnchor.start(pino({ level: 'warn' })) : null;
let serverCloses1006 = 0;
const app = uws.App();
app.ws('/*', {
  idleTimeout: 120,
  upgrade: (res, req, context) => {
    const key = req.getHeader('sec-websocket-key');
    let aborted = false;
    res.onAborted(() => (aborted = true));
    setImmediate(() => {
      if (aborted) return;
      const upgrade = (): void => res.upgrade({}, key, '', '', context);
      if (mode === 'cork') res.cork(upgrade);
      else if (anchor) anchor.run(upgrade);
      else upgrade();
    });
  },
  close: (_ws, code) => {
    if (code === 1006) serverCloses1006++;
  },
});
const listenSocket = await new Promise<NonNullable<Parameters<Parameters<typeof app.listen>[2]>[0]>>((resolve, reject) =>
  app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('could not listen on 127.0.0.1')))),
);
const port = uws.us_socket_local_port(listenSocket);

let dropped = 0;
const clients: WebSocket[] = [];
for (let i = 0; i < n; i++) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  // A round trip: a ping answered by uWS proves the connection survived its open.
  const survived = await new Promise<boolean>((resolve) => {
    ws.once('pong', () => resolve(true));
    ws.once('close', () => resolve(false));
    ws.ping();
  });
  if (!survived) dropped++;
  clients.push(ws);
}
process.stdout.write(`${mode}: ${n} connections, dropped right after open ${dropped}, server saw 1006 ${serverCloses1006}\n`);
for (const c of clients) c.terminate();
uws.us_listen_socket_close(listenSocket);
anchor?.close();
process.exit(dropped > 0 ? 1 : 0);
