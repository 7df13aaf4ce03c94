import { readFileSync } from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import { WebSocketServer } from 'ws';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.ts';
import { createLeanDialer, dialLeanUpstream } from '../../src/relay/lean/dial.ts';
import {
  acceptResponse,
  dialRecorded,
  recordingHandlers,
  serverFrame,
  sleep,
  startRawServer,
  startUwsEchoServer,
  startWsServer,
  type TestServer,
  trackServers,
  waitFor,
} from './upstream-servers.ts';

/**
 * What the lean leg does beyond the shared suite in upstream-leg.test.ts: finer pause semantics,
 * the closing handshake while paused, handler failures, its dialer options and wss://.
 */

const track = trackServers();

const TEXT = 1;

describe('lean upstream leg', () => {
  it('pause() inside onMessage holds the rest of the same read until resume()', async () => {
    const server = await track(
      startRawServer((socket, req) => {
        socket.write(acceptResponse(req.key));
        const frames = ['a', 'b', 'c', 'd', 'e'].map((text) => serverFrame(TEXT, text));
        setTimeout(() => socket.write(Buffer.concat(frames)), 30);
      }),
    );
    const h = await dialRecorded(dialLeanUpstream, { url: server.url });
    h.onMessageHook = () => {
      if (h.messages.length === 1) h.conn.pause();
    };
    await waitFor(() => h.messages.length >= 1);
    await sleep(100);
    expect(h.messages.length).toBe(1);
    h.conn.resume();
    await waitFor(() => h.messages.length === 5);
    expect(h.messages.map((m) => m.data.toString())).toEqual(['a', 'b', 'c', 'd', 'e']);
    h.conn.terminate();
  });

  it('close() on a paused leg still completes the closing handshake (RFC 6455 §7.1.2)', async () => {
    const server = await track(startWsServer());
    const connected = server.nextConnection();
    const h = await dialRecorded(createLeanDialer({ closeTimeoutMs: 5000 }), { url: server.url });
    const ws = await connected;
    const serverClosed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    h.conn.pause();
    const started = Date.now();
    h.conn.close(4000, 'done');
    expect(await serverClosed).toBe(4000);
    await waitFor(() => h.closes.length === 1, 2000);
    expect(h.closes[0]!.code).toBe(4000);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('ends the socket after closeTimeoutMs when the upstream never answers a close', async () => {
    let serverSocket: net.Socket | null = null;
    const server = await track(
      startRawServer((socket, req) => {
        serverSocket = socket;
        socket.write(acceptResponse(req.key));
      }),
    );
    const h = await dialRecorded(createLeanDialer({ closeTimeoutMs: 100 }), { url: server.url });
    h.conn.close(1000, '');
    await waitFor(() => h.closes.length === 1, 2000);
    expect(h.closes[0]!.code).toBe(1006);
    await waitFor(() => serverSocket?.destroyed === true || server.sockets.size === 0, 2000, 'server socket closed');
  });

  it('survives a throwing onMessage: the leg ends with 1006 and the process goes on', async () => {
    const server = await track(
      startRawServer((socket, req) => socket.write(Buffer.concat([Buffer.from(acceptResponse(req.key)), serverFrame(TEXT, 'boom')]))),
    );
    const { handlers, state } = recordingHandlers();
    handlers.onMessage = () => {
      throw new Error('handler bug');
    };
    await dialLeanUpstream({ url: new URL(server.url), headers: {}, protocols: [], timeoutMs: 2000, maxPayloadBytes: 1024 }, handlers);
    await waitFor(() => state.closes.length === 1);
    expect(state.closes[0]!.code).toBe(1006);
    await waitFor(() => server.sockets.size === 0, 2000, 'socket destroyed');
  });

  it('honours a highWaterBytes override and fires onDrain once after flushing', async () => {
    const server = await track(startUwsEchoServer());
    const h = await dialRecorded(createLeanDialer({ highWaterBytes: 1024 }), { url: server.url });
    expect(h.conn.send(Buffer.alloc(512), true)).toBe(true);
    expect(h.conn.send(Buffer.alloc(1024), true)).toBe(false);
    expect(h.conn.bufferedAmount).toBeGreaterThan(1024);
    await waitFor(() => h.drains === 1);
    expect(h.conn.bufferedAmount).toBeLessThanOrEqual(1024);
    await waitFor(() => h.messages.length === 2);
    await sleep(20);
    expect(h.drains).toBe(1);
    h.conn.close(1000, '');
  });

  it('encodes many frames of one tick into a single write', async () => {
    const chunks: number[] = [];
    const server = await track(
      startRawServer((socket, req) => {
        socket.write(acceptResponse(req.key));
        socket.on('data', (chunk: Buffer) => chunks.push(chunk.length));
      }),
    );
    const h = await dialRecorded(dialLeanUpstream, { url: server.url });
    for (let i = 0; i < 100; i++) h.conn.send(Buffer.alloc(64), true);
    const expected = 100 * (2 + 4 + 64);
    await waitFor(() => chunks.reduce((a, b) => a + b, 0) === expected);
    expect(chunks.length).toBe(1);
    h.conn.terminate();
  });

  describe('wss://', () => {
    // A self-signed test-only certificate for 127.0.0.1/localhost (valid until 2126), checked in
    // so that the tests need no openssl binary.
    const cert = readFileSync(new URL('./fixtures/localhost-cert.pem', import.meta.url), 'utf8');
    const key = readFileSync(new URL('./fixtures/localhost-key.pem', import.meta.url), 'utf8');

    async function startWssEcho(): Promise<TestServer & { port: number }> {
      const server = https.createServer({ key, cert });
      const wss = new WebSocketServer({ server, perMessageDeflate: false });
      wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
      const { port } = server.address() as net.AddressInfo;
      return {
        port,
        url: `wss://127.0.0.1:${port}/`,
        close: () =>
          new Promise<void>((resolve) => {
            for (const client of wss.clients) client.terminate();
            wss.close();
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      };
    }

    it('relays over TLS with a trusted CA', async () => {
      const server = await track(startWssEcho());
      const h = await dialRecorded(createLeanDialer({ tls: { ca: cert } }), { url: server.url });
      const payload = Buffer.alloc(100_000, 7);
      h.conn.send(Buffer.from('over tls'), false);
      h.conn.send(payload, true);
      await waitFor(() => h.messages.length === 2);
      expect(h.messages[0]!.data.toString()).toBe('over tls');
      expect(h.messages[1]!.data.equals(payload)).toBe(true);
      h.conn.close(1000, '');
      await waitFor(() => h.closes.length === 1);
      expect(h.closes[0]!.code).toBe(1000);
    });

    it('rejects an untrusted certificate with upstream_unavailable', async () => {
      const server = await track(startWssEcho());
      const err = await dialRecorded(dialLeanUpstream, { url: server.url }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe('upstream_unavailable');
    });
  });
});
