import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.ts';
import { dialLeanUpstream } from '../../src/relay/lean/dial.ts';
import type { UpstreamDialer } from '../../src/relay/upstream-types.ts';
import { dialWsUpstream } from '../../src/relay/ws-upstream.ts';
import {
  acceptResponse,
  dialRecorded,
  onClientFrames,
  parseClientFrame,
  refusedPort,
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
 * One RFC 6455 client-leg suite, run over both implementations of the UpstreamDialer contract
 * (src/relay/upstream-types.ts): the `ws` baseline and the lean framing layer.
 */

const track = trackServers();

async function dialError(promise: Promise<unknown>): Promise<GatewayError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  return err as GatewayError;
}

const OP = { continuation: 0, text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

describe.each([
  ['ws', dialWsUpstream],
  ['lean', dialLeanUpstream],
] as [string, UpstreamDialer][])('%s upstream leg', (_name, dialer) => {
  describe.each([
    ['ws server', () => startWsServer()],
    ['uWS server', () => startUwsEchoServer()],
  ] as [string, () => Promise<TestServer & { wss?: unknown }>][])('echo through a %s', (_serverName, start) => {
    async function echoServer(): Promise<TestServer> {
      const server = await track(start());
      const wsServer = server as Awaited<ReturnType<typeof startWsServer>>;
      if (wsServer.wss) wsServer.wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
      return server;
    }

    it('echoes text and binary byte for byte', async () => {
      const server = await echoServer();
      const h = await dialRecorded(dialer, { url: server.url });
      const text = Buffer.from('héllo wörld ✓ 🚀');
      const binary = randomBytes(1000);
      h.conn.send(text, false);
      h.conn.send(binary, true);
      await waitFor(() => h.messages.length === 2);
      expect(h.messages[0]!.isBinary).toBe(false);
      expect(h.messages[0]!.data.equals(text)).toBe(true);
      expect(h.messages[1]!.isBinary).toBe(true);
      expect(h.messages[1]!.data.equals(binary)).toBe(true);
      expect(h.messages.every((m) => m.insideBatch)).toBe(true);
      h.conn.close(1000, '');
    });

    it('echoes payloads across the 7/16/64-bit length boundaries', async () => {
      const server = await echoServer();
      const h = await dialRecorded(dialer, { url: server.url });
      const sizes = [0, 1, 125, 126, 127, 65535, 65536, 1024 * 1024];
      const payloads = sizes.map((size) => randomBytes(size));
      for (const payload of payloads) h.conn.send(payload, true);
      await waitFor(() => h.messages.length === sizes.length, 10_000);
      h.messages.forEach((message, i) => {
        expect(message.data.length).toBe(sizes[i]);
        expect(message.data.equals(payloads[i]!)).toBe(true);
      });
      h.conn.close(1000, '');
    });

    it('keeps the order of 10,000 messages sent in one burst', async () => {
      const server = await echoServer();
      const h = await dialRecorded(dialer, { url: server.url });
      const count = 10_000;
      for (let i = 0; i < count; i++) h.conn.send(Buffer.from(String(i)), false);
      await waitFor(() => h.messages.length === count, 15_000, `${count} echoes`);
      for (let i = 0; i < count; i++) {
        if (h.messages[i]!.data.toString() !== String(i)) throw new Error(`message ${i} out of order: ${h.messages[i]!.data.toString()}`);
      }
      h.conn.close(1000, '');
    });
  });

  it('copies the bytes before send returns (the caller may reuse its buffer)', async () => {
    const server = await track(startUwsEchoServer());
    const h = await dialRecorded(dialer, { url: server.url });
    const scratch = new Uint8Array(64).fill(7);
    h.conn.send(scratch.buffer, true);
    scratch.fill(9);
    await waitFor(() => h.messages.length === 1);
    expect(h.messages[0]!.data.every((b) => b === 7)).toBe(true);
  });

  it('sends the upgrade request with path, query, headers and no extensions', async () => {
    let request = '';
    let headers = new Map<string, string>();
    const server = await track(
      startRawServer((socket, req) => {
        request = req.head;
        headers = req.headers;
        socket.write(acceptResponse(req.key));
      }),
    );
    const h = await dialRecorded(dialer, { url: `${server.url}room/7?x=1`, headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(request.startsWith('GET /room/7?x=1 HTTP/1.1\r\n')).toBe(true);
    expect(headers.get('x-forwarded-for')).toBe('203.0.113.9');
    expect(headers.get('upgrade')?.toLowerCase()).toBe('websocket');
    expect(headers.get('sec-websocket-version')).toBe('13');
    expect(Buffer.from(headers.get('sec-websocket-key') ?? '', 'base64').length).toBe(16);
    expect(headers.has('sec-websocket-extensions')).toBe(false);
    expect(headers.has('sec-websocket-protocol')).toBe(false);
    h.conn.terminate();
  });

  it('masks every frame it sends (RFC 6455 §5.3)', async () => {
    let frame: ReturnType<typeof parseClientFrame> = null;
    const server = await track(
      startRawServer((socket, req, rest) => {
        let bytes = Buffer.from(rest);
        socket.write(acceptResponse(req.key));
        socket.on('data', (chunk: Buffer) => {
          bytes = Buffer.concat([bytes, chunk]);
          frame ??= parseClientFrame(bytes);
        });
      }),
    );
    const h = await dialRecorded(dialer, { url: server.url });
    const plain = Buffer.alloc(256, 0x41);
    h.conn.send(plain, true);
    await waitFor(() => frame !== null);
    const parsed = frame!;
    expect(parsed.masked).toBe(true);
    expect(parsed.opcode).toBe(OP.binary);
    expect(parsed.mask.equals(Buffer.alloc(4))).toBe(false);
    expect(parsed.wire.equals(plain)).toBe(false);
    expect(parsed.payload.equals(plain)).toBe(true);
    h.conn.terminate();
  });

  it('assembles a fragmented message with a ping between the fragments', async () => {
    const server = await track(
      startRawServer((socket, req) => {
        socket.write(acceptResponse(req.key));
        socket.write(serverFrame(OP.text, 'frag', { fin: false }));
        setTimeout(() => {
          socket.write(serverFrame(OP.ping, 'mid'));
          socket.write(serverFrame(OP.continuation, 'men', { fin: false }));
          setTimeout(() => socket.write(serverFrame(OP.continuation, 'ted', { fin: true })), 20);
        }, 20);
      }),
    );
    const h = await dialRecorded(dialer, { url: server.url });
    await waitFor(() => h.messages.length === 1);
    expect(h.messages[0]!.data.toString()).toBe('fragmented');
    expect(h.messages[0]!.isBinary).toBe(false);
    h.conn.terminate();
  });

  it('assembles a fragmented message sent by a ws server', async () => {
    const server = await track(startWsServer());
    const connected = server.nextConnection();
    const h = await dialRecorded(dialer, { url: server.url });
    const ws = await connected;
    ws.send(Buffer.from([1, 2]), { binary: true, fin: false });
    ws.send(Buffer.from([3]), { binary: true, fin: false });
    ws.send(Buffer.from([4, 5]), { binary: true, fin: true });
    await waitFor(() => h.messages.length === 1);
    expect([...h.messages[0]!.data]).toEqual([1, 2, 3, 4, 5]);
    expect(h.messages[0]!.isBinary).toBe(true);
    h.conn.close(1000, '');
  });

  it('parses frames split byte by byte across reads', async () => {
    const server = await track(
      startRawServer((socket, req) => {
        socket.write(acceptResponse(req.key));
        const bytes = Buffer.concat([serverFrame(OP.binary, Buffer.alloc(300, 3)), serverFrame(OP.text, 'ok')]);
        let i = 0;
        const drip = () => {
          if (i >= bytes.length || socket.destroyed) return;
          socket.write(bytes.subarray(i, i + 1));
          i++;
          setTimeout(drip, i < 12 ? 5 : 0);
        };
        drip();
      }),
    );
    const h = await dialRecorded(dialer, { url: server.url });
    await waitFor(() => h.messages.length === 2, 10_000);
    expect(h.messages[0]!.data.equals(Buffer.alloc(300, 3))).toBe(true);
    expect(h.messages[1]!.data.toString()).toBe('ok');
    h.conn.terminate();
  });

  it('reassembles a long mixed stream written in random slices', async () => {
    // A seeded generator keeps failures reproducible: frame sizes across all three length forms,
    // fragmented messages with pings between fragments, written in 1..4000-byte slices.
    let seed = 0x2545f491;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const expected: Buffer[] = [];
    const frames: Buffer[] = [];
    let pings = 0;
    for (let m = 0; m < 150; m++) {
      const sizes = [0, 1, 125, 126, 200, 65535, 65536, 70_000];
      const size = random(4) === 0 ? sizes[random(sizes.length)]! : random(3000);
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i++) payload[i] = (m + i) & 0xff;
      expected.push(payload);
      const parts = 1 + random(3);
      const cut = [0, ...[...Array(parts - 1)].map(() => random(size + 1)).sort((x, y) => x - y), size];
      for (let p = 0; p < parts; p++) {
        frames.push(serverFrame(p === 0 ? OP.binary : OP.continuation, payload.subarray(cut[p]!, cut[p + 1]!), { fin: p === parts - 1 }));
        // Kept under 60 pings, what a flood guard would be expected to allow in one burst.
        if (p < parts - 1 && pings < 40 && random(2) === 0) {
          frames.push(serverFrame(OP.ping, `p${pings}`));
          pings++;
        }
      }
    }
    const stream = Buffer.concat(frames);
    const pongs: string[] = [];
    const server = await track(
      startRawServer((socket, req) => {
        socket.write(acceptResponse(req.key));
        onClientFrames(socket, (frame) => {
          if (frame.opcode === OP.pong) pongs.push(frame.payload.toString());
        });
        let at = 0;
        const writeSlice = () => {
          if (at >= stream.length || socket.destroyed) return;
          const next = Math.min(stream.length, at + 1 + random(4000));
          socket.write(stream.subarray(at, next));
          at = next;
          setImmediate(writeSlice);
        };
        writeSlice();
      }),
    );
    const h = await dialRecorded(dialer, { url: server.url });
    await waitFor(() => h.messages.length === expected.length, 15_000, `${expected.length} messages`);
    for (let m = 0; m < expected.length; m++) {
      if (!h.messages[m]!.data.equals(expected[m]!)) throw new Error(`message ${m} differs (size ${expected[m]!.length})`);
    }
    // §5.5.3: pings that arrive together get one pong, for the latest; the last ping is always answered.
    await waitFor(() => pongs.at(-1) === `p${pings - 1}`, 5000, `the pong to p${pings - 1}`);
    expect(pongs.length).toBeLessThanOrEqual(pings);
    expect(pings).toBeGreaterThan(20);
    h.conn.terminate();
  });

  it('answers a ping with a pong carrying the same payload', async () => {
    const server = await track(startWsServer());
    const connected = server.nextConnection();
    const h = await dialRecorded(dialer, { url: server.url });
    const ws = await connected;
    const pong = new Promise<Buffer>((resolve) => ws.once('pong', (data) => resolve(data)));
    ws.ping(Buffer.from('are you there'));
    expect((await pong).toString()).toBe('are you there');
    h.conn.close(1000, '');
  });

  it('coalesces the pongs for a ping flood from an upstream that does not read, and answers the latest ping', async () => {
    const count = 20_000;
    const pongs: string[] = [];
    const server = await track(
      startRawServer((socket, req) => {
        socket.pause();
        onClientFrames(socket, (frame) => {
          if (frame.opcode === OP.pong) pongs.push(frame.payload.toString());
        });
        socket.write(acceptResponse(req.key));
        const flood = Buffer.concat(Array.from({ length: count }, (_, i) => serverFrame(OP.ping, `p${i}`)));
        socket.write(flood, () => socket.resume());
      }),
    );
    // No controlFramesPerSec: only the coalescing is under test here.
    const h = await dialRecorded(dialer, { url: server.url });
    await waitFor(() => pongs.at(-1) === `p${count - 1}`, 10_000, 'the pong to the last ping');
    // Before: one pong per ping (lean: 20 000 queued to a socket nobody read; ws: terminated at 60).
    expect(pongs.length).toBeLessThan(count / 10);
    expect(h.closes).toEqual([]);
    h.conn.terminate();
  });

  it('fails the leg with 1008 when the upstream sends more control frames than controlFramesPerSec allows', async () => {
    let serverSaw: { opcode: number; payload: Buffer } | null = null;
    const server = await track(
      startRawServer((socket, req) => {
        onClientFrames(socket, (frame) => {
          if (frame.opcode === OP.close) serverSaw = frame;
        });
        socket.write(acceptResponse(req.key));
        // Pongs count too: 30 unsolicited ones against a burst of 10.
        socket.write(Buffer.concat(Array.from({ length: 30 }, () => serverFrame(OP.pong, 'x'))));
      }),
    );
    const h = await dialRecorded(dialer, { url: server.url, controlFramesPerSec: 5 });
    await waitFor(() => h.closes.length === 1 && serverSaw !== null, 5000, 'the leg to fail');
    expect(h.closes[0]).toMatchObject({ code: 1008, reason: 'control frame rate exceeded', failed: true });
    expect(serverSaw!.payload.readUInt16BE(0)).toBe(1008);
  });

  it.each([
    ['a text message', [serverFrame(OP.text, Buffer.from([0xff]))]],
    ['a fragmented text message', [serverFrame(OP.text, Buffer.from([0xe2, 0x82]), { fin: false }), serverFrame(OP.continuation, 'x')]],
    ['a close reason', [serverFrame(OP.close, Buffer.from([0x03, 0xe8, 0xc3, 0x28]))]],
  ])('fails the leg with 1007 on invalid UTF-8 in %s, without delivering it', async (_what, frames) => {
    const server = await track(
      startRawServer((socket, req) => {
        socket.write(acceptResponse(req.key));
        socket.write(Buffer.concat(frames));
      }),
    );
    const h = await dialRecorded(dialer, { url: server.url });
    await waitFor(() => h.closes.length === 1, 5000, 'the leg to fail');
    expect(h.closes[0]).toMatchObject({ code: 1007, failed: true });
    expect(h.messages).toEqual([]);
  });

  it('delivers the close code and reason the server sent, once', async () => {
    const server = await track(startWsServer());
    const connected = server.nextConnection();
    const h = await dialRecorded(dialer, { url: server.url });
    const ws = await connected;
    const serverClosed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.close(4001, 'see you');
    await waitFor(() => h.closes.length === 1);
    expect(h.closes[0]).toEqual({ code: 4001, reason: 'see you', insideBatch: true });
    // RFC 6455 §5.5.1: the client echoes the close frame, so the server's close completes cleanly.
    expect(await serverClosed).toBe(4001);
    await sleep(50);
    expect(h.closes.length).toBe(1);
  });

  it('reports 1005 when the server close frame has no code', async () => {
    const server = await track(startWsServer());
    const connected = server.nextConnection();
    const h = await dialRecorded(dialer, { url: server.url });
    (await connected).close();
    await waitFor(() => h.closes.length === 1);
    expect(h.closes[0]!.code).toBe(1005);
  });

  it('close() sends code and reason after queued data and completes the closing handshake', async () => {
    const server = await track(startWsServer());
    const connected = server.nextConnection();
    const h = await dialRecorded(dialer, { url: server.url });
    const ws = await connected;
    const received: string[] = [];
    ws.on('message', (data) => received.push(String(data)));
    const serverClosed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    h.conn.send(Buffer.from('last words'), false);
    h.conn.close(4000, 'bye now');
    expect(await serverClosed).toEqual({ code: 4000, reason: 'bye now' });
    expect(received).toEqual(['last words']);
    await waitFor(() => h.closes.length === 1);
    expect(h.closes[0]!.code).toBe(4000);
  });

  describe('subprotocols', () => {
    it('exposes the protocol the server selected', async () => {
      const server = await track(startWsServer({ handleProtocols: (offered) => (offered.has('v2') ? 'v2' : false) }));
      const h = await dialRecorded(dialer, { url: server.url, protocols: ['v1', 'v2'] });
      expect(h.conn.protocol).toBe('v2');
      h.conn.close(1000, '');
    });

    it('exposes an empty protocol when none was offered', async () => {
      const server = await track(startWsServer());
      const h = await dialRecorded(dialer, { url: server.url });
      expect(h.conn.protocol).toBe('');
      h.conn.close(1000, '');
    });

    it('offers the list comma-joined in client order', async () => {
      let offered = '';
      const server = await track(
        startRawServer((socket, req) => {
          offered = req.headers.get('sec-websocket-protocol') ?? '';
          socket.write(acceptResponse(req.key, ['Sec-WebSocket-Protocol: b']));
        }),
      );
      const h = await dialRecorded(dialer, { url: server.url, protocols: ['a', 'b'] });
      expect(offered.split(',').map((p) => p.trim())).toEqual(['a', 'b']);
      expect(h.conn.protocol).toBe('b');
      h.conn.terminate();
    });

    it('rejects a dial when the server selects a protocol that was not offered', async () => {
      const server = await track(startRawServer((socket, req) => socket.write(acceptResponse(req.key, ['Sec-WebSocket-Protocol: evil']))));
      const err = await dialError(dialRecorded(dialer, { url: server.url, protocols: ['good'] }));
      expect(err.code).toBe('upstream_unavailable');
    });
  });

  describe('dial failures', () => {
    it('maps a non-101 answer to upstream_unavailable', async () => {
      const server = await track(
        startRawServer((socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')),
      );
      const err = await dialError(dialRecorded(dialer, { url: server.url }));
      expect(err.code).toBe('upstream_unavailable');
    });

    it('maps a wrong Sec-WebSocket-Accept to upstream_unavailable', async () => {
      const server = await track(startRawServer((socket) => socket.write(acceptResponse('not-the-key'))));
      const err = await dialError(dialRecorded(dialer, { url: server.url }));
      expect(err.code).toBe('upstream_unavailable');
    });

    it('maps a refused port to upstream_unavailable', async () => {
      const port = await refusedPort();
      const err = await dialError(dialRecorded(dialer, { url: `ws://127.0.0.1:${port}/` }));
      expect(err.code).toBe('upstream_unavailable');
    });

    it('maps a connection closed before the 101 to upstream_unavailable', async () => {
      const server = await track(startRawServer((socket) => socket.destroy()));
      const err = await dialError(dialRecorded(dialer, { url: server.url }));
      expect(err.code).toBe('upstream_unavailable');
    });

    it('maps a server that never answers to upstream_timeout within timeoutMs', async () => {
      const server = await track(startRawServer(() => undefined));
      const started = Date.now();
      const err = await dialError(dialRecorded(dialer, { url: server.url, timeoutMs: 300 }));
      const elapsed = Date.now() - started;
      expect(err.code).toBe('upstream_timeout');
      expect(elapsed).toBeGreaterThanOrEqual(250);
      expect(elapsed).toBeLessThan(1500);
      // The deadline destroys the socket: the server sees its end.
      await waitFor(() => (server as { sockets: Set<net.Socket> }).sockets.size === 0, 2000, 'socket teardown');
    });
  });

  it('delivers frames that arrived in the same read as the 101, after the dial resolved', async () => {
    const server = await track(
      startRawServer((socket, req) => {
        socket.write(
          Buffer.concat([
            Buffer.from(acceptResponse(req.key)),
            serverFrame(OP.text, 'one'),
            serverFrame(OP.binary, Buffer.from([2])),
            serverFrame(OP.text, 'three'),
          ]),
        );
      }),
    );
    const h = await dialRecorded(dialer, { url: server.url });
    await waitFor(() => h.messages.length === 3);
    expect(h.messages.map((m) => m.data.toString('latin1'))).toEqual(['one', '\u0002', 'three']);
    expect(h.messages.every((m) => m.afterResolve)).toBe(true);
    h.conn.terminate();
  });

  it('reports backpressure at the highWaterBytes it is given (backpressure.highWaterBytes), not at a built-in 1 MiB', async () => {
    // The upstream never reads: once the kernel's buffers are full, our queue grows.
    const server = await track(
      startRawServer((socket, req) => {
        socket.write(acceptResponse(req.key));
        socket.pause();
      }),
    );
    const h = await dialRecorded(dialer, { url: server.url, highWaterBytes: 16 * 1024 });
    const chunk = Buffer.alloc(8 * 1024, 7);
    let queuedAtFirstFalse = -1;
    // Bounded: 64 MiB at most, far beyond loopback's kernel buffers.
    for (let i = 0; i < 8192 && queuedAtFirstFalse < 0; i++) {
      if (!h.conn.send(chunk, true)) queuedAtFirstFalse = h.conn.bufferedAmount;
      // Let the socket push what the kernel takes, as a real relay's sends are spread over reads.
      if (i % 64 === 63) await new Promise((r) => setImmediate(r));
    }
    expect(queuedAtFirstFalse).toBeGreaterThan(16 * 1024);
    expect(queuedAtFirstFalse).toBeLessThan(256 * 1024);
    h.conn.terminate();
  });

  describe('protocol violations', () => {
    it('closes with 1009 when a message exceeds maxPayloadBytes', async () => {
      const server = await track(
        startRawServer((socket, req) =>
          socket.write(Buffer.concat([Buffer.from(acceptResponse(req.key)), serverFrame(OP.binary, Buffer.alloc(2000))])),
        ),
      );
      const h = await dialRecorded(dialer, { url: server.url, maxPayloadBytes: 1000 });
      await waitFor(() => h.closes.length === 1);
      expect(h.closes[0]!.code).toBe(1009);
      expect(h.messages.length).toBe(0);
    });

    it('closes with 1009 when fragments add up past maxPayloadBytes', async () => {
      const server = await track(
        startRawServer((socket, req) => {
          socket.write(acceptResponse(req.key));
          socket.write(serverFrame(OP.binary, Buffer.alloc(600), { fin: false }));
          socket.write(serverFrame(OP.continuation, Buffer.alloc(600), { fin: true }));
        }),
      );
      const h = await dialRecorded(dialer, { url: server.url, maxPayloadBytes: 1000 });
      await waitFor(() => h.closes.length === 1);
      expect(h.closes[0]!.code).toBe(1009);
      expect(h.messages.length).toBe(0);
    });

    it.each([
      ['a masked server frame', () => serverFrame(OP.text, 'hidden', { mask: true })],
      ['reserved bits', () => serverFrame(OP.text, 'x', { rsv: 0b100 })],
      ['an unknown opcode', () => serverFrame(0x3, 'x')],
      ['a fragmented ping', () => serverFrame(OP.ping, 'x', { fin: false })],
      ['a continuation without a message', () => serverFrame(OP.continuation, 'x')],
    ])('closes with 1002 on %s', async (_what, frame) => {
      const server = await track(
        startRawServer((socket, req) => socket.write(Buffer.concat([Buffer.from(acceptResponse(req.key)), frame()]))),
      );
      const h = await dialRecorded(dialer, { url: server.url });
      await waitFor(() => h.closes.length === 1);
      expect(h.closes[0]!.code).toBe(1002);
      expect(h.messages.length).toBe(0);
    });
  });

  it('pause() stops delivery and resume() restarts it', async () => {
    const server = await track(startWsServer());
    const connected = server.nextConnection();
    const h = await dialRecorded(dialer, { url: server.url });
    const ws = await connected;
    ws.on('message', () => {
      for (let i = 0; i < 5; i++) ws.send(`m${i}`);
    });
    h.conn.pause();
    h.conn.send(Buffer.from('go'), false);
    await sleep(200);
    expect(h.messages.length).toBe(0);
    h.conn.resume();
    await waitFor(() => h.messages.length === 5);
    expect(h.messages.map((m) => m.data.toString())).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    h.conn.close(1000, '');
  });

  it('reports backpressure past the high-water mark and drains once the server reads again', async () => {
    const server = await track(startWsServer({ maxPayload: 1024 * 1024 }));
    const connected = server.nextConnection();
    const h = await dialRecorded(dialer, { url: server.url });
    const ws = await connected;
    const tcp = (ws as unknown as { _socket: net.Socket })._socket;
    tcp.pause();
    let received = 0;
    ws.on('message', () => received++);

    // Fill our buffer, the kernel's send and receive buffers, until send keeps returning false.
    const payload = Buffer.alloc(64 * 1024, 1);
    const maxMessages = 2048; // 128 MiB: far beyond loopback socket buffers
    let sent = 0;
    let saturated = false;
    let drainsBefore = 0;
    while (!saturated && sent < maxMessages) {
      let accepted = true;
      while (accepted && sent < maxMessages) {
        accepted = h.conn.send(payload, true);
        sent++;
      }
      if (accepted) break;
      drainsBefore = h.drains;
      await sleep(50);
      saturated = h.drains === drainsBefore;
    }
    expect(saturated).toBe(true);
    expect(h.conn.bufferedAmount).toBeGreaterThan(1024 * 1024);

    tcp.resume();
    await waitFor(() => h.drains === drainsBefore + 1, 10_000, 'onDrain');
    await waitFor(() => received === sent, 10_000, 'all messages at the server');
    expect(h.conn.send(Buffer.from('after'), false)).toBe(true);
    h.conn.close(1000, '');
  });

  it('reports 1006 exactly once when the server drops the TCP connection', async () => {
    const server = await track(startWsServer());
    const connected = server.nextConnection();
    const h = await dialRecorded(dialer, { url: server.url });
    (await connected).terminate();
    await waitFor(() => h.closes.length === 1);
    expect(h.closes[0]!.code).toBe(1006);
    await sleep(100);
    expect(h.closes.length).toBe(1);
  });

  it('reports 1006 when the server ends TCP without a close frame', async () => {
    const server = await track(startRawServer((socket, req) => socket.end(acceptResponse(req.key))));
    const h = await dialRecorded(dialer, { url: server.url });
    await waitFor(() => h.closes.length === 1);
    expect(h.closes[0]!.code).toBe(1006);
  });

  it('terminate() destroys at once and onClose(1006) follows once', async () => {
    const server = await track(startWsServer());
    const connected = server.nextConnection();
    const h = await dialRecorded(dialer, { url: server.url });
    const ws = await connected;
    const serverClosed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    h.conn.terminate();
    expect(await serverClosed).toBe(1006);
    await waitFor(() => h.closes.length === 1);
    expect(h.closes[0]!.code).toBe(1006);
    h.conn.terminate();
    h.conn.close(1000, '');
    await sleep(50);
    expect(h.closes.length).toBe(1);
  });
});
