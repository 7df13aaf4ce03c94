import type { IncomingMessage } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

export interface SeenHandshake {
  url: string;
  headers: IncomingMessage['headers'];
  protocol: string;
}

export interface TestUpstream {
  port: number;
  url: string;
  handshakes: SeenHandshake[];
  sockets: WebSocket[];
  /** Resolves with the next upstream-side socket. */
  nextSocket(): Promise<WebSocket>;
  close(): Promise<void>;
}

/**
 * A real `ws` server playing the app: echoes every message (same opcode) and records what each
 * handshake carried, so tests can assert what the gateway forwarded. `select` picks a subprotocol.
 */
export async function startEchoUpstream(
  options: { select?: (offered: Set<string>) => string | false; echo?: boolean } = {},
): Promise<TestUpstream> {
  const handshakes: SeenHandshake[] = [];
  const sockets: WebSocket[] = [];
  const waiters: Array<(ws: WebSocket) => void> = [];
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    perMessageDeflate: false,
    maxPayload: 64 * 1024 * 1024,
    handleProtocols: (offered) => (options.select ? options.select(offered) : (offered.values().next().value ?? false)),
  });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', (ws, req) => {
    handshakes.push({ url: req.url ?? '', headers: req.headers, protocol: ws.protocol });
    sockets.push(ws);
    if (options.echo !== false) ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    waiters.shift()?.(ws);
  });
  const port = (wss.address() as { port: number }).port;
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    handshakes,
    sockets,
    nextSocket: () => new Promise((r) => waiters.push(r)),
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** A TCP server that accepts and never answers (an upstream that hangs in its handshake). */
export async function startSilentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A port with nothing listening on it (bound then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}
