import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import {
  createNoopObserver,
  NOOP_CONNECTION,
  NOOP_HANDSHAKE,
  type ConnectionObservation,
  type Direction,
  type GatewayObserver,
} from '../../src/telemetry/observer.ts';
import { closed, nextMessage, open } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { acceptResponse, parseClientFrame, serverFrame, startRawServer, type TestServer } from '../relay/upstream-servers.ts';

/** Attack suite, issue 7 items 4 and 5: ping/pong floods from either side of the relay. */

const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

function recordingObserver(): { observer: GatewayObserver; limited: Direction[]; upstreamErrors: string[] } {
  const limited: Direction[] = [];
  const upstreamErrors: string[] = [];
  const connection: ConnectionObservation = {
    ...NOOP_CONNECTION,
    controlFramesLimited: (direction) => limited.push(direction),
    upstreamFailed: (kind) => upstreamErrors.push(kind),
  };
  const observer: GatewayObserver = {
    ...createNoopObserver(),
    handshakeStarted: () => ({ ...NOOP_HANDSHAKE, accepted: () => connection }),
    upstreamError: (_route, kind) => upstreamErrors.push(kind),
  };
  return { observer, limited, upstreamErrors };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms))),
  ]);
}

async function gatewayInFront(upstreamUrl: string, leg: 'lean' | 'ws' = 'lean', perSec?: number) {
  const rec = recordingObserver();
  const gw: TestGateway = await startTestGateway(
    upstreamUrl,
    { upstream: { client: leg }, ...(perSec === undefined ? {} : { messages: { controlFramesPerSec: perSec } }) },
    { observer: rec.observer },
  );
  stops.push(() => gw.close());
  return { gw, ...rec };
}

async function echoUpstream(): Promise<TestUpstream> {
  const upstream = await startEchoUpstream();
  stops.push(() => upstream.close());
  return upstream;
}

describe('client control-frame floods (default budget: 10/s, burst 20)', () => {
  it.each([
    ['pings', (ws: WebSocket) => ws.ping('p')],
    ['unsolicited pongs', (ws: WebSocket) => ws.pong('p')],
  ])('closes a client that floods %s with 1008, counts it, and tells the upstream 1001', async (_what, send) => {
    const upstream = await echoUpstream();
    const { gw, limited } = await gatewayInFront(upstream.url);
    const upstreamSide = upstream.nextSocket();
    const ws = await open(`${gw.base}/ws/a?access_token=${await signToken()}`);
    const app = await upstreamSide;
    const appClosed = new Promise<number>((resolve) => app.once('close', (code: number) => resolve(code)));
    let pongs = 0;
    ws.on('pong', () => pongs++);
    const done = closed(ws);
    // Bounded: 2000 frames, one write burst; before the fix every ping was answered and nothing closed.
    for (let i = 0; i < 2000; i++) send(ws);
    const { code, reason } = await within(done, 5000, 'the client close');
    expect(code).toBe(1008);
    expect(reason).toBe('control frame rate exceeded');
    // uWS answers pings before the handler sees them: at most the burst, plus the one that tipped it.
    expect(pongs).toBeLessThanOrEqual(21);
    expect(limited).toEqual(['client_to_upstream']);
    expect(await within(appClosed, 5000, 'the upstream close')).toBe(1001);
  });

  it('lets a client ping within the budget, answered, and keeps relaying', async () => {
    const upstream = await echoUpstream();
    const { gw, limited } = await gatewayInFront(upstream.url);
    const ws = await open(`${gw.base}/ws/a?access_token=${await signToken()}`);
    stops.push(async () => ws.terminate());
    const pongs: string[] = [];
    const allPongs = new Promise<void>((resolve) =>
      ws.on('pong', (data: Buffer) => {
        pongs.push(data.toString());
        if (pongs.length === 15) resolve();
      }),
    );
    for (let i = 0; i < 15; i++) ws.ping(`p${i}`);
    await within(allPongs, 5000, '15 pongs');
    expect(pongs).toEqual(Array.from({ length: 15 }, (_, i) => `p${i}`));
    const echoed = nextMessage(ws);
    ws.send('still here');
    expect((await within(echoed, 5000, 'the echo')).data.toString()).toBe('still here');
    expect(limited).toEqual([]);
  });
});

interface FloodingUpstream extends TestServer {
  /** Resolves with everything the gateway wrote to the upstream, once it ended the TCP connection. */
  received: Promise<Buffer>;
}

/**
 * A hostile upstream: answers the upgrade, stops reading, and writes `count` pings in one burst.
 * Once the gateway gave up (its close frame is queued) it reads everything the gateway wrote.
 */
async function floodingUpstream(count: number): Promise<FloodingUpstream> {
  let deliver: (bytes: Buffer) => void = () => {};
  const received = new Promise<Buffer>((resolve) => (deliver = resolve));
  const server = await startRawServer((socket: net.Socket, request) => {
    socket.pause();
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => deliver(Buffer.concat(chunks)));
    socket.on('close', () => deliver(Buffer.concat(chunks)));
    socket.write(acceptResponse(request.key));
    const ping = serverFrame(0x9, 'x'.repeat(125));
    socket.write(Buffer.concat(Array.from({ length: count }, () => ping)), () => {
      // Read only after the whole flood was taken by the gateway.
      socket.resume();
    });
  });
  stops.push(() => server.close());
  return { ...server, received };
}

function frames(bytes: Buffer): Array<{ opcode: number; payload: Buffer }> {
  const out: Array<{ opcode: number; payload: Buffer }> = [];
  let rest = bytes;
  for (let f = parseClientFrame(rest); f !== null; f = parseClientFrame(rest)) {
    out.push({ opcode: f.opcode, payload: f.payload });
    rest = rest.subarray(f.size);
  }
  return out;
}

describe.each(['lean', 'ws'] as const)('upstream ping flood on the %s leg', (leg) => {
  it('fails the upstream with 1008 after a bounded number of pongs, and the client gets 1014', async () => {
    const upstream = await floodingUpstream(5000);
    const { gw, limited, upstreamErrors } = await gatewayInFront(upstream.url.replace(/\/$/, ''), leg);
    const ws = await open(`${gw.base}/ws/a?access_token=${await signToken()}`);
    const { code, reason } = await within(closed(ws), 5000, 'the client close');
    expect(code).toBe(1014);
    expect(reason).toBe('upstream control frame rate exceeded');
    const wire = frames(await within(upstream.received, 5000, 'the upstream to see the end'));
    const pongs = wire.filter((f) => f.opcode === 0xa);
    // 5000 pings arrived; the output the upstream was sent stays at a few coalesced pongs (≤ the
    // burst of 20), then the close frame: nothing queued in proportion to the flood.
    expect(pongs.length).toBeLessThanOrEqual(20);
    const close = wire.find((f) => f.opcode === 0x8);
    expect(close?.payload.readUInt16BE(0)).toBe(1008);
    expect(limited).toEqual(['upstream_to_client']);
    expect(upstreamErrors).toEqual(['control_flood']);
  });
});
