import type { IncomingHttpHeaders } from 'node:http';
import WebSocket, { type ClientOptions } from 'ws';

export type Attempt =
  | { kind: 'open'; ws: WebSocket; protocol: string; headers: IncomingHttpHeaders }
  | { kind: 'rejected'; status: number; headers: IncomingHttpHeaders; body: string }
  | { kind: 'error'; error: Error };

/** Opens a client and reports what the handshake came to: open, an HTTP rejection (with body), or an error. */
export function attempt(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<Attempt> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...options });
    let headers: IncomingHttpHeaders = {};
    ws.on('upgrade', (res) => {
      headers = res.headers;
    });
    ws.on('open', () => resolve({ kind: 'open', ws, protocol: ws.protocol, headers }));
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ kind: 'rejected', status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', () => resolve({ kind: 'rejected', status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.on('error', (error) => resolve({ kind: 'error', error }));
  });
}

/** The handshake's HTTP status: 101 when it opened (the socket is then closed), -1 on a socket error. */
export async function handshakeStatus(url: string): Promise<number> {
  const a = await attempt(url);
  if (a.kind === 'open') {
    a.ws.close();
    return 101;
  }
  return a.kind === 'rejected' ? a.status : -1;
}

export async function open(url: string, protocols: string[] = [], options: ClientOptions = {}): Promise<WebSocket> {
  const a = await attempt(url, protocols, options);
  if (a.kind !== 'open') throw new Error(`expected open, got ${a.kind === 'rejected' ? `HTTP ${a.status} ${a.body}` : a.error.message}`);
  return a.ws;
}

export function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })));
}

export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) return resolve({ code: -1, reason: 'already closed' });
    ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }));
  });
}

export function rejected(a: Attempt): Extract<Attempt, { kind: 'rejected' }> {
  if (a.kind !== 'rejected') throw new Error(`expected an HTTP rejection, got ${a.kind === 'open' ? 'an open socket' : a.error.message}`);
  return a;
}
