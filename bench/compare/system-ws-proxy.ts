/**
 * The naive baseline: a plain Node proxy, `ws` server to `ws` client, each message forwarded as it
 * comes (messages from the client before the upstream leg opens are queued). Runs as its own process.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { killChild, type System } from './base.ts';

const ENTRY = fileURLToPath(import.meta.url);

async function serve(upstreamPort: number): Promise<void> {
  const { WebSocket, WebSocketServer } = await import('ws');
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
  server.on('connection', (client, req) => {
    const up = new WebSocket(`ws://127.0.0.1:${upstreamPort}${req.url ?? '/'}`, { perMessageDeflate: false });
    const queued: Array<[Buffer, boolean]> = [];
    up.on('open', () => {
      for (const [d, b] of queued) up.send(d, { binary: b });
      queued.length = 0;
    });
    client.on('message', (d: Buffer, isBinary) =>
      up.readyState === WebSocket.OPEN ? up.send(d, { binary: isBinary }) : queued.push([d, isBinary]),
    );
    up.on('message', (d: Buffer, isBinary) => client.readyState === WebSocket.OPEN && client.send(d, { binary: isBinary }));
    const end = () => {
      client.terminate();
      up.terminate();
    };
    client.on('close', end);
    up.on('close', end);
    client.on('error', end);
    up.on('error', end);
  });
  server.on('listening', () => process.send?.({ port: (server.address() as { port: number }).port }));
  process.on('disconnect', () => process.exit(0));
}

export const wsProxy: System = {
  name: 'ws-proxy',
  enforcesLimits: false,
  start: async (upstreamPort) => {
    const child = fork(ENTRY, ['--serve', String(upstreamPort)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m) => resolve((m as { port: number }).port));
      child.once('exit', (code) => reject(new Error(`ws-proxy exited with ${code}`)));
    });
    return { url: `ws://127.0.0.1:${port}`, pid: child.pid, stop: () => killChild(child) };
  },
};

if (process.argv[1] === ENTRY && process.argv[2] === '--serve') await serve(Number(process.argv[3]));
