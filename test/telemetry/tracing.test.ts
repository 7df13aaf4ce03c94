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
    const headers = h.dialStarted({ address: '127.0.0.1', port: 8080 });
    h.dialEnded();
    h.accepted();
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
    // OTel semantic conventions: where the dial went.
    expect(dial!.attributes[SPAN_ATTR.serverAddress]).toBe('127.0.0.1');
    expect(dial!.attributes[SPAN_ATTR.serverPort]).toBe(8080);
    expect(parentId(dial!)).toBe(handshake!.spanContext().spanId);
    expect(headers.traceparent).toBe(`00-${CLIENT_TRACE}-${dial!.spanContext().spanId}-01`);
    expect(headers.tracestate).toBe('vendor=abc');
  });

  it('starts a new trace when the client sends none or garbage', () => {
    const h = t.observer.handshakeStarted('/chat', 'not-a-traceparent', undefined);
    const headers = h.dialStarted({ address: '127.0.0.1', port: 8080 });
    h.accepted();
    const [handshake] = byName(SPANS.handshake);
    expect(parentId(handshake!)).toBeUndefined();
    expect(headers.traceparent).toMatch(new RegExp(`^00-${handshake!.spanContext().traceId}-[0-9a-f]{16}-01$`));
  });

  it('records outcome and deciding policy of a rejection; gateway and upstream faults are errors, client faults and limits are not', () => {
    t.observer.handshakeStarted('/chat', undefined, undefined).end('auth', 'jwt');
    const h = t.observer.handshakeStarted('/chat', undefined, undefined);
    h.dialStarted({ address: '127.0.0.1', port: 8080 });
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
    // The blame comes from the error catalogue (src/errors.ts): a limit is no error, a drain is the gateway's.
    t.observer.handshakeStarted('/chat', undefined, undefined).end('conn_limit', 'conn_limit');
    t.observer.handshakeStarted('/chat', undefined, undefined).end('draining', 'drain');
    t.observer.handshakeStarted('/chat', undefined, undefined).end('client_abort');
    const [, , limit, draining, aborted] = byName(SPANS.handshake);
    expect(limit!.status.code).toBe(SpanStatusCode.UNSET);
    expect(draining!.status.code).toBe(SpanStatusCode.ERROR);
    expect(aborted!.status.code).toBe(SpanStatusCode.UNSET);
    // Rejected handshakes open no connection span.
    expect(byName(SPANS.connection)).toHaveLength(0);
  });

  it('ends a connection span at close with duration, code, initiator and message counts', () => {
    const conn0 = t.observer.handshakeStarted('/chat', CLIENT_TRACEPARENT, undefined).accepted();
    conn0.opened();
    expect(byName(SPANS.connection)).toHaveLength(0); // still open
    conn0.closed({ code: 1000, initiator: 'upstream', durationMs: 1234, messagesIn: 5, messagesOut: 9 });
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

  it('marks a connection that ended with 1011 or 1014 as an error, and ends the span of one that never opened', () => {
    const failed = t.observer.handshakeStarted('/chat', undefined, undefined).accepted();
    failed.opened();
    failed.closed({ code: 1014, initiator: 'upstream', durationMs: 5000, messagesIn: 0, messagesOut: 0 });
    t.observer
      .handshakeStarted('/chat', undefined, undefined)
      .accepted()
      .closed({ code: 1001, initiator: 'client', durationMs: 0, messagesIn: 0, messagesOut: 0 });
    const [conn, never] = byName(SPANS.connection);
    expect(conn!.status.code).toBe(SpanStatusCode.ERROR);
    expect(never!.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('samples rate-limit violation events with a per-second cap and counts the dropped ones', () => {
    const c = t.observer.handshakeStarted('/chat', undefined, undefined).accepted();
    c.opened();
    for (let i = 0; i < 10; i++) c.rateLimited('drop');
    c.backpressure('upstream_to_client', 'pause');
    c.closed({ code: 4129, initiator: 'gateway', durationMs: 10, messagesIn: 10, messagesOut: 0 });
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
    t2.observer.handshakeStarted('/chat', undefined, undefined).accepted();
    expect(ended).toEqual([SPANS.handshake]);
    await t2.close();
    expect(ended).toEqual([SPANS.handshake, SPANS.connection]);
  });

  it('puts no secrets or query strings in span attributes', () => {
    t.observer.handshakeStarted('/chat?token=eyJhbGciOi.secret', undefined, undefined).accepted();
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
      expect(h.dialStarted({ address: '127.0.0.1', port: 8080 })).toEqual({ traceparent: CLIENT_TRACEPARENT, tracestate: 'a=b' });
      expect(t.observer.handshakeStarted('/chat', undefined, undefined).dialStarted({ address: '127.0.0.1', port: 8080 })).toEqual({});
      expect(t.observer.handshakeStarted('/chat', '00-zz', undefined).dialStarted({ address: '127.0.0.1', port: 8080 })).toEqual({});
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
