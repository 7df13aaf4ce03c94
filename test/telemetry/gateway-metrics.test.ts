import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_ROUTES, PROMETHEUS_NAMES as P, REASONS } from '../../src/telemetry/names.ts';
import type { ConnectionObservation, GatewayObserver } from '../../src/telemetry/observer.ts';
import { scrape, startTestTelemetry, type TestTelemetry } from './helpers.ts';

/** An accepted connection's telemetry handle on `route`. */
function accepted(o: GatewayObserver, route: string): ConnectionObservation {
  return o.handshakeStarted(route, undefined, undefined).accepted();
}

/** An open connection's handle (counted as accepted and active). */
function opened(o: GatewayObserver, route: string): ConnectionObservation {
  const c = accepted(o, route);
  c.opened();
  return c;
}

describe('gateway metrics scraped over HTTP', () => {
  let t: TestTelemetry;
  beforeEach(async () => {
    t = await startTestTelemetry();
  });
  afterEach(() => t.close());

  it('counts accepted, active and closed connections per route with exact values', async () => {
    const o = t.observer;
    const chat = [1, 2, 3].map(() => opened(o, '/chat'));
    opened(o, '/feed');
    chat[0]!.closed({ code: 1000, initiator: 'client', durationMs: 250, messagesIn: 0, messagesOut: 0 });
    chat[1]!.closed({ code: 1001, initiator: 'gateway', durationMs: 4000, messagesIn: 0, messagesOut: 0 });
    // A second close of the same connection counts nothing.
    chat[1]!.closed({ code: 1001, initiator: 'gateway', durationMs: 4000, messagesIn: 0, messagesOut: 0 });
    const s = await scrape(t.url);
    expect(s.value(P.connectionsAccepted, { route: '/chat' })).toBe(3);
    expect(s.value(P.connectionsAccepted, { route: '/feed' })).toBe(1);
    expect(s.value(P.connectionsActive, { route: '/chat' })).toBe(1);
    expect(s.value(P.connectionsActive, { route: '/feed' })).toBe(1);
    expect(s.find(P.connectionsClosed).map((x) => x.labels)).toEqual([
      { route: '/chat', code: '1000', initiator: 'client' },
      { route: '/chat', code: '1001', initiator: 'gateway' },
    ]);
    expect(s.value(`${P.connectionDuration}_count`, { route: '/chat' })).toBe(2);
    expect(s.value(`${P.connectionDuration}_sum`, { route: '/chat' })).toBeCloseTo(4.25, 9);
    expect(s.value(`${P.connectionDuration}_bucket`, { route: '/chat', le: '0.5' })).toBe(1);
    expect(s.value(`${P.connectionDuration}_bucket`, { route: '/chat', le: '5' })).toBe(2);
    // Buckets reach hours: a working-day connection is not lumped into +Inf.
    expect(s.find(`${P.connectionDuration}_bucket`, { route: '/chat' }).map((x) => x.labels.le)).toContain('28800');
  });

  it('serves rejections by reason and decision: every enforced reason from 0, other and dry runs once they happen', async () => {
    const o = t.observer;
    o.routeCounters('/chat');
    let s = await scrape(t.url);
    const enforced = s.find(P.connectionsRejected, { route: '/chat' });
    expect(enforced.map((x) => x.labels.reason).sort()).toEqual([...REASONS].sort());
    expect(enforced.every((x) => x.labels.decision === 'enforced' && x.value === 0)).toBe(true);
    expect(s.value(P.connectionsAccepted, { route: '/chat' })).toBe(0);
    for (let i = 0; i < 3; i++) o.rejected('/chat', 'attempt_limit', 'enforced', '192.0.2.1');
    o.rejected('/chat', 'origin', 'dry_run', '192.0.2.1');
    o.rejected('/chat', 'not-a-reason', 'enforced', '192.0.2.1');
    s = await scrape(t.url);
    expect(s.value(P.connectionsRejected, { route: '/chat', reason: 'attempt_limit', decision: 'enforced' })).toBe(3);
    expect(s.value(P.connectionsRejected, { route: '/chat', reason: 'origin', decision: 'dry_run' })).toBe(1);
    expect(s.value(P.connectionsRejected, { route: '/chat', reason: 'other', decision: 'enforced' })).toBe(1);
    expect(s.find(P.connectionsRejected, { route: '/chat', decision: 'dry_run' })).toHaveLength(1);
  });

  it('reads per-message counts from RouteCounters at scrape time', async () => {
    const c = t.observer.routeCounters('/chat');
    expect(t.observer.routeCounters('/chat')).toBe(c);
    c.messagesIn += 5;
    c.bytesIn += 500;
    c.messagesOut += 7;
    c.bytesOut += 70;
    let s = await scrape(t.url);
    expect(s.value(P.messages, { route: '/chat', direction: 'client_to_upstream' })).toBe(5);
    expect(s.value(P.messages, { route: '/chat', direction: 'upstream_to_client' })).toBe(7);
    expect(s.value(P.messageBytes, { route: '/chat', direction: 'client_to_upstream' })).toBe(500);
    expect(s.value(P.messageBytes, { route: '/chat', direction: 'upstream_to_client' })).toBe(70);
    c.messagesIn += 1;
    s = await scrape(t.url);
    expect(s.value(P.messages, { route: '/chat', direction: 'client_to_upstream' })).toBe(6);
  });

  it('labels rejections with route, reason and decision, folding unknown reasons into other', async () => {
    const o = t.observer;
    o.rejected('/chat', 'conn_limit', 'enforced', '203.0.113.1');
    o.rejected('/chat', 'conn_limit', 'enforced', '203.0.113.1');
    o.rejected('/chat', 'auth', 'dry_run', '203.0.113.2');
    o.rejected('/chat', 'some new reason', 'enforced', '203.0.113.3');
    const s = await scrape(t.url);
    expect(s.value(P.connectionsRejected, { reason: 'conn_limit', decision: 'enforced' })).toBe(2);
    expect(s.value(P.connectionsRejected, { reason: 'auth', decision: 'dry_run' })).toBe(1);
    expect(s.value(P.connectionsRejected, { reason: 'other' })).toBe(1);
    // Client keys never reach a label.
    expect(s.text).not.toContain('203.0.113');
  });

  it('records handshake duration per outcome', async () => {
    const o = t.observer;
    accepted(o, '/chat');
    o.handshakeStarted('/chat', undefined, undefined).end('auth', 'jwt');
    const h = o.handshakeStarted('/chat', undefined, undefined);
    h.end('upstream_timeout');
    h.accepted(); // a second end is ignored
    const s = await scrape(t.url);
    expect(s.value(`${P.handshakeDuration}_count`, { route: '/chat', outcome: 'accepted' })).toBe(1);
    expect(s.value(`${P.handshakeDuration}_count`, { route: '/chat', outcome: 'auth' })).toBe(1);
    expect(s.value(`${P.handshakeDuration}_count`, { route: '/chat', outcome: 'upstream_timeout' })).toBe(1);
  });

  it('counts rate limiting, backpressure, upstream errors, JWKS and limit-store events', async () => {
    const o = t.observer;
    const c = opened(o, '/chat');
    c.rateLimited('drop');
    c.rateLimited('drop');
    c.rateLimited('close');
    c.backpressure('upstream_to_client', 'pause');
    c.backpressure('client_to_upstream', 'close');
    c.upstreamFailed('abnormal_close');
    o.upstreamError('/chat', 'timeout');
    o.upstreamError('/chat', 'weird' as never);
    o.jwksRefreshed('success');
    o.jwksRefreshed('failure');
    o.jwksRefreshed('failure');
    o.limitStoreError('redis');
    o.limitStoreDegraded('redis', true);
    let tracked = 12;
    o.trackedClientsSource(() => tracked);
    let s = await scrape(t.url);
    expect(s.value(P.messagesRateLimited, { route: '/chat', action: 'drop' })).toBe(2);
    expect(s.value(P.messagesRateLimited, { route: '/chat', action: 'close' })).toBe(1);
    expect(s.value(P.backpressure, { direction: 'upstream_to_client', action: 'pause' })).toBe(1);
    expect(s.value(P.backpressure, { direction: 'client_to_upstream', action: 'close' })).toBe(1);
    expect(s.value(P.upstreamErrors, { kind: 'timeout' })).toBe(1);
    expect(s.value(P.upstreamErrors, { kind: 'abnormal_close' })).toBe(1);
    expect(s.value(P.upstreamErrors, { kind: 'other' })).toBe(1);
    expect(s.value(P.jwksRefresh, { outcome: 'success' })).toBe(1);
    expect(s.value(P.jwksRefresh, { outcome: 'failure' })).toBe(2);
    expect(s.value(P.limitStoreErrors, { store: 'redis' })).toBe(1);
    expect(s.value(P.limitStoreDegraded, { store: 'redis' })).toBe(1);
    expect(s.value(P.trackedClients)).toBe(12);
    o.limitStoreDegraded('redis', false);
    tracked = 4;
    s = await scrape(t.url);
    expect(s.value(P.limitStoreDegraded, { store: 'redis' })).toBe(0);
    expect(s.value(P.trackedClients)).toBe(4);
  });

  it('keeps the label set bounded: close codes, query strings and route count', async () => {
    const o = t.observer;
    opened(o, '/chat').closed({ code: 3999, initiator: 'client', durationMs: 1, messagesIn: 0, messagesOut: 0 });
    opened(o, '/chat').closed({ code: 4129, initiator: 'gateway', durationMs: 1, messagesIn: 0, messagesOut: 0 });
    opened(o, '/q?token=secret');
    for (let i = 0; i < MAX_ROUTES + 10; i++) opened(o, `/r${i}`);
    const s = await scrape(t.url);
    expect(s.value(P.connectionsClosed, { code: 'other' })).toBe(1);
    expect(s.value(P.connectionsClosed, { code: '4129' })).toBe(1);
    expect(s.text).not.toContain('secret');
    expect(s.value(P.connectionsAccepted, { route: '/q' })).toBe(1);
    const routes = new Set(s.find(P.connectionsAccepted).map((x) => x.labels.route));
    expect(routes.size).toBe(MAX_ROUTES + 1); // /chat … plus `other`
    expect(routes.has('other')).toBe(true);
    expect(s.value(P.connectionsAccepted, { route: 'other' })).toBeGreaterThan(0);
  });

  it('never lets the active gauge go negative, and never throws into the gateway', async () => {
    const o = t.observer;
    // Closed without ever opening (an attempt abandoned between its 101 and uWS open): nothing to count.
    accepted(o, '/chat').closed({ code: 1000, initiator: 'client', durationMs: 1, messagesIn: 0, messagesOut: 0 });
    o.trackedClientsSource(() => {
      throw new Error('store exploded');
    });
    expect(() => opened(o, '/chat').closed(null as never)).not.toThrow();
    expect(() => o.rejected(undefined as never, 'auth', 'enforced', 'x')).not.toThrow();
    expect(o.routeCounters(undefined as never)).toEqual({ messagesIn: 0, messagesOut: 0, bytesIn: 0, bytesOut: 0 });
    expect(() =>
      o
        .handshakeStarted(undefined as never, undefined, undefined)
        .accepted()
        .opened(),
    ).not.toThrow();
    const s = await scrape(t.url);
    expect(s.value(P.connectionsActive, { route: '/chat' })).toBe(0);
    expect(s.value(P.trackedClients)).toBe(0);
    expect(t.logs.events('telemetry_hook_failed').length).toBeGreaterThan(0);
  });
});
