import { createHash } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type ConnectOptions } from '../../../cli/engine/connection.ts';
import { wsGenSocket, type GenConnectResult, type GenSocket } from '../../../cli/engine/gen-socket.ts';
import { leanConnect } from '../../../cli/engine/lean-client.ts';
import { waitFor } from '../../helpers/wait.ts';

/**
 * The lean client at the byte level, against a raw TCP server that plays the WebSocket server by
 * hand (so every byte the client writes is seen), and side by side with `ws` where the outcome
 * names must match.
 */

interface ClientFrame {
  fin: boolean;
  opcode: number;
  masked: boolean;
  mask: string;
  payload: Buffer;
}

/** Parses client frames (masked, RFC 6455 §5.2) from what the server has read so far. */
function parseFrames(bytes: Buffer): ClientFrame[] {
  const frames: ClientFrame[] = [];
  let p = 0;
  while (p + 2 <= bytes.length) {
    const b0 = bytes[p]!;
    const b1 = bytes[p + 1]!;
    let len = b1 & 0x7f;
    let h = 2;
    if (len === 126) {
      len = bytes.readUInt16BE(p + 2);
      h = 4;
    } else if (len === 127) {
      len = Number(bytes.readBigUInt64BE(p + 2));
      h = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    const maskLen = masked ? 4 : 0;
    if (p + h + maskLen + len > bytes.length) break;
    const mask = bytes.subarray(p + h, p + h + maskLen);
    const payload = Buffer.from(bytes.subarray(p + h + maskLen, p + h + maskLen + len));
    if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, masked, mask: mask.toString('hex'), payload });
    p += h + maskLen + len;
  }
  return frames;
}

/** An unmasked server frame. */
function frame(opcode: number, payload: Buffer | string, opts: { fin?: boolean; mask?: boolean } = {}): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = [(opts.fin === false ? 0 : 0x80) | opcode];
  if (body.length < 126) head.push((opts.mask ? 0x80 : 0) | body.length);
  else head.push((opts.mask ? 0x80 : 0) | 126, body.length >> 8, body.length & 0xff);
  const mask = opts.mask ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0);
  const out = Buffer.from(body);
  if (opts.mask) for (let i = 0; i < out.length; i++) out[i]! ^= mask[i % 4]!;
  return Buffer.concat([Buffer.from(head), mask, out]);
}

function closeBody(code: number, reason: string): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

function accept(key: string): string {
  return createHash('sha1')
    .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
    .digest('base64');
}

interface RawPeer {
  socket: Socket;
  /** Everything the client sent after its request head. */
  received: () => Buffer;
  frames: () => ClientFrame[];
}

/**
 * A hand-played server. `answer` gets the request's key and head and writes what it likes; by
 * default a correct 101. `onOpen` then runs with the socket.
 */
async function rawServer(
  onOpen: (peer: RawPeer) => void,
  answer: (key: string, head: string, socket: Socket) => void = (key, _h, s) =>
    s.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\n\r\n`,
    ),
): Promise<{ url: string; server: Server }> {
  const server = createServer((socket) => {
    let buf = Buffer.alloc(0);
    let headDone = false;
    const peer: RawPeer = { socket, received: () => buf, frames: () => parseFrames(buf) };
    socket.on('error', () => undefined);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (headDone) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      headDone = true;
      const head = buf.toString('latin1', 0, end);
      buf = buf.subarray(end + 4);
      const key = /sec-websocket-key: (\S+)/i.exec(head)?.[1] ?? '';
      answer(key, head, socket);
      onOpen(peer);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  servers.push(server);
  return { url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

let servers: Server[] = [];
afterEach(async () => {
  for (const s of servers) s.close();
  servers = [];
});

const opts = (url: string, o: Partial<ConnectOptions> = {}): ConnectOptions => ({ url, handshakeTimeoutMs: 2_000, ...o });

async function open(url: string, o: Partial<ConnectOptions> = {}): Promise<GenSocket> {
  const r = await leanConnect(opts(url, o));
  if (!r.ok) throw new Error(`lean connect failed: ${r.outcome} ${r.detail}`);
  return r.sock;
}

async function openWs(url: string, o: Partial<ConnectOptions> = {}): Promise<GenSocket> {
  const r = await connect(opts(url, o));
  if (!r.ok) throw new Error(`ws connect failed: ${r.outcome} ${r.detail}`);
  return wsGenSocket(r.ws);
}

interface Watched {
  messages: Buffer[];
  end?: { outcome: string; code: number; reason: string };
}

function watch(sock: GenSocket, clientClosing: () => boolean = () => false): Watched {
  const w: Watched = { messages: [] };
  sock.watch(
    clientClosing,
    (data) => w.messages.push(Buffer.from(data)),
    (outcome, code, reason) => (w.end = { outcome, code, reason }),
  );
  return w;
}

describe('lean client: frames on the wire', () => {
  it('masks every client frame with its own key, text and binary as asked, and closes with our code', async () => {
    let peer!: RawPeer;
    const { url } = await rawServer((p) => (peer = p));
    const sock = await open(url);
    let closing = false;
    const w = watch(sock, () => closing);
    for (let i = 0; i < 300; i++) sock.send(`message ${i}`);
    sock.send(Buffer.from([0, 1, 2, 255]));
    sock.send(Buffer.from('as text'), false);
    await waitFor(() => peer.frames().length === 302, { timeoutMs: 5_000 });
    closing = true;
    sock.close(1001, 'bye');
    await waitFor(() => peer.frames().length === 303, { timeoutMs: 5_000 });
    const frames = peer.frames();
    expect(frames.every((f) => f.masked && f.fin)).toBe(true);
    // §5.3: a fresh key per frame from the CSPRNG pool; 303 draws of 32 bits do not repeat in practice.
    expect(new Set(frames.map((f) => f.mask)).size).toBe(303);
    expect(frames.slice(0, 300).map((f) => [f.opcode, f.payload.toString()])).toEqual(
      Array.from({ length: 300 }, (_, i) => [1, `message ${i}`]),
    );
    expect([frames[300]!.opcode, [...frames[300]!.payload]]).toEqual([2, [0, 1, 2, 255]]);
    expect([frames[301]!.opcode, frames[301]!.payload.toString()]).toEqual([1, 'as text']);
    expect([frames[302]!.opcode, frames[302]!.payload.readUInt16BE(0), frames[302]!.payload.toString('utf8', 2)]).toEqual([8, 1001, 'bye']);
    // The server answers the close and drops TCP: a close we asked for is `completed`.
    peer.socket.end(frame(8, closeBody(1001, '')));
    await waitFor(() => w.end !== undefined, { timeoutMs: 5_000 });
    expect(w.end).toEqual({ outcome: 'completed', code: 1001, reason: '' });
    // Nothing after the close frame: a send now is dropped (§5.5.1).
    sock.send('late');
    expect(peer.frames()).toHaveLength(303);
  });

  it('sends the sends of one event-loop iteration in one write', async () => {
    let peer!: RawPeer;
    const { url } = await rawServer((p) => (peer = p));
    const sock = await open(url);
    watch(sock);
    const writes: number[] = [];
    await waitFor(() => peer !== undefined, { timeoutMs: 5_000 });
    peer.socket.on('data', (chunk) => writes.push(chunk.length));
    for (let i = 0; i < 50; i++) sock.send('0123456789');
    await waitFor(() => peer.frames().length === 50, { timeoutMs: 5_000 });
    // 50 frames of 16 bytes left as one write; TCP on loopback delivers it as one read here.
    expect(writes).toEqual([50 * 16]);
    sock.terminate();
  });

  it('reassembles a fragmented message and answers a ping between its fragments with the same payload', async () => {
    let peer!: RawPeer;
    const { url } = await rawServer((p) => {
      peer = p;
      p.socket.write(Buffer.concat([frame(1, 'hel', { fin: false }), frame(9, 'ping-1'), frame(0, 'lo', { fin: false })]));
      setImmediate(() => p.socket.write(frame(0, ' world')));
    });
    const sock = await open(url);
    const w = watch(sock);
    await waitFor(() => w.messages.length === 1 && peer.frames().length === 1, { timeoutMs: 5_000 });
    expect(w.messages.map(String)).toEqual(['hello world']);
    const [pong] = peer.frames();
    expect(pong).toMatchObject({ opcode: 0xa, masked: true, fin: true });
    expect(pong!.payload.toString()).toBe('ping-1');
    sock.terminate();
  });

  it('echoes a server close frame with its code and names the end closed.<code> with the reason', async () => {
    let peer!: RawPeer;
    const reason = '{"r":"conn_limit","retry_ms":1000}';
    const { url } = await rawServer((p) => {
      peer = p;
      // In the same write as the 101: the client must not lose it before the run watches the socket.
      p.socket.write(frame(8, closeBody(4100, reason)));
    });
    const sock = await open(url);
    const w = watch(sock);
    await waitFor(() => peer.frames().length === 1, { timeoutMs: 5_000 });
    const [echo] = peer.frames();
    expect([echo!.opcode, echo!.masked, echo!.payload.readUInt16BE(0)]).toEqual([8, true, 4100]);
    peer.socket.end();
    await waitFor(() => w.end !== undefined, { timeoutMs: 5_000 });
    expect(w.end).toEqual({ outcome: 'closed.4100', code: 4100, reason });
  });

  it('a TCP end without a close frame is closed.1006, as with ws', async () => {
    for (const dial of [open, openWs]) {
      const { url } = await rawServer((p) => setImmediate(() => p.socket.end()));
      const w = watch(await dial(url));
      await waitFor(() => w.end !== undefined, { timeoutMs: 5_000 });
      expect(w.end?.outcome).toBe('closed.1006');
    }
  });

  it('fails the connection on a protocol violation with the reader’s code, named as ws names it', async () => {
    const cases: Array<[string, Buffer, number]> = [
      ['protocol.WS_ERR_UNEXPECTED_MASK', frame(1, 'x', { mask: true }), 1002],
      ['protocol.WS_ERR_INVALID_UTF8', frame(1, Buffer.from([0xc3, 0x28])), 1007],
      ['protocol.WS_ERR_INVALID_OPCODE', frame(0, 'orphan continuation'), 1002],
      ['protocol.WS_ERR_INVALID_CLOSE_CODE', frame(8, closeBody(999, '')), 1002],
      ['protocol.WS_ERR_UNEXPECTED_RSV_1', Buffer.from([0xc1, 0x01, 0x61]), 1002],
    ];
    for (const [outcome, bad, code] of cases) {
      for (const dial of [open, openWs]) {
        let peer!: RawPeer;
        // The violation follows the client's first message, so it lands after the run watches the socket.
        const { url } = await rawServer((p) => {
          peer = p;
          p.socket.once('data', () => p.socket.write(bad));
        });
        const sock = await dial(url);
        const w = watch(sock);
        sock.send('go');
        await waitFor(() => peer.frames().some((f) => f.opcode === 8), { timeoutMs: 5_000 });
        // The client's close frame carries the failure's code (§7.1.7).
        expect(
          peer
            .frames()
            .find((f) => f.opcode === 8)!
            .payload.readUInt16BE(0),
          `${dial.name} ${outcome}`,
        ).toBe(code);
        peer.socket.end();
        await waitFor(() => w.end !== undefined, { timeoutMs: 5_000 });
        expect(w.end?.outcome, `${dial.name} ${outcome}`).toBe(outcome);
      }
    }
  });
});

describe('lean client: handshake outcomes named exactly as connect() names them with ws', () => {
  const refusal =
    (status: number, headers: string, body: string) =>
    (_key: string, _head: string, s: Socket): void =>
      void s.end(`HTTP/1.1 ${status} No\r\nConnection: close\r\nContent-Length: ${body.length}\r\n${headers}\r\n${body}`);
  const upgrade =
    (extra: (key: string) => string) =>
    (key: string, _head: string, s: Socket): void =>
      void s.write(`HTTP/1.1 101 Switching Protocols\r\n${extra(key)}\r\n`);

  const cases: Array<[string, (key: string, head: string, s: Socket) => void, Partial<ConnectOptions>?]> = [
    ['429 with Retry-After and a JSON reason', refusal(429, 'Retry-After: 7\r\n', '{"error":"conn_limit"}')],
    ['401 without a body', refusal(401, '', '')],
    ['503 with a non-JSON body', refusal(503, 'Retry-After: 2\r\n', 'busy')],
    ['302 redirect, not followed', refusal(302, 'Location: /elsewhere\r\n', '')],
    [
      'a refusal without Content-Length, ended by the close',
      (_k, _h, s) => void s.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n{"error":"origin"}'),
    ],
    ['a wrong Sec-WebSocket-Accept', upgrade(() => 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAA\r\n')],
    ['no Upgrade: websocket', upgrade((k) => `Upgrade: h2c\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(k)}\r\n`)],
    [
      'a subprotocol that was not offered',
      upgrade((k) => `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(k)}\r\nSec-WebSocket-Protocol: chat\r\n`),
    ],
    [
      'no subprotocol when one was offered',
      upgrade((k) => `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(k)}\r\n`),
      { protocols: ['chat'] },
    ],
    [
      'an extension that was not offered',
      upgrade(
        (k) =>
          `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(k)}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n`,
      ),
    ],
    ['a hang-up before the response', (_k, _h, s) => void s.destroy()],
    ['no answer within the handshake timeout', () => undefined, { handshakeTimeoutMs: 300 }],
  ];

  for (const [name, answer, extra] of cases) {
    it(name, async () => {
      const { url } = await rawServer(() => undefined, answer);
      const pick = (r: GenConnectResult | Awaited<ReturnType<typeof connect>>) =>
        r.ok
          ? { ok: true }
          : {
              outcome: r.outcome,
              status: r.status,
              retryAfterMs: r.retryAfterMs,
              rejected: r.outcome.startsWith('rejected') ? r.detail : '',
            };
      const viaWs = await connect(opts(url, extra));
      if (viaWs.ok) viaWs.ws.terminate();
      const viaLean = await leanConnect(opts(url, extra));
      if (viaLean.ok) viaLean.sock.terminate();
      expect(viaWs.ok).toBe(false);
      expect(pick(viaLean)).toEqual(pick(viaWs));
    });
  }

  it('a refused port', async () => {
    const { server, url } = await rawServer(() => undefined);
    await new Promise<void>((r) => server.close(() => r()));
    const viaWs = await connect(opts(url));
    const viaLean = await leanConnect(opts(url));
    expect(viaLean.ok || viaLean.outcome).toBe('error.ECONNREFUSED');
    expect(viaWs.ok || viaWs.outcome).toBe('error.ECONNREFUSED');
  });

  it('sends the auth headers, the origin and the offered subprotocols in the upgrade request', async () => {
    let head = '';
    const { url } = await rawServer(
      () => undefined,
      (key, h, s) => {
        head = h;
        s.write(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(key)}\r\nSec-WebSocket-Protocol: chat\r\n\r\n`,
        );
      },
    );
    const sock = await open(`${url}room?x=1`, {
      headers: { Authorization: 'Bearer abc' },
      origin: 'https://app.example',
      protocols: ['chat', 'bearer.t'],
    });
    sock.terminate();
    expect(head).toMatch(/^GET \/room\?x=1 HTTP\/1\.1\r\n/);
    expect(head).toContain('\r\nAuthorization: Bearer abc');
    expect(head).toContain('\r\nOrigin: https://app.example');
    expect(head).toContain('\r\nSec-WebSocket-Protocol: chat, bearer.t');
  });
});
