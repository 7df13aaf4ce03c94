import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SPAN_ATTR, SPANS } from '../../src/telemetry/names.ts';
import { startTestTelemetry, type TestTelemetry } from './helpers.ts';

const CLIENT_TRACE = '0af7651916cd43dd8448eb211c80319c';
const CLIENT_SPAN = 'b7ad6b7169203331';
const CLIENT_TRACEPARENT = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;

function parentId(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

describe('traces', () => {
  let exporter: InMemorySpanExporter;
  let t: TestTelemetry;
  beforeEach(async () => {
    exporter = new InMemorySpanExporter();
    t = await startTestTelemetry({ traces: { violationEventsPerSec: 3 } }, { spanProcessors: [new SimpleSpanProcessor(exporter)] });
  });
  afterEach(() => t.close());

  const byName = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);

  it('continues the client trace and propagates the dial span to the upstream', () => {
    const h = t.observer.handshakeStarted('/chat', CLIENT_TRACEPARENT, 'vendor=abc');
    h.dialStarted();
    const headers = h.upstreamHeaders();
    h.dialEnded();
    h.end('accepted');
    const [handshake] = byName(SPANS.handshake);
    const [dial] = byName(SPANS.upstreamDial);
    expect(handshake).toBeDefined();
    expect(dial).toBeDefined();
    expect(handshake!.spanContext().traceId).toBe(CLIENT_TRACE);
    expect(parentId(handshake!)).toBe(CLIENT_SPAN);
    expect(handshake!.kind).toBe(SpanKind.SERVER);
    expect(handshake!.attributes[SPAN_ATTR.outcome]).toBe('accepted');
    expect(handshake!.attributes[SPAN_ATTR.route]).toBe('/chat');
    expect(dial!.kind).toBe(SpanKind.CLIENT);
    expect(parentId(dial!)).toBe(handshake!.spanContext().spanId);
    expect(headers.traceparent).toBe(`00-${CLIENT_TRACE}-${dial!.spanContext().spanId}-01`);
    expect(headers.tracestate).toBe('vendor=abc');
  });

  it('starts a new trace when the client sends none or garbage', () => {
    const h = t.observer.handshakeStarted('/chat', 'not-a-traceparent', undefined);
    const headers = h.upstreamHeaders();
    h.end('accepted');
    const [handshake] = byName(SPANS.handshake);
    expect(parentId(handshake!)).toBeUndefined();
    expect(headers.traceparent).toMatch(new RegExp(`^00-${handshake!.spanContext().traceId}-[0-9a-f]{16}-01$`));
  });

  it('records outcome and deciding policy of a rejection; upstream faults are errors, client faults are not', () => {
    t.observer.handshakeStarted('/chat', undefined, undefined).end('auth', 'jwt');
    const h = t.observer.handshakeStarted('/chat', undefined, undefined);
    h.dialStarted();
    h.dialEnded('upstream_unavailable');
    h.end('upstream_unavailable', 'upstream');
    const [auth, upstream] = byName(SPANS.handshake);
    expect(auth!.attributes[SPAN_ATTR.outcome]).toBe('auth');
    expect(auth!.attributes[SPAN_ATTR.policy]).toBe('jwt');
    expect(auth!.status.code).toBe(SpanStatusCode.UNSET);
    expect(upstream!.status.code).toBe(SpanStatusCode.ERROR);
    const [dial] = byName(SPANS.upstreamDial);
    expect(dial!.status.code).toBe(SpanStatusCode.ERROR);
    expect(dial!.attributes[SPAN_ATTR.dialError]).toBe('upstream_unavailable');
    // Rejected handshakes open no connection span.
    expect(byName(SPANS.connection)).toHaveLength(0);
  });

  it('ends a connection span at close with duration, code, initiator and message counts', () => {
    const h = t.observer.handshakeStarted('/chat', CLIENT_TRACEPARENT, undefined);
    h.end('accepted');
    t.observer.connectionOpened('/chat');
    expect(byName(SPANS.connection)).toHaveLength(0); // still open
    t.observer.connectionClosed({
      route: '/chat',
      code: 1000,
      initiator: 'upstream',
      durationMs: 1234,
      messagesIn: 5,
      messagesOut: 9,
      handshake: h,
    });
    const [conn] = byName(SPANS.connection);
    const [handshake] = byName(SPANS.handshake);
    expect(conn!.spanContext().traceId).toBe(CLIENT_TRACE);
    expect(parentId(conn!)).toBe(handshake!.spanContext().spanId);
    expect(conn!.attributes).toMatchObject({
      [SPAN_ATTR.closeCode]: 1000,
      [SPAN_ATTR.initiator]: 'upstream',
      [SPAN_ATTR.durationSec]: 1.234,
      [SPAN_ATTR.messagesIn]: 5,
      [SPAN_ATTR.messagesOut]: 9,
    });
  });

  it('without the handshake handle, still records the connection as a root span spanning its duration', () => {
    t.observer.connectionClosed({ route: '/chat', code: 1011, initiator: 'gateway', durationMs: 5000, messagesIn: 0, messagesOut: 0 });
    const [conn] = byName(SPANS.connection);
    const [s, ns] = conn!.duration;
    expect(s + ns / 1e9).toBeCloseTo(5, 1);
    expect(conn!.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('samples rate-limit violation events with a per-second cap and counts the dropped ones', () => {
    const h = t.observer.handshakeStarted('/chat', undefined, undefined);
    h.end('accepted');
    for (let i = 0; i < 10; i++) t.observer.messageRateLimited('/chat', 'drop', h);
    t.observer.backpressure('/chat', 'upstream_to_client', 'pause', h);
    t.observer.connectionClosed({
      route: '/chat',
      code: 4129,
      initiator: 'gateway',
      durationMs: 10,
      messagesIn: 10,
      messagesOut: 0,
      handshake: h,
    });
    const [conn] = byName(SPANS.connection);
    const events = conn!.events;
    // Cap 3/s: the 11 violations within one second give at most 3 events (a second boundary may allow 3 more).
    expect(events.length).toBeGreaterThanOrEqual(3);
    expect(events.length).toBeLessThanOrEqual(6);
    expect(events[0]!.name).toBe(SPANS.rateLimitedEvent);
    expect(events[0]!.attributes?.[SPAN_ATTR.action]).toBe('drop');
    expect(Number(conn!.attributes[SPAN_ATTR.eventsDropped]) + events.length).toBe(11);
  });

  it('ends spans of connections still open at shutdown', async () => {
    // InMemorySpanExporter forgets its spans on shutdown, so watch span ends directly.
    const ended: string[] = [];
    const watcher: SpanProcessor = {
      onStart: () => {},
      onEnd: (span) => void ended.push(span.name),
      forceFlush: async () => {},
      shutdown: async () => {},
    };
    const t2 = await startTestTelemetry({}, { spanProcessors: [watcher] });
    const h = t2.observer.handshakeStarted('/chat', undefined, undefined);
    h.end('accepted');
    expect(ended).toEqual([SPANS.handshake]);
    await t2.close();
    expect(ended).toEqual([SPANS.handshake, SPANS.connection]);
  });

  it('puts no secrets or query strings in span attributes', () => {
    const h = t.observer.handshakeStarted('/chat?token=eyJhbGciOi.secret', undefined, undefined);
    h.end('accepted');
    const text = JSON.stringify(exporter.getFinishedSpans().map((s) => s.attributes));
    expect(text).not.toContain('token');
    expect(text).not.toContain('secret');
  });
});

describe('traces off', () => {
  it('passes a valid client traceparent to the upstream unchanged and makes none up', async () => {
    const t = await startTestTelemetry();
    try {
      expect(t.tracing).toBe(false);
      const h = t.observer.handshakeStarted('/chat', CLIENT_TRACEPARENT, 'a=b');
      expect(h.upstreamHeaders()).toEqual({ traceparent: CLIENT_TRACEPARENT, tracestate: 'a=b' });
      expect(t.observer.handshakeStarted('/chat', undefined, undefined).upstreamHeaders()).toEqual({});
      expect(t.observer.handshakeStarted('/chat', '00-zz', undefined).upstreamHeaders()).toEqual({});
    } finally {
      await t.close();
    }
  });

  it('turns on OTLP export when an endpoint is configured', async () => {
    const t = await startTestTelemetry({ traces: { otlpEndpoint: 'http://127.0.0.1:9/v1/traces' } });
    try {
      expect(t.tracing).toBe(true);
    } finally {
      await t.close();
    }
  });
});
