import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { LimitStore } from '../../src/limits/limit-store.ts';
import { MemoryLimitStore } from '../../src/limits/memory-store.ts';
import { dialerFor } from '../../src/relay/dialers.ts';
import type { UpstreamHandlers } from '../../src/relay/upstream-types.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { openRawRequest, rawRequest, startHangingUpstream, type HangingUpstream } from './raw-http.ts';

/**
 * Dials that outlive their handshake. The upstream here accepts TCP and never answers, so without
 * cancellation its connection would stay open until upstream.dialTimeoutMs.
 */

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function hanging(): Promise<HangingUpstream> {
  const up = await startHangingUpstream();
  cleanups.push(() => up.close());
  return up;
}

async function gateway(
  upstreamPort: number,
  overrides: Parameters<typeof startTestGateway>[1] = {},
  options: Parameters<typeof startTestGateway>[2] = {},
): Promise<TestGateway> {
  const gw = await startTestGateway(`ws://127.0.0.1:${upstreamPort}`, overrides, options);
  cleanups.push(() => gw.close());
  return gw;
}

/** Resolves with the ms between now and the peer closing the socket; rejects past `boundMs`. */
function closedWithin(socket: Socket, boundMs: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    if (socket.destroyed || socket.readableEnded) return resolve(0);
    const timer = setTimeout(() => reject(new Error(`upstream TCP connection still open after ${boundMs} ms`)), boundMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - started);
    });
    socket.resume();
  });
}

const noHandlers: UpstreamHandlers = { onMessage: () => undefined, onClose: () => undefined, onDrain: () => undefined, batch: (d) => d() };

describe.each(['lean', 'ws'])('the %s leg honours an AbortSignal while dialling', (leg) => {
  it('closes its TCP connection and rejects as soon as the signal aborts', async () => {
    const up = await hanging();
    const abort = new AbortController();
    const dial = dialerFor(leg)(
      {
        url: new URL(`ws://127.0.0.1:${up.port}/ws/`),
        headers: {},
        protocols: [],
        timeoutMs: 30_000,
        maxPayloadBytes: 1024,
        signal: abort.signal,
      },
      noHandlers,
    );
    const outcome = dial.then(
      () => 'resolved',
      (err: { code?: string }) => err.code,
    );
    const socket = await up.nextSocket();
    abort.abort();
    expect(await outcome).toBe('upstream_unavailable');
    await closedWithin(socket, 5_000);
  });

  it('rejects at once with a signal that has already aborted', async () => {
    const up = await hanging();
    const dial = dialerFor(leg)(
      {
        url: new URL(`ws://127.0.0.1:${up.port}/ws/`),
        headers: {},
        protocols: [],
        timeoutMs: 30_000,
        maxPayloadBytes: 1024,
        signal: AbortSignal.abort(),
      },
      noHandlers,
    );
    await expect(dial).rejects.toMatchObject({ code: 'upstream_unavailable' });
  });
});

describe.each(['lean', 'ws'] as const)('gateway with the %s leg', (client) => {
  it('cancels the dial when the client goes away: the upstream sees its connection closed long before dialTimeoutMs', async () => {
    const up = await hanging();
    const gw = await gateway(up.port, { upstream: { client, dialTimeoutMs: 20_000 }, server: { handshakeTimeoutMs: 20_000 } });
    const exchange = openRawRequest(gw.port, `/ws/a?access_token=${await signToken()}`, { timeoutMs: 30_000 });
    exchange.response.catch(() => undefined);
    const upstreamSide = await up.nextSocket();
    exchange.socket.destroy();
    await closedWithin(upstreamSide, 5_000);
  });

  it('cancels the dial when the handshake deadline passes', async () => {
    const up = await hanging();
    // Admission takes 2.5 s (a slow limit store), so the 3 s handshake deadline passes 0.5 s into the
    // dial, whose own 3 s timeout (it may not exceed the handshake deadline) would end it only 3 s in.
    const store: LimitStore = new MemoryLimitStore({ maxTrackedKeys: 100 });
    const tryAttempt = store.tryAttempt.bind(store);
    store.tryAttempt = async (...args) => {
      await new Promise((r) => setTimeout(r, 2_500));
      return tryAttempt(...args);
    };
    const gw = await gateway(up.port, { upstream: { client, dialTimeoutMs: 3_000 }, server: { handshakeTimeoutMs: 3_000 } }, { store });
    const response = rawRequest(gw.port, `/ws/a?access_token=${await signToken()}`, { timeoutMs: 15_000 });
    const upstreamSide = await up.nextSocket();
    const closedAfterMs = await closedWithin(upstreamSide, 10_000);
    const r = await response;
    expect(r.status).toBe(504);
    expect(JSON.parse(r.body).error).toBe('handshake_timeout');
    // Measured about 0.5 s with cancellation; without it the dial's own timer closes it at 3 s. The bound
    // leaves 1.5 s for a busy 2-core machine (it was 1 s with a 2 s timeout, which a loaded run can overrun).
    expect(closedAfterMs).toBeLessThan(2_000);
  });

  it('answers a handshake still dialling at drain with 503 draining + Retry-After, and closes the dial', async () => {
    const up = await hanging();
    const gw = await gateway(up.port, {
      upstream: { client, dialTimeoutMs: 20_000 },
      server: { handshakeTimeoutMs: 20_000, drainWindowMs: 3_000 },
    });
    const response = rawRequest(gw.port, `/ws/a?access_token=${await signToken()}`, { timeoutMs: 10_000 });
    const upstreamSide = await up.nextSocket();
    const drained = gw.server.gateway.drain();
    const r = await response;
    expect(r.status).toBe(503);
    expect(r.head).toMatch(/\r\nRetry-After: 3\r\n/i);
    expect(JSON.parse(r.body)).toMatchObject({ error: 'draining', retry_after_ms: 3_000 });
    await closedWithin(upstreamSide, 5_000);
    await drained;
  });
});
