import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readinessFrom } from '../../src/monitoring/readiness.ts';
import { PROMETHEUS_NAMES as P, SPAN_ATTR, SPANS } from '../../src/telemetry/names.ts';
import {
  attempt,
  closeClient,
  echo,
  eventually,
  gatewayConfig,
  open,
  sign,
  startEchoUpstream,
  startServer,
  type EchoUpstream,
  type Server,
} from './e2e-helpers.ts';
import { scrape, startTestTelemetry, type TestTelemetry } from './helpers.ts';

const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

describe('telemetry through the real gateway', () => {
  let upstream: EchoUpstream;
  let tel: TestTelemetry;
  let spans: InMemorySpanExporter;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    upstream = await startEchoUpstream();
    spans = new InMemorySpanExporter();
    let srv: Server | undefined;
    tel = await startTestTelemetry(
      {},
      {
        spanProcessors: [new SimpleSpanProcessor(spans)],
        verifyToken: async (token) => {
          if (!srv?.verifier) throw new Error('no verifier');
          return (await srv.verifier.verifyMonitoring(token)) as Record<string, unknown>;
        },
        readiness: readinessFrom(() =>
          srv ? { listening: srv.gateway.listening, draining: srv.gateway.draining, jwksLoaded: srv.verifier?.ready() ?? true } : undefined,
        ),
      },
    );
    srv = await startServer(gatewayConfig(upstream.url, { limits: { concurrent: { max: 2 } } }), {
      observer: tel.observer,
      logger: tel.logger,
    });
    server = srv;
    base = `ws://127.0.0.1:${server.gateway.port}`;
  });

  afterAll(async () => {
    await server?.close();
    await tel?.close();
    await upstream?.close();
  });

  it('propagates the client traceparent to the upstream through the dial span', async () => {
    const token = await sign();
    const ws = await open(`${base}/ws/trace`, {
      headers: { authorization: `Bearer ${token}`, traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01` },
    });
    expect(await echo(ws, 'ping')).toBe('ping');
    const received = upstream.handshakes.at(-1)!;
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
    const before = await scrape(tel.url);
    const v = (name: string, labels: Record<string, string>) => before.value(name, labels) ?? 0;
    const accepted0 = v(P.connectionsAccepted, { route: '/ws/' });
    const in0 = v(P.messages, { route: '/ws/', direction: 'client_to_upstream' });
    const out0 = v(P.messages, { route: '/ws/', direction: 'upstream_to_client' });
    const closed0 = v(P.connectionsClosed, { route: '/ws/', code: '1000', initiator: 'client' });

    // Before the two opens: the concurrent limit is checked before auth (policy order).
    const anonymous = await attempt(`${base}/ws/d`);
    expect(anonymous).toMatchObject({ kind: 'rejected', status: 401 });
    const token = await sign();
    const a = await open(`${base}/ws/a`, { headers: { authorization: `Bearer ${token}` } });
    const b = await open(`${base}/ws/b`, { headers: { authorization: `Bearer ${token}` } });
    for (const m of ['1', '22', '333']) expect(await echo(a, m)).toBe(m);
    expect(await echo(b, 'x')).toBe('x');

    const third = await attempt(`${base}/ws/c`, { headers: { authorization: `Bearer ${token}` } });
    expect(third).toMatchObject({ kind: 'rejected', status: 429 });

    let s = await scrape(tel.url);
    expect(s.value(P.connectionsAccepted, { route: '/ws/' })).toBe(accepted0 + 2);
    expect(s.value(P.connectionsActive, { route: '/ws/' })).toBe(2);
    expect(s.value(P.messages, { route: '/ws/', direction: 'client_to_upstream' })).toBe(in0 + 4);
    expect(s.value(P.messages, { route: '/ws/', direction: 'upstream_to_client' })).toBe(out0 + 4);
    expect(s.value(P.messageBytes, { route: '/ws/', direction: 'client_to_upstream' })).toBeGreaterThanOrEqual(7);
    expect(s.value(P.connectionsRejected, { route: '/ws/', reason: 'conn_limit', decision: 'enforced' })).toBe(1);
    expect(s.value(P.connectionsRejected, { route: '/ws/', reason: 'auth', decision: 'enforced' })).toBe(1);
    expect(s.value(`${P.handshakeDuration}_count`, { route: '/ws/', outcome: 'conn_limit' })).toBe(1);
    expect(s.text).not.toContain('127.0.0.1"'); // no client address in any label

    await closeClient(a);
    s = await eventually(async () => {
      const x = await scrape(tel.url);
      expect(x.value(P.connectionsClosed, { route: '/ws/', code: '1000', initiator: 'client' })).toBe(closed0 + 1);
      return x;
    });
    expect(s.value(P.connectionsActive, { route: '/ws/' })).toBe(1);
    expect(s.value(`${P.connectionDuration}_count`, { route: '/ws/' })).toBeGreaterThanOrEqual(1);
    await closeClient(b);
    await eventually(async () => expect((await scrape(tel.url)).value(P.connectionsActive, { route: '/ws/' })).toBe(0));
  });

  it('serves the monitoring API with tokens verified by the gateway verifier', async () => {
    const url = `${tel.url}/api/monitoring/websocket/metrics/`;
    expect((await fetch(url)).status).toBe(401);
    // Monitoring tokens carry the monitoring audience (telemetry.monitoring.audience, default wsguard-monitoring).
    const aud = 'wsguard-monitoring';
    expect((await fetch(url, { headers: { authorization: `Bearer ${await sign({ role: 'user', aud })}` } })).status).toBe(403);
    const res = await fetch(url, { headers: { authorization: `Bearer ${await sign({ role: 'admin', aud })}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, number>;
    expect(body.active_connections).toBe(0);
    expect(body.connections_today).toBe(3);
    expect(body.messages_received).toBe(5);
    expect(body.messages_sent).toBe(5);
    expect(body.avg_connection_duration).toBeGreaterThanOrEqual(0);
    expect(body.messages_per_minute).toBe(10);
    const rej = await fetch(`${tel.url}/api/monitoring/websocket/rejections/`, {
      headers: { authorization: `Bearer ${await sign({ role: 'admin', aud })}` },
    });
    const report = (await rej.json()) as { by_reason: Record<string, { enforced: number }>; top_offenders: Array<{ client: string }> };
    expect(report.by_reason.conn_limit?.enforced).toBe(1);
    expect(report.by_reason.auth?.enforced).toBe(1);
    expect(report.top_offenders[0]?.client).toBe('127.0.0.1');
  });

  it('reports ready while listening and not ready once draining', async () => {
    expect((await fetch(`${tel.url}/readyz`)).status).toBe(200);
    await server.drain(50);
    const r = await fetch(`${tel.url}/readyz`);
    expect(r.status).toBe(503);
    expect(await r.json()).toEqual({ ready: false, checks: { listening: false, jwks: true, store: true, fds: true, draining: true } });
  });
});

describe('message policies through the real gateway', () => {
  it('counts rate-limited messages and the 4129 close initiated by the gateway', async () => {
    const upstream = await startEchoUpstream();
    const tel = await startTestTelemetry();
    const server = await startServer(gatewayConfig(upstream.url, { messages: { rate: { perMinute: 1, burst: 2, action: 'close' } } }), {
      observer: tel.observer,
      logger: tel.logger,
    });
    try {
      const ws = await open(`ws://127.0.0.1:${server.gateway.port}/ws/rl`, { headers: { authorization: `Bearer ${await sign()}` } });
      const closedWith = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
      expect(await echo(ws, 'a')).toBe('a');
      expect(await echo(ws, 'b')).toBe('b');
      ws.send('c'); // over the burst: the gateway closes with 4129
      expect(await closedWith).toBe(4129);
      const s = await eventually(async () => {
        const x = await scrape(tel.url);
        expect(x.value(P.connectionsClosed, { route: '/ws/', code: '4129', initiator: 'gateway' })).toBe(1);
        return x;
      });
      expect(s.value(P.messagesRateLimited, { route: '/ws/', action: 'close' })).toBe(1);
      expect(s.value(P.messages, { route: '/ws/', direction: 'client_to_upstream' })).toBe(2);
      expect(s.value(P.connectionsActive, { route: '/ws/' })).toBe(0);
    } finally {
      await server.close();
      await tel.close();
      await upstream.close();
    }
  });
});
