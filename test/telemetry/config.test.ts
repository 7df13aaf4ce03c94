import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveInstanceId, telemetrySchema } from '../../src/telemetry/config.ts';

describe('telemetry config', () => {
  it('has defaults for everything', () => {
    const c = telemetrySchema.parse(undefined);
    expect(c).toMatchObject({
      enabled: true,
      serviceName: 'wsguard',
      admin: { host: '127.0.0.1', port: 9464 },
      traces: { sampleRatio: 1, violationEventsPerSec: 10 },
      monitoring: {
        adminClaims: [{ claim: 'role', value: 'admin' }],
        timeZone: 'UTC',
        messagesPerMinuteWindowSec: 60,
        topOffendersCapacity: 100,
      },
      logs: { level: 'info', rejectionSummaryIntervalMs: 10_000, rejectionLinesPerInterval: 5 },
    });
    expect(c.traces.otlpEndpoint).toBeUndefined();
    expect(c.instanceId).toBeUndefined();
    expect(resolveInstanceId(c)).toMatch(/-\d+$/);
    expect(resolveInstanceId({ instanceId: 'pod-7' })).toBe('pod-7');
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
    const bad = telemetrySchema.safeParse({
      admin: { port: 70000 },
      monitoring: { timeZone: 'Mars/Olympus' },
      traces: { otlpEndpoint: 'nope' },
    });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(expect.arrayContaining(['admin.port', 'monitoring.timeZone', 'traces.otlpEndpoint']));
  });

  it('rejects unknown options (typos) by name', () => {
    const bad = telemetrySchema.safeParse({ admin: { prot: 9464 } });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error!.issues)).toContain('prot');
  });

  it('renders to a deterministic JSON schema with a description on every leaf (docs/configuration.md)', () => {
    const a = JSON.stringify(z.toJSONSchema(telemetrySchema, { io: 'input', unrepresentable: 'any' }));
    const b = JSON.stringify(z.toJSONSchema(telemetrySchema, { io: 'input', unrepresentable: 'any' }));
    expect(a).toBe(b);
    expect(a).not.toContain(String(process.pid));
    const schema = JSON.parse(a) as {
      properties: Record<string, { properties?: Record<string, { description?: string }>; description?: string }>;
    };
    for (const [name, prop] of Object.entries(schema.properties)) {
      for (const [leaf, p] of Object.entries(prop.properties ?? { [name]: prop })) expect(p.description, `${name}.${leaf}`).toBeTruthy();
    }
  });

  it('accepts IANA zones', () => {
    expect(telemetrySchema.parse({ monitoring: { timeZone: 'Asia/Bangkok' } }).monitoring.timeZone).toBe('Asia/Bangkok');
  });
});
