import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { RawConfig } from '../../src/config/schema.ts';
import type { LimitStore } from '../../src/limits/limit-store.ts';
import {
  createNoopObserver,
  NOOP_CONNECTION,
  NOOP_HANDSHAKE,
  type ConnectionObservation,
  type GatewayObserver,
} from '../../src/telemetry/observer.ts';
import { attempt, closed, nextMessage, open, rejected } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

let upstream: TestUpstream | null = null;
let gw: TestGateway | null = null;

afterEach(async () => {
  await gw?.close();
  await upstream?.close();
  gw = null;
  upstream = null;
});

async function setup(overrides: RawConfig = {}, observer?: GatewayObserver) {
  upstream = await startEchoUpstream();
  gw = await startTestGateway(upstream.url, overrides, observer ? { observer } : {});
  return { upstream, gw, url: `${gw.base}/ws/a?access_token=${await signToken()}` };
}

function recordingObserver() {
  const events: string[] = [];
  const connection: ConnectionObservation = {
    ...NOOP_CONNECTION,
    rateLimited: (action) => events.push(`rate:${action}`),
    backpressure: (direction, action) => events.push(`bp:${direction}:${action}`),
  };
  const observer: GatewayObserver = {
    ...createNoopObserver(),
    handshakeStarted: () => ({ ...NOOP_HANDSHAKE, accepted: () => connection }),
  };
  return { events, observer };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('message rate limit', () => {
  it("closes with 4129 on the first message over the bucket when action is 'close'", async () => {
    const { events, observer } = recordingObserver();
    const { gw, upstream } = await setup({ messages: { rate: { perMinute: 60, burst: 5, action: 'close' } } }, observer);
    const next = upstream.nextSocket();
    const ws = await open(`${gw.base}/ws/a?access_token=${await signToken()}`);
    const relayed: string[] = [];
    (await next).on('message', (d) => relayed.push(d.toString()));
    const done = closed(ws);
    for (let i = 0; i < 8; i++) ws.send(`m${i}`);
    expect(await done).toEqual({ code: 4129, reason: 'message rate exceeded' });
    expect(relayed).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(events).toEqual(['rate:close']);
  });

  it("drops over-limit messages with one notice when action is 'drop', and the connection lives on", async () => {
    const { events, observer } = recordingObserver();
    const { url, upstream } = await setup({ messages: { rate: { perMinute: 600, burst: 3, action: 'drop' } } }, observer);
    const ws = await open(url);
    const got: string[] = [];
    ws.on('message', (d) => got.push(d.toString()));
    for (let i = 0; i < 6; i++) ws.send(`m${i}`);
    await sleep(300);
    expect(got.filter((m) => m.startsWith('m'))).toEqual(['m0', 'm1', 'm2']);
    expect(got.filter((m) => m.includes('wsguard.rate_limited'))).toHaveLength(1);
    expect(events).toEqual(['rate:drop', 'rate:drop', 'rate:drop']);
    // 600/min refills one token every 100 ms: after the pause the connection relays again.
    ws.send('later');
    expect((await nextMessage(ws)).data.toString()).toBe('later');
    expect(upstream.sockets[0]!.readyState).toBe(WebSocket.OPEN);
    ws.close();
  });
});

describe('message size', () => {
  it('relays a message of exactly maxBytes and closes with 1009 on maxBytes + 1', async () => {
    const { url } = await setup({ messages: { maxBytes: 1000 } });
    const ws = await open(url);
    const echo = nextMessage(ws);
    ws.send(Buffer.alloc(1000, 7));
    expect((await echo).data.length).toBe(1000);
    const done = closed(ws);
    ws.send(Buffer.alloc(1001, 7));
    expect((await done).code).toBe(1009);
  });
});

describe('token expiry', () => {
  it('closes an open connection with 4200 when its token expires', async () => {
    upstream = await startEchoUpstream();
    gw = await startTestGateway(upstream.url);
    // exp is in whole seconds, so this token expires 2–3 s from now: long enough to be admitted on a
    // busy machine, and the close is awaited (bounded by the test timeout), not timed.
    const exp = Math.floor(Date.now() / 1000) + 3;
    const token = await signToken({ exp }, null);
    const ws = await open(`${gw.base}/ws/a?access_token=${token}`);
    const c = await closed(ws);
    expect(c).toEqual({ code: 4200, reason: 'token expired' });
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
  });
});

describe('backpressure', () => {
  const bp = { highWaterBytes: 64 * 1024, maxStallMs: 400, maxBufferedBytes: 64 * 1024 * 1024 };
  const chunk = Buffer.alloc(16 * 1024, 1);
  // Loopback kernel buffers absorb several MiB before uWS sees any backpressure: send 16 MiB.
  const flood = 1024;

  it('pauses the upstream for a slow client and loses nothing once the client reads again', async () => {
    const { events, observer } = recordingObserver();
    const { gw, upstream } = await setup({ backpressure: { ...bp, maxStallMs: 5000 } }, observer);
    const next = upstream.nextSocket();
    const ws = await open(`${gw.base}/ws/a?access_token=${await signToken()}`);
    const up = await next;
    ws.pause();
    const n = flood;
    for (let i = 0; i < n; i++) up.send(Buffer.concat([Buffer.from(String(i).padStart(8, '0')), chunk]));
    // On a loaded machine the 16 MiB take a while to reach the gateway: wait for the pause, bounded.
    for (const until = Date.now() + 5000; !events.includes('bp:upstream_to_client:pause') && Date.now() < until;) await sleep(20);
    expect(events).toContain('bp:upstream_to_client:pause');
    let received = 0;
    let inOrder = true;
    const all = new Promise<void>((resolve) =>
      ws.on('message', (d: Buffer) => {
        if (Number(d.subarray(0, 8).toString()) !== received) inOrder = false;
        if (++received === n) resolve();
      }),
    );
    ws.resume();
    await all;
    expect(inOrder).toBe(true);
    expect(events).not.toContain('bp:upstream_to_client:close');
    ws.close();
  });

  it('closes a client that stays over the high-water mark with 4102, and tells the upstream 1001', async () => {
    const { events, observer } = recordingObserver();
    const { gw, upstream } = await setup({ backpressure: bp }, observer);
    const next = upstream.nextSocket();
    const ws = await open(`${gw.base}/ws/a?access_token=${await signToken()}`);
    const up = await next;
    const upClosed = new Promise<[number, string]>((r) => up.once('close', (c, reason) => r([c, reason.toString()])));
    ws.pause();
    for (let i = 0; i < flood; i++) up.send(chunk);
    const [code, reason] = await upClosed;
    expect(code).toBe(1001);
    expect(reason).toBe('wsguard: client too slow');
    expect(events).toEqual(['bp:upstream_to_client:pause', 'bp:upstream_to_client:close']);
    const done = closed(ws);
    ws.resume();
    expect((await done).code).toBe(4102);
  });

  it('closes with 4102 when the upstream stays too slow for the client', async () => {
    const { events, observer } = recordingObserver();
    const { gw, upstream } = await setup({ backpressure: bp, messages: { rate: { perMinute: 1e6, burst: 10_000 } } }, observer);
    const next = upstream.nextSocket();
    const ws = await open(`${gw.base}/ws/a?access_token=${await signToken()}`);
    const up = await next;
    up.pause();
    const done = closed(ws);
    for (let i = 0; i < flood && ws.readyState === WebSocket.OPEN; i++) ws.send(chunk);
    expect((await done).code).toBe(4102);
    expect(events).toContain('bp:client_to_upstream:close');
  });
});

describe('X-Forwarded-For trust', () => {
  it('keys limits and X-Forwarded-For on the client behind a trusted proxy, walking right to left', async () => {
    upstream = await startEchoUpstream();
    gw = await startTestGateway(upstream.url, {
      server: { trustedProxies: ['127.0.0.0/8', '10.0.0.0/8'] },
      limits: { concurrent: { max: 2 } },
    });
    const url = `${gw.base}/ws/a?access_token=${await signToken()}`;
    const via = (xff: string) => ({ headers: { 'x-forwarded-for': xff } });
    // The left-most entry is the client's own claim; 10.1.2.3 is a trusted hop; 203.0.113.9 is the client.
    const a1 = await open(url, [], via('1.1.1.1, 203.0.113.9, 10.1.2.3'));
    const a2 = await open(url, [], via('203.0.113.9'));
    expect(rejected(await attempt(url, [], via('9.9.9.9, 203.0.113.9'))).status).toBe(429);
    const b = await open(url, [], via('198.51.100.7'));
    expect(upstream.handshakes.map((h) => h.headers['x-forwarded-for'])).toEqual(['203.0.113.9', '203.0.113.9', '198.51.100.7']);
    for (const s of [a1, a2, b]) s.close();
  });
});

describe('connection lifetime and idle timeout', () => {
  it('closes a connection older than maxLifetimeSec with 4201', async () => {
    const { url } = await setup({ server: { maxLifetimeSec: 1 } });
    const ws = await open(url);
    const started = Date.now();
    expect(await closed(ws)).toEqual({ code: 4201, reason: 'connection lifetime reached' });
    expect(Date.now() - started).toBeGreaterThan(800);
  });

  it('keeps a silent client that answers pings, and drops one that does not', async () => {
    const { url } = await setup({ server: { idleTimeoutSec: 8 } });
    const answering = await open(url);
    const mute = await open(url, [], { autoPong: false });
    const muteClosed = closed(mute);
    const started = Date.now();
    // uWS checks timeouts on a coarse (4 s) tick and pings a silent socket before dropping it.
    expect((await muteClosed).code).toBe(1006);
    await new Promise((r) => setTimeout(r, Math.max(0, 10_000 - (Date.now() - started))));
    expect(answering.readyState).toBe(WebSocket.OPEN);
    answering.close();
  }, 30_000);
});

describe('limit store outage', () => {
  it('fails closed with 503 and Retry-After when the store errors', async () => {
    const { MemoryLimitStore } = await import('../../src/limits/memory-store.ts');
    const store = new MemoryLimitStore({ maxTrackedKeys: 100 });
    // A store behind I/O that fails (the Redis store's shape: a rejected Promise).
    (store as LimitStore).tryAttempt = () => Promise.reject(new Error('connection refused'));
    upstream = await startEchoUpstream();
    gw = await startTestGateway(upstream.url, {}, { store });
    const r = rejected(await attempt(`${gw.base}/ws/a?access_token=${await signToken()}`));
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('5');
    expect(JSON.parse(r.body).error).toBe('store_unavailable');
  });
});
