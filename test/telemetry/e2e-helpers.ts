import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import WebSocket, { WebSocketServer, type ClientOptions } from 'ws';
import { parseConfig } from '../../src/config/load.ts';
import type { RawConfig } from '../../src/config/schema.ts';
import { startServer, type Server } from '../../src/main.ts';

export const SECRET = 'telemetry-e2e-secret-that-is-at-least-32-chars';
const KEY = new TextEncoder().encode(SECRET);

export async function sign(claims: Record<string, unknown> = {}, expiresIn = '5m'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('user-1').setIssuedAt().setExpirationTime(expiresIn).sign(KEY);
}

/** A real upstream app: echoes every message and records each handshake's headers. */
export interface EchoUpstream {
  port: number;
  url: string;
  handshakes: IncomingHttpHeaders[];
  close(): Promise<void>;
}

export async function startEchoUpstream(): Promise<EchoUpstream> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  const handshakes: IncomingHttpHeaders[] = [];
  wss.on('connection', (ws, req) => {
    handshakes.push(req.headers);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const port = (wss.address() as AddressInfo).port;
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    handshakes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

export function gatewayConfig(upstreamUrl: string, overrides: Partial<RawConfig> = {}) {
  return parseConfig({
    server: { host: '127.0.0.1', port: 0, drainWindowMs: 100 },
    routes: [{ path: '/ws/', upstream: `${upstreamUrl}/ws/` }],
    auth: { secret: SECRET },
    ...overrides,
  });
}

export type Attempt = { kind: 'open'; ws: WebSocket } | { kind: 'rejected'; status: number } | { kind: 'error'; error: Error };

export function attempt(url: string, options: ClientOptions = {}): Promise<Attempt> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...options });
    ws.on('open', () => resolve({ kind: 'open', ws }));
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ kind: 'rejected', status: res.statusCode ?? 0 });
    });
    ws.on('error', (error) => resolve({ kind: 'error', error }));
  });
}

export async function open(url: string, options: ClientOptions = {}): Promise<WebSocket> {
  const a = await attempt(url, options);
  if (a.kind !== 'open') throw new Error(`expected open, got ${a.kind === 'rejected' ? `HTTP ${a.status}` : a.error.message}`);
  return a.ws;
}

export function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve) => {
    ws.once('message', (data: Buffer) => resolve(data.toString()));
    ws.send(text);
  });
}

export function closeClient(ws: WebSocket, code = 1000): Promise<void> {
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    ws.close(code);
  });
}

/** Polls `check` until it stops throwing (the gateway's close bookkeeping runs after the client sees the close). */
export async function eventually<T>(check: () => Promise<T>, timeoutMs = 3000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

export type { Server };
export { startServer };
