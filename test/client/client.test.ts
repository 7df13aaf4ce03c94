import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { WsguardClient } from '../../src/client/index.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { closedPort, startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { startClient, type Recorder } from './helpers.ts';

/**
 * wsguard/client against a real gateway (startTestGateway) and a real `ws` upstream, over the `ws`
 * package in Node: each close-code range of docs/contracts.md, Retry-After, token refresh on 4200,
 * the bounded queue, drain, heartbeat and giving up.
 */
const clients: WsguardClient[] = [];
const stops: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const s of stops.splice(0).reverse()) await s();
});

/** A gateway (loose attempt limit: these tests reconnect on purpose) and its echo upstream. */
async function setup(overrides: Record<string, unknown> = {}): Promise<{ gw: TestGateway; upstream: TestUpstream; url: string }> {
  const upstream = await startEchoUpstream({ select: () => false });
  stops.push(() => upstream.close());
  const gw = await startTestGateway(upstream.url, { limits: { attempts: { max: 1000 } }, ...overrides });
  stops.push(() => gw.close());
  return { gw, upstream, url: `${gw.base}/ws/echo` };
}

const fast = { baseMs: 20, capMs: 200 };

describe('wsguard/client over ws against a real gateway', () => {
  it('connects with the token as a subprotocol entry, relays both ways, and the app never sees the token', async () => {
    const { url, upstream } = await setup();
    const token = await signToken({ sub: 'node-user' });
    const rec = startClient({ url, token: () => token }, clients);
    const opened = await rec.next('open');
    expect(opened).toEqual({ protocol: 'wsguard.auth', attempt: 0 });
    const echo = rec.next('message');
    expect(rec.client.send('hello')).toBe(true);
    expect(String((await echo).data)).toBe('hello');
    const seen = upstream.handshakes.at(-1)!;
    expect(JSON.stringify(seen.headers)).not.toContain(token);
    expect(seen.headers['x-auth-sub']).toBe('node-user');
  });

  it('4000–4099 stops and surfaces the reason; no reconnect', async () => {
    const { url, upstream } = await setup();
    const token = await signToken();
    const up = upstream.nextSocket();
    const rec = startClient({ url, token: () => token, backoff: fast }, clients);
    await rec.next('open');
    (await up).close(4003, 'not for you');
    const giveup = await rec.next('giveup');
    expect(giveup).toMatchObject({ why: 'stopped', code: 4003, reason: 'not for you' });
    expect(rec.of('close')[0]!.decision.action).toBe('stop');
    expect(rec.of('reconnecting')).toEqual([]);
    expect(upstream.handshakes).toHaveLength(1);
  });

  it('4100–4199 waits the JSON reason’s retry_ms plus jitter, then reconnects', async () => {
    const { url, upstream } = await setup();
    const token = await signToken();
    const up = upstream.nextSocket();
    const rec = startClient({ url, token: () => token, backoff: { ...fast, hintJitter: 0.5 } }, clients);
    await rec.next('open');
    (await up).close(4150, JSON.stringify({ r: 'busy', retry_ms: 400 }));
    const r = await rec.next('reconnecting');
    expect(r).toMatchObject({ action: 'backoff', code: 4150, hintMs: 400, reason: 'close 4150 busy', attempt: 1 });
    expect(r.delayMs).toBeGreaterThanOrEqual(400);
    expect(r.delayMs).toBeLessThanOrEqual(600);
    const closedAt = Date.now();
    await rec.next('open');
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(380);
    expect(upstream.handshakes).toHaveLength(2);
  });

  it('other codes (1011) back off with the shared decorrelated policy and reconnect', async () => {
    const { url, upstream } = await setup();
    const up = upstream.nextSocket();
    const rec = startClient({ url, token: async () => signToken(), backoff: { baseMs: 50, capMs: 1000 } }, clients);
    await rec.next('open');
    (await up).close(1011, 'oops');
    const r = await rec.next('reconnecting');
    expect(r).toMatchObject({ action: 'backoff', code: 1011, attempt: 1 });
    // Decorrelated jitter's first draw: between base and 3 × base.
    expect(r.delayMs).toBeGreaterThanOrEqual(50);
    expect(r.delayMs).toBeLessThanOrEqual(150);
    await rec.next('open');
  });

  it('4200 (token expired on an open connection) asks for a fresh token and reconnects at once', async () => {
    const { url } = await setup();
    const calls: Array<{ attempt: number; refresh: boolean }> = [];
    const rec = startClient(
      {
        url,
        // The first token expires in 1 s: the gateway closes with 4200 (auth.closeOnExpiry).
        token: async (ctx) => {
          calls.push(ctx);
          return signToken({}, calls.length === 1 ? 1 : 300);
        },
        settleMs: 50,
        backoff: fast,
      },
      clients,
    );
    await rec.next('open');
    const reconnecting = rec.next('reconnecting', () => true, 5_000);
    const reopened = rec.next('open', () => true, 5_000);
    const closed = await rec.next('close', (e) => e.code === 4200, 5_000);
    expect(closed.decision).toMatchObject({ action: 'now', refreshToken: true });
    expect(await reconnecting).toMatchObject({ action: 'now', delayMs: 0, code: 4200 });
    await reopened;
    expect(calls).toEqual([
      { attempt: 0, refresh: false },
      { attempt: 1, refresh: true },
    ]);
  });

  it('a 429 handshake: reads the status and Retry-After, waits at least that long, and gets in once the slot frees', async () => {
    const { url } = await setup({ limits: { attempts: { max: 1000 }, concurrent: { max: 1, retryAfterSec: 1 } } });
    const token = await signToken();
    const first = startClient({ url, token: () => token }, clients);
    await first.next('open');
    const second = startClient({ url, token: () => token, backoff: { ...fast, hintJitter: 0.2 } }, clients);
    const r = await second.next('reconnecting');
    expect(r).toMatchObject({ status: 429, hintMs: 1000, reason: 'HTTP 429 conn_limit', action: 'backoff' });
    expect(r.delayMs).toBeGreaterThanOrEqual(1000);
    expect(r.delayMs).toBeLessThanOrEqual(1200);
    first.client.close();
    const opened = await second.next('open', () => true, 10_000);
    expect(opened.attempt).toBeGreaterThanOrEqual(1);
    // Never a tight loop: every retry waited at least the hint.
    for (const x of second.of('reconnecting')) expect(x.delayMs).toBeGreaterThanOrEqual(1000);
  });

  it('queues while disconnected, bounded: drop-oldest counts what it dropped; reject refuses', async () => {
    const { url } = await setup();
    const token = await signToken();
    const rec = startClient({ url, token: () => token, queue: { max: 3, overflow: 'drop-oldest' }, settleMs: 20 }, clients);
    for (const m of ['m1', 'm2', 'm3', 'm4', 'm5']) expect(rec.client.send(m)).toBe(true);
    expect(rec.client.queued).toBe(3);
    expect(rec.of('dropped')).toEqual([
      { count: 1, total: 1, why: 'queue_full' },
      { count: 1, total: 2, why: 'queue_full' },
    ]);
    await rec.next('message', () => rec.of('message').length === 3);
    expect(rec.of('message').map((e) => String(e.data))).toEqual(['m3', 'm4', 'm5']);

    const rej = startClient({ url, token: () => token, queue: { max: 1, overflow: 'reject' } }, clients);
    expect(rej.client.send('a')).toBe(true);
    expect(rej.client.send('b')).toBe(false);
    expect(rej.client.dropped).toBe(1);
    // close() with messages still queued drops them with an event, never silently.
    rej.client.close();
    expect(rej.of('dropped').at(-1)).toEqual({ count: 1, total: 2, why: 'closed' });
  });

  it('drain: 1001 reconnects at a random point of the window the gateway announces (retry_ms), to where the url function points', async () => {
    const a = await setup({ server: { drainWindowMs: 100 } });
    const b = await setup();
    let target = a.url;
    const token = await signToken();
    const recs: Recorder[] = [];
    const draws = [0.1, 0.5, 0.9];
    for (const d of draws)
      recs.push(startClient({ url: () => target, token: () => token, drainSpreadMs: 1_000, random: () => d, settleMs: 20 }, clients));
    await Promise.all(recs.map((r) => r.next('open')));
    target = b.url;
    const reconnects = recs.map((r) => r.next('reconnecting'));
    const reopened = recs.map((r) => r.next('open'));
    await a.gw.server.drain(100);
    const rs = await Promise.all(reconnects);
    // The gateway's 1001 carries {"r":"draining","retry_ms":100}: the announced window wins over drainSpreadMs.
    expect(rs.map((r) => [r.action, r.code, r.delayMs])).toEqual(draws.map((d) => ['drain', 1001, d * 100]));
    await Promise.all(reopened);
    expect(b.upstream.handshakes).toHaveLength(3);
  });

  it('a refused handshake (nothing listening) backs off and gives up after backoff.maxAttempts', async () => {
    const port = await closedPort();
    const rec = startClient({ url: `ws://127.0.0.1:${port}/ws/`, backoff: { baseMs: 20, capMs: 100, maxAttempts: 3 } }, clients);
    const giveup = await rec.next('giveup');
    expect(giveup).toMatchObject({ why: 'max_attempts', code: 1006, attempts: 3 });
    const delays = rec.of('reconnecting').map((r) => r.delayMs);
    expect(delays).toHaveLength(3);
    for (const d of delays) expect(d).toBeGreaterThanOrEqual(20);
  });

  it('heartbeat: a connection that stops answering pings is dropped and replaced', async () => {
    const { gw } = await setup();
    const proxy = await startFreezableProxy(gw.port);
    stops.push(() => proxy.close());
    const token = await signToken();
    const rec = startClient(
      { url: `ws://127.0.0.1:${proxy.port}/ws/echo`, token: () => token, heartbeat: { timeoutMs: 300, intervalMs: 100 }, backoff: fast },
      clients,
    );
    await rec.next('open');
    proxy.freezeAll();
    const closed = await rec.next('close', () => true, 5_000);
    expect(closed).toMatchObject({ code: 1006, reason: 'heartbeat timeout' });
    await rec.next('open', () => true, 5_000);
  });
});

/** A TCP relay whose current connections can be frozen (bytes stop both ways): a dead path, not a closed one. */
async function startFreezableProxy(targetPort: number): Promise<{ port: number; freezeAll(): void; close(): Promise<void> }> {
  const pairs: Array<[Socket, Socket]> = [];
  const server: Server = createServer((client) => {
    const target: Socket = connect(targetPort, '127.0.0.1');
    client.pipe(target);
    target.pipe(client);
    client.on('error', () => target.destroy());
    target.on('error', () => client.destroy());
    pairs.push([client, target]);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    freezeAll() {
      for (const [c, t] of pairs) {
        c.unpipe(t);
        t.unpipe(c);
        c.pause();
        t.pause();
      }
    },
    close: () =>
      new Promise<void>((r) => {
        for (const [c, t] of pairs) {
          c.destroy();
          t.destroy();
        }
        server.close(() => r());
      }),
  };
}
