import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it, onTestFinished } from 'vitest';
import { readinessFrom } from '../../src/monitoring/readiness.ts';
import { PROMETHEUS_NAMES as P, SPAN_ATTR, SPANS } from '../../src/telemetry/names.ts';
import { delta, useGateway, type UsedGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { waitFor } from '../helpers/wait.ts';
import { attempt, closeClient, echo, open } from './e2e-helpers.ts';
import { startTestTelemetry } from './helpers.ts';

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
/** telemetry.monitoring.audience's default: monitoring tokens must carry it. */
const MONITORING_AUD = 'wsguard-monitoring';
const ROUTE = { route: '/ws/' };

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

// Each test starts its own gateway (useGateway), so each passes alone (`-t '<title>'`) and in any order.
describe('telemetry through the real gateway', () => {
  it('propagates the client traceparent to the upstream through the dial span', async () => {
    const spans = new InMemorySpanExporter();
    const tel = await startTestTelemetry({}, { spanProcessors: [new SimpleSpanProcessor(spans)] });
    onTestFinished(() => tel.close());
    const g = await useGateway({ start: { observer: tel.observer, logger: tel.logger }, metricsUrl: tel.url });
    const token = await signToken();
    const ws = await open(`${g.base}/ws/trace`, {
      headers: { authorization: `Bearer ${token}`, traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` },
    });
    expect(await echo(ws, 'ping')).toBe('ping');
    const received = g.upstream!.handshakes.at(-1)!.headers;
    const handshake = spans.getFinishedSpans().find((s) => s.name === SPANS.handshake && s.spanContext().traceId === CLIENT_TRACE)!;
    const dial = spans.getFinishedSpans().find((s) => s.name === SPANS.upstreamDial && s.spanContext().traceId === CLIENT_TRACE)!;
    expect(handshake.parentSpanContext?.spanId).toBe(CLIENT_SPAN);
    expect(handshake.attributes[SPAN_ATTR.outcome]).toBe('accepted');
    expect(dial.parentSpanContext?.spanId).toBe(handshake.spanContext().spanId);
    expect(received.traceparent).toBe(`00-${CLIENT_TRACE}-${dial.spanContext().spanId}-01`);
    // The token never reaches the upstream nor any span.
    expect(JSON.stringify(received)).not.toContain(token);
    expect(JSON.stringify(spans.getFinishedSpans().map((s) => s.attributes))).not.toContain(token);
    await closeClient(ws);
  });

  it('counts real connections, messages, rejections and closes in a scrape', async () => {
    const g = await useGateway({ config: { limits: { concurrent: { max: 2 } } } });
    const before = await g.metrics();

    // Before the two opens: the concurrent limit is checked before auth (policy order).
    const anonymous = await attempt(`${g.base}/ws/d`);
    expect(anonymous).toMatchObject({ kind: 'rejected', status: 401 });
    const token = await signToken();
    const a = await open(`${g.base}/ws/a`, bearer(token));
    const b = await open(`${g.base}/ws/b`, bearer(token));
    for (const m of ['1', '22', '333']) expect(await echo(a, m)).toBe(m);
    expect(await echo(b, 'x')).toBe('x');

    const third = await attempt(`${g.base}/ws/c`, bearer(token));
    expect(third).toMatchObject({ kind: 'rejected', status: 429 });

    let s = await g.metrics();
    expect(delta(before, s, P.connectionsAccepted, ROUTE)).toBe(2);
    expect(s.value(P.connectionsActive, ROUTE)).toBe(2);
    expect(delta(before, s, P.messages, { ...ROUTE, direction: 'client_to_upstream' })).toBe(4);
    expect(delta(before, s, P.messages, { ...ROUTE, direction: 'upstream_to_client' })).toBe(4);
    expect(delta(before, s, P.messageBytes, { ...ROUTE, direction: 'client_to_upstream' })).toBeGreaterThanOrEqual(7);
    expect(delta(before, s, P.connectionsRejected, { ...ROUTE, reason: 'conn_limit', decision: 'enforced' })).toBe(1);
    expect(delta(before, s, P.connectionsRejected, { ...ROUTE, reason: 'auth', decision: 'enforced' })).toBe(1);
    expect(delta(before, s, `${P.handshakeDuration}_count`, { ...ROUTE, outcome: 'conn_limit' })).toBe(1);
    expect(s.text).not.toContain('127.0.0.1"'); // no client address in any label

    const closedBy = { ...ROUTE, code: '1000', initiator: 'client' };
    await closeClient(a);
    // The gateway's close bookkeeping runs after the client has seen the close: wait for it.
    s = await waitFor(async () => {
      const x = await g.metrics();
      return delta(before, x, P.connectionsClosed, closedBy) === 1 && x;
    });
    expect(s.value(P.connectionsActive, ROUTE)).toBe(1);
    expect(delta(before, s, `${P.connectionDuration}_count`, ROUTE)).toBe(1);
    await closeClient(b);
    await waitFor(async () => (await g.metrics()).value(P.connectionsActive, ROUTE) === 0, { what: 'no active connection' });
  });

  it('serves the monitoring API with tokens verified by the gateway verifier', async () => {
    const g = await useGateway({ config: { limits: { concurrent: { max: 2 } } } });
    const admin = g.server.telemetry!.admin!.url;
    const token = await signToken();
    expect(await attempt(`${g.base}/ws/anonymous`)).toMatchObject({ kind: 'rejected', status: 401 });
    const a = await open(`${g.base}/ws/a`, bearer(token));
    const b = await open(`${g.base}/ws/b`, bearer(token));
    expect(await attempt(`${g.base}/ws/c`, bearer(token))).toMatchObject({ kind: 'rejected', status: 429 });
    for (const m of ['1', '22']) expect(await echo(a, m)).toBe(m);
    expect(await echo(b, 'x')).toBe('x');
    await closeClient(a);
    await closeClient(b);

    const url = `${admin}/api/monitoring/websocket/metrics/`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, bearer(await signToken({ role: 'user', aud: MONITORING_AUD })))).status).toBe(403);
    const adminToken = await signToken({ role: 'admin', aud: MONITORING_AUD });
    const body = await waitFor(
      async () => {
        const res = await fetch(url, bearer(adminToken));
        expect(res.status).toBe(200);
        const json = (await res.json()) as Record<string, number>;
        return json.active_connections === 0 && json;
      },
      { what: 'both closes counted by the monitoring API' },
    );
    expect(body.connections_today).toBe(2);
    expect(body.messages_received).toBe(3);
    expect(body.messages_sent).toBe(3);
    expect(body.avg_connection_duration).toBeGreaterThanOrEqual(0);
    expect(body.messages_per_minute).toBe(6);
    const rej = await fetch(`${admin}/api/monitoring/websocket/rejections/`, bearer(adminToken));
    const report = (await rej.json()) as { by_reason: Record<string, { enforced: number }>; top_offenders: Array<{ client: string }> };
    expect(report.by_reason.conn_limit?.enforced).toBe(1);
    expect(report.by_reason.auth?.enforced).toBe(1);
    expect(report.top_offenders[0]?.client).toBe('127.0.0.1');
  });

  it('reports ready while listening and not ready once draining', async () => {
    // A separate admin listener: the gateway's own stops with the drain, and this test reads it after.
    let g: UsedGateway | undefined;
    const tel = await startTestTelemetry(
      {},
      {
        readiness: readinessFrom(() =>
          g
            ? { listening: g.server.gateway.listening, draining: g.server.gateway.draining, jwksLoaded: g.server.verifier?.ready() ?? true }
            : undefined,
        ),
      },
    );
    onTestFinished(() => tel.close());
    g = await useGateway({ start: { observer: tel.observer, logger: tel.logger }, metricsUrl: tel.url });
    expect((await fetch(`${tel.url}/readyz`)).status).toBe(200);
    await g.server.drain(50);
    const r = await fetch(`${tel.url}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({ ready: false, checks: { listening: false, jwks: true, store: true, fds: true, draining: true } });
  });
});

describe('message policies through the real gateway', () => {
  it('counts rate-limited messages and the 4129 close initiated by the gateway', async () => {
    const g = await useGateway({ config: { messages: { rate: { perMinute: 1, burst: 2, action: 'close' } } } });
    const before = await g.metrics();
    const ws = await open(`${g.base}/ws/rl`, bearer(await signToken()));
    const closedWith = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
    expect(await echo(ws, 'a')).toBe('a');
    expect(await echo(ws, 'b')).toBe('b');
    ws.send('c'); // over the burst: the gateway closes with 4129
    expect(await closedWith).toBe(4129);
    const s = await waitFor(async () => {
      const x = await g.metrics();
      return delta(before, x, P.connectionsClosed, { ...ROUTE, code: '4129', initiator: 'gateway' }) === 1 && x;
    });
    expect(delta(before, s, P.messagesRateLimited, { ...ROUTE, action: 'close' })).toBe(1);
    expect(delta(before, s, P.messages, { ...ROUTE, direction: 'client_to_upstream' })).toBe(2);
    expect(s.value(P.connectionsActive, ROUTE)).toBe(0);
  });
});
