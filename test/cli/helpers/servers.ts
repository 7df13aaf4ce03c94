import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { listen, uws } from '../../../src/gateway/uws.ts';

/** Small purpose-built servers on 127.0.0.1:0 for the CLI tests; every one has close(). */
export interface TestServer {
  url: string;
  port: number;
  counts: { connections: number; messages: number; bytes: number };
  close(): Promise<void>;
}

/** A uWS echo server that counts what it received. */
export async function uwsEcho(): Promise<TestServer> {
  const counts = { connections: 0, messages: 0, bytes: 0 };
  const open = new Set<import('../../../src/gateway/uws.ts').UWS.WebSocket<unknown>>();
  const app = uws.App().ws('/*', {
    maxPayloadLength: 1 << 20,
    idleTimeout: 0,
    open: (ws) => {
      counts.connections++;
      open.add(ws);
    },
    close: (ws) => {
      open.delete(ws);
    },
    message: (ws, msg, isBinary) => {
      counts.messages++;
      counts.bytes += msg.byteLength;
      ws.send(msg, isBinary);
    },
  });
  const { socket, port } = await listen(app, '127.0.0.1', 0);
  return {
    url: `ws://127.0.0.1:${port}/`,
    port,
    counts,
    close: async () => {
      uws.us_listen_socket_close(socket);
      for (const ws of open) ws.close();
    },
  };
}

export interface WsServerOptions {
  /** Decide the handshake: return an HTTP status to reject, or undefined to accept. */
  reject?: (req: import('node:http').IncomingMessage, n: number) => { status: number; headers?: Record<string, string> } | undefined;
  onConnection?: (ws: WebSocket, req: import('node:http').IncomingMessage, server: { all: Set<WebSocket> }) => void;
  /** Echo messages (default true). */
  echo?: boolean;
  maxPayload?: number;
}

/** A `ws` server on a plain HTTP server, for behaviours uWS makes awkward (exact statuses, stalls). */
export async function wsServer(o: WsServerOptions = {}): Promise<TestServer> {
  const counts = { connections: 0, messages: 0, bytes: 0 };
  const http: Server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true, maxPayload: o.maxPayload });
  const all = new Set<WebSocket>();
  let attempts = 0;
  http.on('upgrade', (req, socket, head) => {
    attempts++;
    const r = o.reject?.(req, attempts);
    if (r) {
      const headers = Object.entries(r.headers ?? {})
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      const body = JSON.stringify({ error: 'rejected' });
      socket.end(
        `HTTP/1.1 ${r.status} Rejected\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n${headers}\r\n${body}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      counts.connections++;
      all.add(ws);
      ws.on('close', () => all.delete(ws));
      // Resets from storm tests surface as errors here; the close event carries what the test checks.
      ws.on('error', () => undefined);
      ws.on('message', (data: Buffer, isBinary) => {
        counts.messages++;
        counts.bytes += data.length;
        if (o.echo !== false) ws.send(data, { binary: isBinary });
      });
      o.onConnection?.(ws, req, { all });
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}/`,
    port,
    counts,
    close: async () => {
      for (const ws of all) ws.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
