/**
 * A hostile upstream that floods the gateway with pings and never reads: how much memory does the
 * gateway hold, and does it end the connection? Loopback only, bounded in count and time.
 *
 *   npx tsx bench/ping-flood.ts [--seconds 12] [--max-pings 20000000] [--client lean|ws] [--set key=value ...]
 *
 * wsguard runs as a child process (bench/lib/gateway-child.ts) so that its RSS is read from
 * /proc/<pid>/status alone. One client connects through it to a raw TCP "upstream" in this process
 * that answers the upgrade, stops reading, and writes 125-byte pings as fast as the gateway takes
 * them. Printed: the gateway's RSS before, at its peak and one second after the flood, the pings
 * written, and what the client was told.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { startGatewayChild } from './lib/gateway-child.ts';

interface Settings {
  seconds: number;
  maxPings: number;
  client: string;
  extra: string[];
}

function parseArgs(argv: string[]): Settings {
  const s: Settings = { seconds: 12, maxPings: 20_000_000, client: 'lean', extra: [] };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i]!.replace(/^--/, '');
    const value = argv[i + 1] ?? '';
    if (name === 'seconds') s.seconds = Number(value);
    else if (name === 'max-pings') s.maxPings = Number(value);
    else if (name === 'client') s.client = value;
    else if (name === 'set') s.extra.push(value);
    else throw new Error(`unknown option --${name}`);
  }
  if (!(s.seconds > 0 && s.seconds <= 120)) throw new Error('--seconds must be in (0, 120]');
  if (!(s.maxPings > 0)) throw new Error('--max-pings must be positive');
  return s;
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

const PING_PAYLOAD = 125; // §5.5: the largest control frame payload
const PINGS_PER_BLOCK = 512;

function pingBlock(): Buffer {
  const frame = Buffer.alloc(2 + PING_PAYLOAD, 0x70);
  frame[0] = 0x89; // FIN + ping
  frame[1] = PING_PAYLOAD;
  return Buffer.concat(Array.from({ length: PINGS_PER_BLOCK }, () => frame));
}

interface Flood {
  port: number;
  pings(): number;
  done: Promise<void>;
  close(): void;
}

function startHostileUpstream(settings: Settings): Promise<Flood> {
  const block = pingBlock();
  let written = 0;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => (finish = resolve));
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.on('close', () => finish());
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.removeListener('data', onData);
      // Never read again: the gateway's pongs pile up on its side.
      socket.pause();
      const key = /sec-websocket-key:\s*(\S+)/i.exec(head)?.[1] ?? '';
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
      );
      const until = Date.now() + settings.seconds * 1000;
      const pump = () => {
        while (!socket.destroyed && written < settings.maxPings && Date.now() < until) {
          written += PINGS_PER_BLOCK;
          if (!socket.write(block)) {
            socket.once('drain', pump);
            return;
          }
        }
        finish();
      };
      pump();
    };
    socket.on('data', onData);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () =>
      resolve({
        port: (server.address() as net.AddressInfo).port,
        pings: () => written,
        done,
        close: () => {
          for (const s of sockets) s.destroy();
          server.close();
        },
      }),
    );
  });
}

async function main(): Promise<void> {
  const settings = parseArgs(process.argv.slice(2));
  const upstream = await startHostileUpstream(settings);
  const gateway = await startGatewayChild(upstream.port, [`upstream.client=${settings.client}`, ...settings.extra]);
  const pid = gateway.child.pid!;
  try {
    const before = rssMb(pid);
    let peak = before;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 100);
    const started = Date.now();
    const ws = new WebSocket(`ws://127.0.0.1:${gateway.port}/`, { perMessageDeflate: false });
    let closedAt: { code: number; reason: string; afterMs: number } | null = null;
    ws.on('close', (code, reason) => (closedAt = { code, reason: reason.toString(), afterMs: Date.now() - started }));
    ws.on('error', () => {});
    await upstream.done;
    clearInterval(sampler);
    peak = Math.max(peak, rssMb(pid));
    const floodMs = Date.now() - started;
    // Give the gateway a second to drop what it held for the flood, then read RSS again.
    await new Promise((r) => setTimeout(r, 1000));
    const after = rssMb(pid);
    ws.terminate();
    const result = {
      bench: 'ping-flood',
      client_leg: settings.client,
      flood_ms: floodMs,
      pings_written: upstream.pings(),
      rss_before_mb: before,
      rss_peak_mb: peak,
      rss_after_mb: after,
      client_close: closedAt,
    };
    console.log(JSON.stringify(result));
  } finally {
    upstream.close();
    await gateway.stop();
  }
}

await main();
