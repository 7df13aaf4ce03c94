import { createHash } from 'node:crypto';
import { afterEach } from 'vitest';
import net from 'node:net';
import { WebSocketServer, type WebSocket as WsSocket } from 'ws';
import { listen, uws, type UWS } from '../../src/gateway/uws.ts';
import type { UpstreamConnection, UpstreamDialer, UpstreamHandlers } from '../../src/relay/upstream-types.ts';

/** Test servers and a recording client harness shared by the upstream leg suite. */

export interface TestServer {
  url: string;
  close(): Promise<void>;
}

export interface WsTestServer extends TestServer {
  wss: WebSocketServer;
  /** Resolves with the next accepted server-side socket. */
  nextConnection(): Promise<WsSocket>;
}

export async function startWsServer(options: ConstructorParameters<typeof WebSocketServer>[0] = {}): Promise<WsTestServer> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, ...options });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const waiting: ((ws: WsSocket) => void)[] = [];
  const accepted: WsSocket[] = [];
  wss.on('connection', (ws) => {
    const waiter = waiting.shift();
    if (waiter) waiter(ws);
    else accepted.push(ws);
  });
  const { port } = wss.address() as net.AddressInfo;
  return {
    wss,
    url: `ws://127.0.0.1:${port}/`,
    nextConnection: () =>
      new Promise<WsSocket>((resolve) => {
        const ready = accepted.shift();
        if (ready) resolve(ready);
        else waiting.push(resolve);
      }),
    close: () =>
      new Promise<void>((resolve) => {
        for (const client of wss.clients) client.terminate();
        wss.close(() => resolve());
      }),
  };
}

/** A uWS echo server, like the app behind the sidecar in bench/upstream-leg.ts. */
export async function startUwsEchoServer(): Promise<TestServer> {
  const open = new Set<UWS.WebSocket<unknown>>();
  const app = uws.App().ws('/*', {
    maxPayloadLength: 16 * 1024 * 1024,
    // Default 64 KiB would drop echoes silently during bursts (docs/architecture.md).
    maxBackpressure: 64 * 1024 * 1024,
    open: (ws) => {
      open.add(ws);
    },
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary);
    },
    close: (ws) => open.delete(ws),
  });
  const { socket, port } = await listen(app, '127.0.0.1', 0);
  return {
    url: `ws://127.0.0.1:${port}/`,
    close: async () => {
      for (const ws of [...open]) ws.close();
      uws.us_listen_socket_close(socket);
    },
  };
}

export interface RawRequest {
  head: string;
  headers: Map<string, string>;
  key: string;
}

/**
 * A plain TCP server that reads one HTTP request head and hands the socket to `onRequest`, for
 * the byte-level cases no WebSocket server will produce (bad handshakes, crafted frames).
 */
export async function startRawServer(
  onRequest: (socket: net.Socket, request: RawRequest, rest: Buffer) => void,
): Promise<TestServer & { sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.removeListener('data', onData);
      const head = buffered.toString('latin1', 0, end);
      const headers = new Map<string, string>();
      for (const line of head.split('\r\n').slice(1)) {
        const colon = line.indexOf(':');
        headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      onRequest(socket, { head, headers, key: headers.get('sec-websocket-key') ?? '' }, buffered.subarray(end + 4));
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  return {
    sockets,
    url: `ws://127.0.0.1:${port}/`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

export function acceptResponse(key: string, extraHeaders: string[] = []): string {
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  return [
    'HTTP/1.1 101 Switching Protocols',
    'Upgrade: websocket',
    'Connection: Upgrade',
    `Sec-WebSocket-Accept: ${accept}`,
    ...extraHeaders,
    '',
    '',
  ].join('\r\n');
}

/** Encodes one server frame (RFC 6455 §5.2); `mask` produces the frame a server must never send. */
export function serverFrame(
  opcode: number,
  payload: Uint8Array | string,
  options: { fin?: boolean; rsv?: number; mask?: boolean } = {},
): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : Buffer.from(payload);
  const fin = options.fin ?? true;
  const length = body.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const maskBytes = options.mask ? 4 : 0;
  const frame = Buffer.alloc(2 + lengthBytes + maskBytes + length);
  frame[0] = (fin ? 0x80 : 0) | ((options.rsv ?? 0) << 4) | opcode;
  const maskBit = options.mask ? 0x80 : 0;
  if (lengthBytes === 0) frame[1] = maskBit | length;
  else if (lengthBytes === 2) {
    frame[1] = maskBit | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = maskBit | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  let p = 2 + lengthBytes;
  if (options.mask) {
    frame.set([1, 2, 3, 4], p);
    p += 4;
    for (let i = 0; i < length; i++) frame[p + i] = body[i]! ^ ((i % 4) + 1);
  } else body.copy(frame, p);
  return frame;
}

/** Parses one client frame from the start of `bytes` (or null if incomplete). */
export function parseClientFrame(
  bytes: Buffer,
): { fin: boolean; opcode: number; masked: boolean; mask: Buffer; wire: Buffer; payload: Buffer; size: number } | null {
  if (bytes.length < 2) return null;
  const masked = (bytes[1]! & 0x80) !== 0;
  let length = bytes[1]! & 0x7f;
  let p = 2;
  if (length === 126) {
    if (bytes.length < 4) return null;
    length = bytes.readUInt16BE(2);
    p = 4;
  } else if (length === 127) {
    if (bytes.length < 10) return null;
    length = Number(bytes.readBigUInt64BE(2));
    p = 10;
  }
  const mask = masked ? bytes.subarray(p, p + 4) : Buffer.alloc(4);
  if (masked) p += 4;
  if (bytes.length < p + length) return null;
  const wire = bytes.subarray(p, p + length);
  const payload = Buffer.alloc(length);
  for (let i = 0; i < length; i++) payload[i] = wire[i]! ^ mask[i % 4]!;
  return {
    fin: (bytes[0]! & 0x80) !== 0,
    opcode: bytes[0]! & 0x0f,
    masked,
    mask: Buffer.from(mask),
    wire: Buffer.from(wire),
    payload,
    size: p + length,
  };
}

export type ClientFrame = NonNullable<ReturnType<typeof parseClientFrame>>;

/** Calls `onFrame` with each complete client frame the socket delivers, however the bytes are split. */
export function onClientFrames(socket: net.Socket, onFrame: (frame: ClientFrame) => void): void {
  let buffered = Buffer.alloc(0);
  socket.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    for (let frame = parseClientFrame(buffered); frame !== null; frame = parseClientFrame(buffered)) {
      buffered = buffered.subarray(frame.size);
      onFrame(frame);
    }
  });
}

/** A port that refuses connections: bound, read back, then released. */
/** A loopback port with nothing listening on it. */
export { closedPort as refusedPort } from '../helpers/upstream.ts';

/** Collects servers a test starts and closes them all after each test. */
export function trackServers(): <T extends TestServer>(server: Promise<T>) => Promise<T> {
  const servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });
  return async (server) => {
    const started = await server;
    servers.push(started);
    return started;
  };
}

export interface Received {
  data: Buffer;
  isBinary: boolean;
  /** Whether the dial promise had resolved when the message was delivered. */
  afterResolve: boolean;
  insideBatch: boolean;
}

export interface Harness {
  conn: UpstreamConnection;
  messages: Received[];
  closes: { code: number; reason: string; insideBatch: boolean; failed?: boolean }[];
  drains: number;
  batches: number;
  /** Runs inside onMessage, for tests that act on delivery (e.g. pause). */
  onMessageHook: ((message: Received) => void) | null;
}

export interface DialParams {
  url: string;
  protocols?: string[];
  headers?: Record<string, string>;
  timeoutMs?: number;
  maxPayloadBytes?: number;
  controlFramesPerSec?: number;
  highWaterBytes?: number;
}

export function recordingHandlers(): { handlers: UpstreamHandlers; state: Omit<Harness, 'conn'>; markResolved(): void } {
  let resolved = false;
  let inBatch = false;
  const state: Omit<Harness, 'conn'> = { messages: [], closes: [], drains: 0, batches: 0, onMessageHook: null };
  const handlers: UpstreamHandlers = {
    onMessage(data, isBinary) {
      const message = { data: Buffer.from(data), isBinary, afterResolve: resolved, insideBatch: inBatch };
      state.messages.push(message);
      state.onMessageHook?.(message);
    },
    onClose(code, reason, failed) {
      state.closes.push({ code, reason, insideBatch: inBatch, ...(failed ? { failed } : {}) });
    },
    onDrain() {
      state.drains++;
    },
    batch(deliver) {
      state.batches++;
      inBatch = true;
      try {
        deliver();
      } finally {
        inBatch = false;
      }
    },
  };
  return { handlers, state, markResolved: () => (resolved = true) };
}

export async function dialRecorded(dialer: UpstreamDialer, params: DialParams): Promise<Harness> {
  const { handlers, state, markResolved } = recordingHandlers();
  const conn = await dialer(
    {
      url: new URL(params.url),
      headers: params.headers ?? {},
      protocols: params.protocols ?? [],
      timeoutMs: params.timeoutMs ?? 2000,
      maxPayloadBytes: params.maxPayloadBytes ?? 16 * 1024 * 1024,
      controlFramesPerSec: params.controlFramesPerSec,
      highWaterBytes: params.highWaterBytes,
    },
    handlers,
  );
  markResolved();
  return Object.assign(state, { conn });
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `predicate` every 5 ms; fails after `timeoutMs` so no test waits unbounded. */
export async function waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}
