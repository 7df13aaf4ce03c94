import { afterEach, describe, expect, it } from 'vitest';
import { SignJWT, jwtVerify } from 'jose';
import { createServer } from 'node:net';
import { runFlood } from '../../../cli/engine/flood.ts';
import { isCliError } from '../../../cli/cli-error.ts';
import { uwsEcho, wsServer, type TestServer } from '../helpers/servers.ts';
import { floodOptions } from '../helpers/flood-options.ts';

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});
async function track<T extends TestServer>(p: Promise<T>): Promise<T> {
  const s = await p;
  servers.push(s);
  return s;
}

describe('runFlood', () => {
  it('sends exactly what the server counts and receives every echo', async () => {
    const s = await track(uwsEcho());
    const r = await runFlood(floodOptions(s.url, { connections: 10, msgRate: 50, durationSec: 1.5 }));
    expect(r.connections.opened).toBe(10);
    expect(r.messages.sent).toBeGreaterThan(500);
    expect(s.counts.messages).toBe(r.messages.sent);
    expect(s.counts.bytes).toBe(r.messages.bytesOut);
    expect(r.messages.received).toBe(r.messages.sent);
    expect(r.messages.lost).toBe(0);
    expect(r.outcomes).toEqual({ completed: 10 });
    expect(r.latency.rtt.count).toBe(r.messages.sent);
    expect(r.series.length).toBeGreaterThanOrEqual(1);
  });

  it('measures RTT from the intended send time, so a 200 ms server stall reaches p99 (coordinated omission)', async () => {
    // The stall holds echoes without blocking the event loop (the client shares this process).
    let stallUntil = 0;
    let stalls = 0;
    const s = await track(
      wsServer({
        echo: false,
        onConnection: (ws) => {
          let n = 0;
          ws.on('message', (data: Buffer) => {
            n++;
            const now = Date.now();
            if (n === 200 && stalls === 0) {
              stalls++;
              stallUntil = Math.max(stallUntil, now + 200);
            }
            const wait = stallUntil - now;
            if (wait > 0) setTimeout(() => ws.send(data), wait);
            else ws.send(data);
          });
        },
      }),
    );
    // A window of one unanswered message: the stalled server holds the sender back, which is exactly
    // when a closed-loop measure forgets the messages it never got to send. Two connections at a
    // high rate: the stall costs the uncorrected measure two samples in ~1600, so it stays out of
    // its p99 even when a loaded machine adds a few stalls of its own; the corrected measure
    // charges the ~80 messages that could not leave during the stall.
    const r = await runFlood(floodOptions(s.url, { connections: 2, msgRate: 400, durationSec: 2, maxInFlight: 1 }));
    expect(stalls).toBe(1);
    expect(r.latency.rtt.max).toBeGreaterThanOrEqual(190);
    expect(r.latency.rtt.p99).toBeGreaterThanOrEqual(150);
    expect(r.latency.rttUncorrected.p99).toBeLessThan(100);
  });

  it('counts a 429 handshake rejection under rejected.429 with its Retry-After', async () => {
    const s = await track(wsServer({ reject: () => ({ status: 429, headers: { 'Retry-After': '7' } }) }));
    const r = await runFlood(floodOptions(s.url, { connections: 5, durationSec: 0.5 }));
    expect(r.outcomes).toEqual({ 'rejected.429': 5 });
    expect(r.connections.opened).toBe(0);
  });

  it('counts a 4100 close under closed.4100 with its reason', async () => {
    const s = await track(wsServer({ onConnection: (ws) => ws.close(4100, '{"r":"conn_limit","retry_ms":1000}') }));
    const r = await runFlood(floodOptions(s.url, { connections: 5, durationSec: 0.5 }));
    expect(r.outcomes).toEqual({ 'closed.4100': 5 });
    expect(r.outcomeDetails['closed.4100']).toEqual({ '{"r":"conn_limit","retry_ms":1000}': 5 });
  });

  it('separates admitted connections from those over a per-connection limit, and ends with 1001', async () => {
    const codes: number[] = [];
    const s = await track(
      wsServer({
        reject: (_req, n) => (n > 3 ? { status: 429, headers: { 'Retry-After': '1' } } : undefined),
        onConnection: (ws) => ws.on('close', (code) => codes.push(code)),
      }),
    );
    const r = await runFlood(floodOptions(s.url, { connections: 5, durationSec: 0.5 }));
    expect(r.outcomes).toEqual({ completed: 3, 'rejected.429': 2 });
    expect(codes).toEqual([1001, 1001, 1001]);
  });

  it('mints a JWT per user that a token-enforcing server accepts, and counts 401 for a wrong key', async () => {
    const secret = new TextEncoder().encode('test-secret');
    const subs = new Set<string>();
    const s = await track(
      wsServer({
        reject: () => undefined,
        onConnection: () => undefined,
      }),
    );
    await s.close();
    servers = [];
    const { createServer: createHttp } = await import('node:http');
    const { WebSocketServer } = await import('ws');
    const http = createHttp();
    const wss = new WebSocketServer({ noServer: true });
    http.on('upgrade', (req, socket, head) => {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      jwtVerify(token, secret, { algorithms: ['HS256'], audience: 'app', requiredClaims: ['exp'] }).then(
        ({ payload }) => {
          subs.add(String(payload.sub));
          wss.handleUpgrade(req, socket, head, (ws) => ws.on('close', () => undefined));
        },
        () => socket.end('HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error="invalid_token"\r\nContent-Length: 0\r\n\r\n'),
      );
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const url = `ws://127.0.0.1:${(http.address() as import('node:net').AddressInfo).port}/`;
    servers.push({
      url,
      port: 0,
      counts: { connections: 0, messages: 0, bytes: 0 },
      close: async () => {
        for (const c of wss.clients) c.terminate();
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
      },
    });
    const jwt = { alg: 'HS256' as const, secret: 'test-secret', claimsTemplate: '{"sub":"user-{{i}}","aud":"app"}', expSec: 60 };
    const ok = await runFlood(floodOptions(url, { connections: 4, durationSec: 0.5, auth: { jwt } }));
    expect(ok.outcomes).toEqual({ completed: 4 });
    expect([...subs].sort()).toEqual(['user-0', 'user-1', 'user-2', 'user-3']);
    const bad = await runFlood(floodOptions(url, { connections: 3, durationSec: 0.5, auth: { jwt: { ...jwt, secret: 'wrong' } } }));
    expect(bad.outcomes).toEqual({ 'rejected.401': 3 });
    void SignJWT;
  });

  it('names refused connections by errno', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as import('node:net').AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const r = await runFlood(floodOptions(`ws://127.0.0.1:${port}/`, { connections: 3, durationSec: 0.3 }));
    expect(r.outcomes).toEqual({ 'error.ECONNREFUSED': 3 });
  });

  it('opens connections at the arrival rate in the open model and closes each after its hold time', async () => {
    const s = await track(uwsEcho());
    const r = await runFlood(floodOptions(s.url, { arrivalRate: 20, holdSec: 0.2, durationSec: 1 }));
    // 20 due in 1 s; a late last tick on a loaded machine may start one or two fewer.
    expect(r.connections.attempts).toBeGreaterThanOrEqual(16);
    expect(r.connections.attempts).toBeLessThanOrEqual(21);
    expect(r.outcomes.completed).toBe(r.connections.attempts);
    expect(r.connections.peakOpen).toBeLessThanOrEqual(8);
  });

  it('follows ramp stages up and down', async () => {
    const s = await track(uwsEcho());
    const r = await runFlood(
      floodOptions(s.url, {
        stages: [
          { durationSec: 0.5, target: 20 },
          { durationSec: 0.5, target: 0 },
        ],
        durationSec: 1.2,
      }),
    );
    expect(r.connections.peakOpen).toBeGreaterThanOrEqual(15);
    expect(r.connections.peakOpen).toBeLessThanOrEqual(20);
    // Ramping down closes exactly the excess: no connection is closed early and then replaced.
    expect(r.connections.attempts).toBeLessThanOrEqual(20);
    expect(r.outcomes.completed).toBe(r.connections.attempts);
  });

  it('stops early on the kill switch when the error rate passes its limit', async () => {
    const s = await track(wsServer({ reject: () => ({ status: 503, headers: { 'Retry-After': '1' } }) }));
    const r = await runFlood(
      floodOptions(s.url, { arrivalRate: 40, durationSec: 5, killSwitch: { errorRate: 0.5, windowSec: 2, minAttempts: 10 } }),
    );
    expect(r.aborted?.reason).toMatch(/^kill switch: \d+ failures/);
    expect(r.aborted!.atSec).toBeLessThan(3);
    expect(r.outcomes['rejected.503']).toBe(r.connections.attempts);
  });

  it('pauses a connection whose send buffer fills and does not blame the generator for it', async () => {
    // The server stops reading: TCP backpressure reaches the client's send buffer.
    const s = await track(wsServer({ onConnection: (ws) => (ws as unknown as { _socket: import('node:net').Socket })._socket.pause() }));
    const r = await runFlood(
      floodOptions(s.url, {
        connections: 1,
        msgRate: 1000,
        durationSec: 1,
        payload: { sizeBytes: 16 * 1024 },
        maxBufferedBytes: 256 * 1024,
        saturation: { maxEventLoopP99Ms: 10_000, maxSendLagP99Ms: 50, minSentRatio: 0.97, maxFdShare: 0.9 },
      }),
    );
    expect(r.messages.sent).toBeGreaterThan(0);
    expect(r.messages.sent).toBeLessThan(900);
    expect(r.messages.received).toBe(0);
    // Not blamed on the generator: no verdict of its own saturation (a busy machine may still show late sends).
    expect(r.saturation.verdict, r.saturation.reasons.join('; ')).not.toBe('saturated');
  });

  it('refuses a run above a safety cap before sending anything', async () => {
    const err = await runFlood(
      floodOptions('ws://127.0.0.1:1/', {
        connections: 100,
        msgRate: 100,
        caps: { maxConnections: 1000, maxConnRate: 1000, maxMsgRate: 5000, maxDurationSec: 60 },
      }),
    ).catch((e: unknown) => e);
    expect(isCliError(err) && err.code).toBe('cap_exceeded');
  });
});
