import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closed, open } from '../helpers/client.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream } from '../helpers/upstream.ts';
import { acceptResponse, onClientFrames, serverFrame, startRawServer } from '../relay/upstream-servers.ts';

/** Attack suite, issue 7 item 9: invalid UTF-8 text from either side (RFC 6455 §8.1: fail with 1007). */

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))),
  ]);
}

const EURO = Buffer.from('€'); // e2 82 ac
const INVALID = Buffer.from([0x61, 0xc3, 0x28]); // 'a', then a 2-byte lead followed by a non-continuation

/**
 * An upstream that writes `frames` once the client's first message ('go') arrived, so that the
 * client is listening, and records the next frame the gateway sends it.
 */
async function scriptedUpstream(frames: Buffer[]) {
  let deliver: (frame: { opcode: number; payload: Buffer }) => void = () => {};
  const reply = new Promise<{ opcode: number; payload: Buffer }>((resolve) => (deliver = resolve));
  const server = await startRawServer((socket, request) => {
    let started = false;
    onClientFrames(socket, (frame) => {
      if (started) return deliver({ opcode: frame.opcode, payload: frame.payload });
      started = true;
      socket.write(Buffer.concat(frames));
    });
    socket.write(acceptResponse(request.key));
  });
  stops.push(() => server.close());
  return { url: server.url.replace(/\/$/, ''), reply };
}

describe.each(['lean', 'ws'] as const)('invalid UTF-8 from the upstream, %s leg', (leg) => {
  async function relayThrough(framesAfter101: Buffer[]) {
    const upstream = await scriptedUpstream(framesAfter101);
    const gw = await startTestGateway(upstream.url, { upstream: { client: leg } });
    stops.push(() => gw.close());
    const ws = await open(`${gw.base}/ws/a?access_token=${await signToken()}`);
    const messages: string[] = [];
    ws.on('message', (data: Buffer) => messages.push(data.toString('hex')));
    ws.send('go');
    return { ws, messages, reply: upstream.reply };
  }

  it.each([
    ['a single text frame', [serverFrame(0x1, INVALID)]],
    ['a fragmented text message', [serverFrame(0x1, 'ok', { fin: false }), serverFrame(0x0, INVALID)]],
    ['a code point cut short at the end of the message', [serverFrame(0x1, EURO.subarray(0, 2), { fin: false }), serverFrame(0x0, 'x')]],
  ])('never relays %s: the upstream gets 1007, the client 1014', async (_what, frames) => {
    const { ws, messages, reply } = await relayThrough([serverFrame(0x1, 'before'), ...frames, serverFrame(0x1, 'after')]);
    const { code, reason } = await within(closed(ws), 5000, 'the client close');
    expect(code).toBe(1014);
    expect(reason).toMatch(/^upstream .*UTF-8/);
    const close = await within(reply, 5000, 'the close frame to the upstream');
    expect(close.opcode).toBe(0x8);
    expect(close.payload.readUInt16BE(0)).toBe(1007);
    // 'before' went through; neither the bad bytes nor anything after them did.
    expect(messages).toEqual([Buffer.from('before').toString('hex')]);
  });

  it('relays a code point split across fragments (valid once assembled)', async () => {
    const { ws, messages } = await relayThrough([
      serverFrame(0x1, EURO.subarray(0, 2), { fin: false }),
      serverFrame(0x0, EURO.subarray(2)),
    ]);
    stops.push(async () => ws.terminate());
    const got = new Promise<void>((resolve) => ws.once('message', () => resolve()));
    await within(got, 5000, 'the message');
    expect(messages).toEqual([EURO.toString('hex')]);
  });

  it('relays invalid UTF-8 in a binary message unchanged (only text is UTF-8)', async () => {
    const { ws, messages } = await relayThrough([serverFrame(0x2, INVALID)]);
    stops.push(async () => ws.terminate());
    const got = new Promise<void>((resolve) => ws.once('message', () => resolve()));
    await within(got, 5000, 'the message');
    expect(messages).toEqual([INVALID.toString('hex')]);
  });
});

/** A client frame (RFC 6455 §5.3: masked). */
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const mask = Buffer.from([0x11, 0x22, 0x33, 0x44]);
  const head = Buffer.from([0x80 | opcode, 0x80 | payload.length]);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, mask, body]);
}

describe('invalid UTF-8 from a client (uWS validates)', () => {
  // Pinned behaviour of uWS 20.30: not the 1007 close frame RFC 6455 §8.1 asks for, but a dropped
  // TCP connection (its close handler sees 1006 "Received invalid UTF-8"). The bytes never reach
  // the upstream, which is told 1001 like for any client that vanished (docs/contracts.md).
  it('drops the TCP connection without a close frame; the upstream gets 1001 and no message', async () => {
    const upstream = await startEchoUpstream();
    stops.push(() => upstream.close());
    const gw = await startTestGateway(upstream.url);
    stops.push(() => gw.close());
    const appSocket = upstream.nextSocket();
    const appMessages: Buffer[] = [];

    const socket = net.connect(gw.port, '127.0.0.1');
    stops.push(async () => void socket.destroy());
    let buffered = Buffer.alloc(0);
    let upgraded = false;
    const tcpClosed = new Promise<Buffer>((resolve) => {
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        if (upgraded) return;
        const end = buffered.indexOf('\r\n\r\n');
        if (end < 0) return;
        upgraded = buffered.toString('latin1', 0, 12) === 'HTTP/1.1 101';
        buffered = buffered.subarray(end + 4);
        // Only after the 101: bytes sent earlier would be read as HTTP.
        socket.write(maskedFrame(0x1, INVALID));
      });
      socket.on('close', () => resolve(buffered));
      socket.on('error', () => {});
    });
    const token = await signToken();
    socket.write(
      [
        `GET /ws/a?access_token=${token} HTTP/1.1`,
        `Host: 127.0.0.1:${gw.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        '',
        '',
      ].join('\r\n'),
    );
    const app = await within(appSocket, 5000, 'the upstream connection');
    app.on('message', (d: Buffer) => appMessages.push(d));
    const appClosed = new Promise<number>((resolve) => app.once('close', (code: number) => resolve(code)));
    const after = await within(tcpClosed, 5000, 'uWS to end the connection');
    expect(upgraded).toBe(true);
    expect(after.length).toBe(0);
    expect(await within(appClosed, 5000, 'the upstream close')).toBe(1001);
    expect(appMessages).toEqual([]);
  });
});
