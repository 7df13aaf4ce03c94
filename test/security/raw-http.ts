import { createServer, type Server, type Socket } from 'node:net';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { createServer as createHttpServer } from 'node:http';

export interface RawResponse {
  status: number;
  head: string;
  body: string;
}

export interface RawExchange {
  /** The client's socket: destroy it to abort the handshake. */
  socket: net.Socket;
  response: Promise<RawResponse>;
}

/**
 * Writes one HTTP/1.1 request line + headers on a plain socket and reads the answer. A `ws` client
 * normalises the path (WHATWG URL) before sending it, so attacks on the path need raw bytes.
 * The response resolves at the end of the head for a 101, else when the server closes; it rejects
 * past `timeoutMs` or when the socket is destroyed by the caller.
 */
export function openRawRequest(
  port: number,
  target: string,
  options: { upgrade?: boolean; headers?: string[]; timeoutMs?: number } = {},
): RawExchange {
  const lines = [`GET ${target} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
  if (options.upgrade !== false) {
    lines.push('Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13');
  }
  lines.push(...(options.headers ?? []));
  const socket = net.connect(port, '127.0.0.1', () => socket.write(Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8')));
  const response = new Promise<RawResponse>((resolve, reject) => {
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(
          `no complete answer to GET ${JSON.stringify(target)} within ${options.timeoutMs ?? 5000} ms: ${JSON.stringify(data.toString('latin1'))}`,
        ),
      );
    }, options.timeoutMs ?? 5000);
    const finish = () => {
      clearTimeout(timer);
      const text = data.toString('utf8');
      const end = text.indexOf('\r\n\r\n');
      const head = end < 0 ? text : text.slice(0, end);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), head, body: end < 0 ? '' : text.slice(end + 4) });
      socket.destroy();
    };
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (data.toString('latin1').startsWith('HTTP/1.1 101') && data.includes('\r\n\r\n')) finish();
    });
    socket.on('close', finish);
    socket.on('error', () => undefined);
  });
  return { socket, response };
}

export function rawRequest(
  port: number,
  target: string,
  options: { upgrade?: boolean; headers?: string[]; timeoutMs?: number } = {},
): Promise<RawResponse> {
  return openRawRequest(port, target, options).response;
}

export interface RecordingUpstream {
  url: string;
  /** TCP connections accepted, whether or not they got as far as an upgrade. */
  readonly tcpConnections: number;
  /** Request targets (path + query) of every upgrade, as the upstream received them on the wire. */
  readonly targets: string[];
  close(): Promise<void>;
}

/** A real `ws` upstream that counts TCP connections and records each upgrade's raw request target. */
export async function startRecordingUpstream(): Promise<RecordingUpstream> {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const sockets = new Set<Socket>();
  const targets: string[] = [];
  let tcpConnections = 0;
  const server = createHttpServer();
  server.on('connection', (s: Socket) => {
    tcpConnections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req, socket, head) => {
    targets.push(req.url ?? '');
    wss.handleUpgrade(req, socket, head, (ws) => ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary })));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    get tcpConnections() {
      return tcpConnections;
    },
    targets,
    close: () =>
      new Promise<void>((r) => {
        for (const ws of wss.clients) ws.terminate();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** A TCP server that accepts and never answers, and reports when each accepted connection is closed by the peer. */
export interface HangingUpstream {
  port: number;
  /** Resolves with the next accepted socket. */
  nextSocket(): Promise<Socket>;
  close(): Promise<void>;
}

export async function startHangingUpstream(): Promise<HangingUpstream> {
  const sockets = new Set<Socket>();
  const waiting: Array<(s: Socket) => void> = [];
  const ready: Socket[] = [];
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    const w = waiting.shift();
    if (w) w(s);
    else ready.push(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    nextSocket: () => new Promise((r) => (ready.length ? r(ready.shift()!) : waiting.push(r))),
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
