import { describe, expect, it } from 'vitest';
import { telemetrySchema } from '../../src/telemetry/config.ts';

describe('telemetry config', () => {
  it('has defaults for everything', () => {
    const c = telemetrySchema.parse(undefined);
    expect(c).toMatchObject({
      enabled: true,
      serviceName: 'wsguard',
      admin: { host: '127.0.0.1', port: 9464 },
      traces: { sampleRatio: 1, violationEventsPerSec: 10 },
      monitoring: { adminClaims: [{ claim: 'role', value: 'admin' }], timeZone: 'UTC', messagesPerMinuteWindowSec: 60, topOffendersCapacity: 100 },
      logs: { level: 'info', rejectionSummaryIntervalMs: 10_000, rejectionLinesPerInterval: 5 },
    });
    expect(c.traces.otlpEndpoint).toBeUndefined();
    expect(c.instanceId).toMatch(/-\d+$/);
  });

  it('accepts one admin rule or several, with boolean values (is_staff: true)', () => {
    expect(telemetrySchema.parse({ monitoring: { adminClaims: { claim: 'is_staff', value: true } } }).monitoring.adminClaims).toEqual([
      { claim: 'is_staff', value: true },
    ]);
    const rules = [
      { claim: 'role', value: 'admin' },
      { claim: 'is_staff', value: true },
    ];
    expect(telemetrySchema.parse({ monitoring: { adminClaims: rules } }).monitoring.adminClaims).toEqual(rules);
  });

  it('accepts port 0 and rejects bad values, naming the option', () => {
    expect(telemetrySchema.parse({ admin: { port: 0 } }).admin.port).toBe(0);
    const bad = telemetrySchema.safeParse({ admin: { port: 70000 }, monitoring: { timeZone: 'Mars/Olympus' }, traces: { otlpEndpoint: 'nope' } });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['admin.port', 'monitoring.timeZone', 'traces.otlpEndpoint']));
  });

  it('accepts IANA zones', () => {
    expect(telemetrySchema.parse({ monitoring: { timeZone: 'Asia/Bangkok' } }).monitoring.timeZone).toBe('Asia/Bangkok');
  });
});
