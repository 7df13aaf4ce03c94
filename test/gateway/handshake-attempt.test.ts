import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AttemptResult, LimitStore } from '../../src/limits/limit-store.ts';
import { MemoryLimitStore } from '../../src/limits/memory-store.ts';
import { attempt, rejected } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Rejects when `promise` has not settled within `ms`: a bound on an awaited event, not a sleep. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not happen within ${ms} ms`)), ms)),
  );
  return Promise.race([promise, bound]).finally(() => clearTimeout(timer));
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setImmediate(r));
  }
}

/** A real memory store whose attempt check waits until the test lets it go (a slow Redis round trip). */
class GatedStore implements LimitStore {
  readonly inner = new MemoryLimitStore({ maxTrackedKeys: 1000 });
  readonly attemptEntered = deferred();
  readonly attemptGate = deferred();
  readonly attemptReleased = deferred();
  attemptsHeld = 0;
  slotCalls = 0;

  async tryAttempt(key: string, max: number, windowMs: number, nowMs: number): Promise<AttemptResult> {
    this.attemptEntered.resolve();
    await this.attemptGate.promise;
    const result = await this.inner.tryAttempt(key, max, windowMs, nowMs);
    if (result.ok) this.attemptsHeld++;
    return result;
  }
  async releaseAttempt(key: string, id: string): Promise<void> {
    this.attemptsHeld--;
    await this.inner.releaseAttempt(key, id);
    this.attemptReleased.resolve();
  }
  async tryAcquireSlot(key: string, max: number): Promise<boolean> {
    this.slotCalls++;
    return this.inner.tryAcquireSlot(key, max);
  }
  releaseSlot(key: string): Promise<void> {
    return this.inner.releaseSlot(key);
  }
  size(): number {
    return this.inner.size();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

let gw: TestGateway | null = null;
let upstream: TestUpstream | null = null;
let socket: Socket | null = null;

afterEach(async () => {
  socket?.destroy();
  await gw?.close();
  await upstream?.close();
  gw = null;
  upstream = null;
  socket = null;
});

describe('HandshakeAttempt', () => {
  it('stops admission at a client abort during a slow policy: later policies do not run, the attempt is given back, nothing is dialled', async () => {
    upstream = await startEchoUpstream();
    const store = new GatedStore();
    gw = await startTestGateway(
      upstream.url,
      { routes: [{ path: '/ws/', upstream: `${upstream.url}/ws/`, allowAnonymous: true }] },
      { store },
    );
    const gateway = gw.server.gateway;

    socket = connect(gw.port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise<void>((r) => socket!.once('connect', () => r()));
    socket.write(
      'GET /ws/ HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await within(store.attemptEntered.promise, 5_000, 'the attempt check');
    expect(gateway.pendingCount).toBe(1);

    // The client goes away while the store has not answered; uWS reports the abort (pending drops to 0).
    socket.destroy();
    await until(() => gateway.pendingCount === 0, 5_000, 'the abort');
    store.attemptGate.resolve();

    // The attempt recorded after the abort is given back; the concurrent-limit policy never ran.
    await within(store.attemptReleased.promise, 5_000, 'the attempt release');
    expect(store.attemptsHeld).toBe(0);
    expect(store.slotCalls).toBe(0);
    expect(upstream.handshakes).toHaveLength(0);
    expect(gateway.connectionCount).toBe(0);
  });

  it('stops admission at the handshake deadline the same way: 504, later policies do not run, the attempt is given back', async () => {
    upstream = await startEchoUpstream();
    const store = new GatedStore();
    gw = await startTestGateway(
      upstream.url,
      {
        server: { handshakeTimeoutMs: 300 },
        upstream: { dialTimeoutMs: 300 },
        routes: [{ path: '/ws/', upstream: `${upstream.url}/ws/`, allowAnonymous: true }],
      },
      { store },
    );
    const answer = attempt(`${gw.base}/ws/`);
    await within(store.attemptEntered.promise, 5_000, 'the attempt check');
    const refused = rejected(await within(answer, 10_000, 'the 504'));
    expect(refused.status).toBe(504);
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'handshake_timeout' });
    store.attemptGate.resolve();
    await within(store.attemptReleased.promise, 5_000, 'the attempt release');
    expect(store.attemptsHeld).toBe(0);
    expect(store.slotCalls).toBe(0);
    expect(upstream.handshakes).toHaveLength(0);
  });
});
