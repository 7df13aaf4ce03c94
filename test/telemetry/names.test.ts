import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALLOWED_LABELS,
  INSTRUMENTS,
  METRIC_ATTRIBUTES,
  PROMETHEUS_NAMES,
  RUNTIME_PROMETHEUS_NAMES,
  TARGET_INFO,
  TARGET_INFO_LABELS,
  type InstrumentKey,
} from '../../src/telemetry/names.ts';
import { scrape, startTestTelemetry, type Scrape, type TestTelemetry } from './helpers.ts';

// promtool comes from Debian's prometheus package (.ci/run installs it; apt-get install prometheus).

/** Drives every hook once so that every contract series exists. */
function driveEverything(t: TestTelemetry): void {
  const o = t.observer;
  const c = o.routeCounters('/ws');
  const h = o.handshakeStarted('/ws', undefined, undefined);
  h.dialStarted({ address: '127.0.0.1', port: 8080 });
  h.dialEnded();
  const conn = h.accepted();
  conn.opened();
  c.messagesIn += 1;
  c.bytesIn += 10;
  o.rejected('/ws', 'origin', 'enforced', '198.51.100.7');
  conn.rateLimited('drop');
  conn.backpressure('upstream_to_client', 'pause');
  conn.controlFramesLimited('client_to_upstream');
  o.upstreamError('/ws', 'refused');
  o.jwksRefreshed('success');
  o.limitStoreError('redis');
  o.limitStoreDegraded('redis', false);
  o.trackedClientsSource(() => 3);
  o.gatewayStateSource(() => ({ handshakesPending: 1, fdOpen: 42, fdLimit: 1024 }));
  o.tlsReloaded('success');
  o.tlsCertificatesSource(() => [{ serverName: 'default', notAfterMs: 1_900_000_000_000 }]);
  conn.closed({ code: 1000, initiator: 'client', durationMs: 2000, messagesIn: 1, messagesOut: 0 });
}

describe('metric names in a real scrape', () => {
  let t: TestTelemetry;
  let s: Scrape;
  beforeAll(async () => {
    t = await startTestTelemetry();
    driveEverything(t);
    s = await scrape(t.url);
  });
  afterAll(() => t.close());

  it('serves the Prometheus text format', () => {
    expect(s.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
  });

  it('shows every contract metric under exactly its contract name', () => {
    for (const [key, promName] of Object.entries(PROMETHEUS_NAMES)) {
      expect(s.types.has(promName), `${promName} (${INSTRUMENTS[key as InstrumentKey]}) missing from scrape`).toBe(true);
    }
    expect(s.types.get(PROMETHEUS_NAMES.connectionsActive)).toBe('gauge');
    expect(s.types.get(PROMETHEUS_NAMES.connectionDuration)).toBe('histogram');
    expect(s.types.get(PROMETHEUS_NAMES.handshakeDuration)).toBe('histogram');
    expect(s.types.get(PROMETHEUS_NAMES.limitStoreDegraded)).toBe('gauge');
    expect(s.types.get(PROMETHEUS_NAMES.trackedClients)).toBe('gauge');
    for (const name of Object.values(PROMETHEUS_NAMES).filter((n) => n.endsWith('_total'))) {
      expect(s.types.get(name), name).toBe('counter');
    }
  });

  it('shows the Node runtime metrics under semantic-convention names', () => {
    for (const name of Object.values(RUNTIME_PROMETHEUS_NAMES)) expect(s.types.has(name), name).toBe(true);
  });

  it('shows no metric family outside names.ts', () => {
    const known = new Set([...Object.values(PROMETHEUS_NAMES), ...Object.values(RUNTIME_PROMETHEUS_NAMES), TARGET_INFO]);
    expect([...s.types.keys()].filter((n) => !known.has(n))).toEqual([]);
  });

  it('uses no label outside the allow-list, and exactly the documented labels per metric', () => {
    for (const sample of s.samples) {
      const allowed = sample.name === TARGET_INFO ? TARGET_INFO_LABELS : ALLOWED_LABELS;
      for (const label of Object.keys(sample.labels)) {
        expect(allowed, `${sample.name} has label ${label}`).toContain(label);
      }
    }
    for (const [key, attrs] of Object.entries(METRIC_ATTRIBUTES)) {
      const promName = PROMETHEUS_NAMES[key as InstrumentKey];
      const family = s.samples.filter((x) => x.name === promName || x.name.startsWith(`${promName}_`));
      expect(family.length, promName).toBeGreaterThan(0);
      for (const sample of family) {
        const labels = Object.keys(sample.labels).filter((l) => l !== 'le');
        expect(labels.sort(), `${sample.name}`).toEqual([...attrs].sort());
      }
    }
  });

  it('passes promtool check metrics (Debian package prometheus; .ci/run installs it)', () => {
    const r = spawnSync('promtool', ['check', 'metrics'], { input: s.text, encoding: 'utf8' });
    expect(`${r.stdout}${r.stderr}`.trim()).toBe('');
    expect(r.status).toBe(0);
  });

  it('carries service name, version and instance on target_info, not on every series', () => {
    expect(s.value(TARGET_INFO, { service_name: 'wsguard', service_version: '0.0.0-test', service_instance_id: 'test-instance' })).toBe(1);
    expect(s.text).not.toContain('otel_scope_name');
  });
});

describe('docs/metrics.md', () => {
  it('documents every contract metric, label and reason', async () => {
    const { readFile } = await import('node:fs/promises');
    const { ATTR, REASONS, SPANS } = await import('../../src/telemetry/names.ts');
    const doc = await readFile(new URL('../../docs/metrics.md', import.meta.url), 'utf8');
    for (const name of [...Object.values(PROMETHEUS_NAMES), ...Object.values(ATTR), ...REASONS, ...Object.values(SPANS)]) {
      expect(doc, name).toContain(`\`${name}\``);
    }
  });
});
