import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify } from 'jose';
import { WebSocketServer, type WebSocket } from 'ws';
import type { TestServer } from './servers.ts';

/**
 * A small server enforcing the wsguard contract in miniature: origin allowlist (403), HS256 JWT
 * with aud "app" (401), per-IP connection limit (429 + Retry-After), message limit per connection
 * (drop), maxPayload (1009), and a /metrics endpoint with counters. `lax` turns every guard off so
 * the probe can be seen failing.
 */
export const GUARD_SECRET = 'probe-secret';

export async function guardedServer(o: { connLimit: number; msgLimit: number; maxPayload: number; lax?: boolean }): Promise<TestServer> {
  const counts = { connections: 0, messages: 0, bytes: 0 };
  const rejected: Record<string, number> = {};
  const key = new TextEncoder().encode(GUARD_SECRET);
  const http = createServer((req, res) => {
    if (req.url !== '/metrics') return void res.writeHead(404).end();
    const lines = ['# TYPE wsguard_connections_rejected_total counter'];
    for (const [reason, n] of Object.entries(rejected))
      lines.push(`wsguard_connections_rejected_total{route="/",reason="${reason}",decision="enforced"} ${n}`);
    res.writeHead(200, { 'Content-Type': 'text/plain' }).end(lines.join('\n') + '\n');
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: o.lax ? 100 * 1024 * 1024 : o.maxPayload });
  const open = new Set<WebSocket>();
  const reject = (socket: import('node:stream').Duplex, status: number, reason: string, extra = ''): void => {
    rejected[reason] = (rejected[reason] ?? 0) + 1;
    socket.end(`HTTP/1.1 ${status} Rejected\r\nConnection: close\r\nContent-Length: 0\r\n${extra}\r\n`);
  };
  http.on('upgrade', (req, socket, head) => {
    void (async () => {
      if (!o.lax) {
        if (req.headers.origin !== undefined && req.headers.origin !== 'https://app.example') return reject(socket, 403, 'origin');
        const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
        try {
          await jwtVerify(token, key, { algorithms: ['HS256'], audience: 'app', requiredClaims: ['exp'] });
        } catch (err) {
          void err;
          return reject(socket, 401, 'auth', 'WWW-Authenticate: Bearer error="invalid_token"\r\n');
        }
        if (open.size >= o.connLimit) return reject(socket, 429, 'conn_limit', 'Retry-After: 2\r\n');
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        counts.connections++;
        open.add(ws);
        let n = 0;
        ws.on('close', () => open.delete(ws));
        // ws reports the 1009 it sends for an oversized message as an error too; the close is the contract.
        ws.on('error', () => undefined);
        ws.on('message', (d: Buffer, isBinary) => {
          counts.messages++;
          if (!o.lax && ++n > o.msgLimit) return; // over the limit: dropped
          ws.send(d, { binary: isBinary });
        });
      });
    })();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/`,
    port,
    counts,
    close: async () => {
      for (const ws of open) ws.terminate();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
