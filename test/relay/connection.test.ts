import type { WebSocket } from 'uWebSockets.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { RawConfig } from '../../src/config/schema.ts';
import { Connection, type UserData } from '../../src/relay/connection.ts';
import type { UpstreamConnection } from '../../src/relay/upstream-types.ts';
import type { ConnectionObservation, ConnectionSummary, RouteCounters } from '../../src/telemetry/observer.ts';

/**
 * Connection between two fake legs: the uWS client socket and the upstream connection are plain
 * objects that record what the relay does to them, so each rule of the pump is checked on its own
 * (the real-socket suites in test/gateway cover the same rules end to end).
 */
class FakeClient {
  sent: Array<[string, boolean]> = [];
  ended: [number, string] | null = null;
  closedHard = false;
  buffered = 0;
  /** What uWS `send` reports: 1 written, 0 buffered (backpressure), 2 dropped. */
  sendStatus = 1;
  corks = 0;

  asWs(): WebSocket<UserData> {
    return {
      cork: (fn: () => void) => {
        this.corks++;
        fn();
      },
      send: (data: Uint8Array | string, isBinary: boolean) => {
        this.sent.push([Buffer.from(data).toString(), isBinary]);
        return this.sendStatus;
      },
      getBufferedAmount: () => this.buffered,
      end: (code: number, reason: string) => (this.ended = [code, reason]),
      close: () => (this.closedHard = true),
    } as unknown as WebSocket<UserData>;
  }
}

class FakeUpstream implements UpstreamConnection {
  protocol = '';
  bufferedAmount = 0;
  /** What `send` reports: false when over the high-water mark. */
  accept = true;
  sent: Array<[string, boolean]> = [];
  closedWith: [number, string] | null = null;
  paused = false;

  send(data: ArrayBuffer | Uint8Array, isBinary: boolean): boolean {
    this.sent.push([Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data).toString(), isBinary]);
    return this.accept;
  }
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
  close(code: number, reason: string): void {
    this.closedWith = [code, reason];
  }
  terminate(): void {}
}

class Recorder implements ConnectionObservation {
  events: string[] = [];
  summary: ConnectionSummary | null = null;
  opened(): void {
    this.events.push('opened');
  }
  rateLimited(action: string): void {
    this.events.push(`rate:${action}`);
  }
  backpressure(direction: string, action: string): void {
    this.events.push(`bp:${direction}:${action}`);
  }
  controlFramesLimited(direction: string): void {
    this.events.push(`control:${direction}`);
  }
  upstreamFailed(kind: string): void {
    this.events.push(`upstream:${kind}`);
  }
  closed(summary: ConnectionSummary): void {
    this.events.push('closed');
    this.summary = summary;
  }
}

const ab = (text: string): ArrayBuffer => new Uint8Array(Buffer.from(text)).buffer;

interface Rig {
  conn: Connection;
  client: FakeClient;
  upstream: FakeUpstream;
  telemetry: Recorder;
  counters: RouteCounters;
  released: () => number;
  ended: () => number;
}

function rig(raw: RawConfig = {}, tokenExpiresAtMs: number | null = null, open = true): Rig {
  const config = parseConfig({ routes: [{ path: '/ws/', upstream: 'ws://127.0.0.1:1/ws/', allowAnonymous: true }], ...raw });
  const counters = { messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 };
  let released = 0;
  let ended = 0;
  const conn = new Connection({
    config,
    counters,
    release: () => released++,
    tokenExpiresAtMs,
    onEnded: () => ended++,
  });
  const telemetry = new Recorder();
  const upstream = new FakeUpstream();
  const client = new FakeClient();
  conn.attachUpstream(upstream);
  conn.accepted(telemetry);
  if (open) conn.attach(client.asWs());
  return { conn, client, upstream, telemetry, counters, released: () => released, ended: () => ended };
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Connection: relaying', () => {
  it('relays both ways with opcodes, counts, and walks admitted → open', () => {
    const { conn, client, upstream, telemetry, counters } = rig({}, null, false);
    expect(conn.state).toBe('admitted');
    conn.attach(client.asWs());
    expect(conn.state).toBe('open');
    conn.fromClient(ab('hi'), false);
    conn.fromClient(ab('bin'), true);
    conn.upstreamHandlers.batch(() => conn.upstreamHandlers.onMessage(Buffer.from('yo'), false));
    expect(upstream.sent).toEqual([
      ['hi', false],
      ['bin', true],
    ]);
    expect(client.sent).toEqual([['yo', false]]);
    expect(client.corks).toBeGreaterThan(0);
    expect(counters).toEqual({ messagesIn: 2, messagesOut: 1, bytesIn: 5, bytesOut: 2 });
    expect(telemetry.events).toEqual(['opened']);
  });

  it('holds upstream messages that arrive before the client opens and delivers them first, in order', () => {
    const { conn, client } = rig({}, null, false);
    conn.upstreamHandlers.onMessage(Buffer.from('early-1'), false);
    conn.upstreamHandlers.onMessage(Buffer.from('early-2'), true);
    expect(client.sent).toEqual([]);
    conn.attach(client.asWs());
    conn.upstreamHandlers.onMessage(Buffer.from('late'), false);
    expect(client.sent).toEqual([
      ['early-1', false],
      ['early-2', true],
      ['late', false],
    ]);
  });

  it('closes the upstream at once when it is attached after the connection ended (dial came back after an abort)', () => {
    const { conn } = rig({}, null, false);
    const late = rig({}, null, false);
    late.conn.abandon();
    const upstream = new FakeUpstream();
    late.conn.attachUpstream(upstream);
    expect(late.conn.state).toBe('closed');
    expect(upstream.closedWith).toEqual([1001, 'client went away']);
    expect(conn.state).toBe('admitted');
  });
});

describe('Connection: backpressure', () => {
  it('pauses the upstream for a slow client, resumes it once drained, and counts the pause', () => {
    const { conn, client, upstream, telemetry } = rig({ backpressure: { highWaterBytes: 100 } });
    client.sendStatus = 0;
    client.buffered = 500;
    conn.upstreamHandlers.onMessage(Buffer.from('x'), false);
    expect(upstream.paused).toBe(true);
    expect(telemetry.events).toContain('bp:upstream_to_client:pause');
    client.buffered = 50;
    conn.clientDrained();
    expect(upstream.paused).toBe(false);
    vi.advanceTimersByTime(60_000);
    expect(conn.state).toBe('open');
  });

  it('closes with 4102 when the client stays over the mark for maxStallMs', () => {
    const { conn, client, upstream, telemetry } = rig({ backpressure: { highWaterBytes: 100, maxStallMs: 1000 } });
    client.sendStatus = 0;
    client.buffered = 500;
    conn.upstreamHandlers.onMessage(Buffer.from('x'), false);
    vi.advanceTimersByTime(999);
    expect(client.ended).toBeNull();
    vi.advanceTimersByTime(1);
    expect(client.ended).toEqual([4102, 'client too slow']);
    expect(conn.state).toBe('closing');
    expect(upstream.closedWith?.[0]).toBe(1001);
    expect(telemetry.events).toContain('bp:upstream_to_client:close');
  });

  it('closes with 4102 at once when uWS dropped a message (send status 2), never losing it quietly', () => {
    const { conn, client } = rig();
    client.sendStatus = 2;
    conn.upstreamHandlers.onMessage(Buffer.from('x'), false);
    expect(client.ended).toEqual([4102, 'client too slow']);
  });

  it('gives a slow upstream maxStallMs, and closes with 4102 past maxBufferedBytes at once', () => {
    const stalled = rig({ backpressure: { maxStallMs: 500 } });
    stalled.upstream.accept = false;
    stalled.conn.fromClient(ab('a'), false);
    vi.advanceTimersByTime(499);
    expect(stalled.client.ended).toBeNull();
    stalled.conn.upstreamHandlers.onDrain();
    vi.advanceTimersByTime(10_000);
    expect(stalled.client.ended).toBeNull();

    const full = rig({ backpressure: { highWaterBytes: 500, maxBufferedBytes: 1000 } });
    full.upstream.accept = false;
    full.upstream.bufferedAmount = 2000;
    full.conn.fromClient(ab('a'), false);
    expect(full.client.ended).toEqual([4102, 'upstream too slow']);
    expect(full.telemetry.events).toContain('bp:client_to_upstream:close');
  });
});

describe('Connection: limits', () => {
  it('closes with 4129 when the message rate runs dry and the action is close', () => {
    const { conn, client, upstream, telemetry } = rig({ messages: { rate: { perMinute: 60, burst: 2, action: 'close' } } });
    for (const m of ['1', '2', '3', '4']) conn.fromClient(ab(m), false);
    expect(upstream.sent.map(([m]) => m)).toEqual(['1', '2']);
    expect(client.ended).toEqual([4129, 'message rate exceeded']);
    expect(telemetry.events.filter((e) => e.startsWith('rate:'))).toEqual(['rate:close']);
  });

  it('closes with 1009 for a message over messages.maxBytes', () => {
    const { conn, client, upstream } = rig({ messages: { maxBytes: 4 } });
    conn.fromClient(ab('12345'), false);
    expect(upstream.sent).toEqual([]);
    expect(client.ended).toEqual([1009, 'message too big']);
  });

  it('closes with 1008 on a ping flood from the client', () => {
    const { conn, client, telemetry } = rig({ messages: { controlFramesPerSec: 2 } });
    for (let i = 0; i < 5; i++) conn.controlFromClient();
    expect(client.ended).toEqual([1008, 'control frame rate exceeded']);
    expect(telemetry.events).toContain('control:client_to_upstream');
  });

  it('closes with 4201 when the connection reaches server.maxLifetimeSec', () => {
    const { client, upstream } = rig({ server: { maxLifetimeSec: 60 } });
    vi.advanceTimersByTime(59_999);
    expect(client.ended).toBeNull();
    vi.advanceTimersByTime(1);
    expect(client.ended).toEqual([4201, 'connection lifetime reached']);
    expect(upstream.closedWith).toEqual([1001, 'wsguard: connection lifetime reached']);
  });

  it('closes with 4200 when the token expires, before a later lifetime limit', () => {
    const { client } = rig({ server: { maxLifetimeSec: 3600 } }, Date.now() + 30_000);
    vi.advanceTimersByTime(30_000);
    expect(client.ended).toEqual([4200, 'token expired']);
  });
});

describe('Connection: close codes each way', () => {
  it.each([
    [1000, 1000],
    [1005, 1000], // no status code → a normal close
    [1011, 1011],
    [4000, 4000],
    [1006, 1014], // the app dropped TCP: bad gateway
  ])('tells the client %i → %i when the upstream closes', (fromUpstream, toClient) => {
    const { conn, client, telemetry } = rig();
    conn.upstreamHandlers.onClose(fromUpstream, 'why');
    expect(client.ended?.[0]).toBe(toClient);
    expect(telemetry.events.includes('upstream:abnormal_close')).toBe(fromUpstream === 1006);
  });

  it('tells the client 1014 with the reason when the leg failed the upstream, counting the kind', () => {
    const protocol = rig();
    protocol.conn.upstreamHandlers.onClose(1002, 'reserved bits set', true);
    expect(protocol.client.ended).toEqual([1014, 'upstream reserved bits set']);
    expect(protocol.telemetry.events).toContain('upstream:protocol');

    const flood = rig();
    flood.conn.upstreamHandlers.onClose(1008, 'control frame rate exceeded', true);
    expect(flood.client.ended?.[0]).toBe(1014);
    expect(flood.telemetry.events).toEqual(expect.arrayContaining(['control:upstream_to_client', 'upstream:control_flood']));
  });

  it.each([
    [1000, 1000],
    [1005, 1000],
    [1006, 1001], // the client vanished (or uWS folded its 1012–3999 code into 1006)
    [4000, 4000],
  ])('tells the upstream %i → %i when the client closes, and ends: slot back, telemetry closed once', (fromClient, toUpstream) => {
    const { conn, upstream, telemetry, released, ended } = rig();
    conn.clientClosed(fromClient, 'bye');
    conn.clientClosed(fromClient, 'bye');
    expect(upstream.closedWith?.[0]).toBe(toUpstream);
    expect(conn.state).toBe('closed');
    expect(released()).toBe(1);
    expect(ended()).toBe(1);
    expect(telemetry.events.filter((e) => e === 'closed')).toHaveLength(1);
    expect(telemetry.summary).toMatchObject({ code: fromClient, initiator: 'client' });
  });

  it('does not count an abnormal upstream close that answers our own close', () => {
    const { conn, telemetry } = rig();
    conn.close(1001, 'server draining', 'gateway');
    conn.upstreamHandlers.onClose(1006, '');
    expect(telemetry.events).not.toContain('upstream:abnormal_close');
  });

  it('delivers an upstream close that came before the client opened at open', () => {
    const { conn, client } = rig({}, null, false);
    conn.upstreamHandlers.onClose(4000, 'early');
    expect(conn.state).toBe('admitted');
    conn.attach(client.asWs());
    expect(client.ended).toEqual([4000, 'early']);
  });

  it('cuts a client that never answers its close frame after the grace period', () => {
    const { conn, client } = rig();
    conn.close(1001, 'server draining', 'gateway');
    expect(client.closedHard).toBe(false);
    vi.advanceTimersByTime(5_000);
    expect(client.closedHard).toBe(true);
  });
});
