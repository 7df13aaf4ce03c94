import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/telemetry/logger.ts';
import { RejectionLog } from '../../src/telemetry/rejection-log.ts';
import { LogCapture, startTestTelemetry } from './helpers.ts';

const cfg = {
  serviceName: 'wsguard',
  instanceId: 'i-1',
  logs: { level: 'info' as const, rejectionSummaryIntervalMs: 10_000, rejectionLinesPerInterval: 5 },
};

describe('logger', () => {
  it('writes JSON lines with level, time, service and instance', () => {
    const out = new LogCapture();
    createLogger(cfg, out).info({ event: 'x' }, 'hello');
    expect(out.lines[0]).toMatchObject({ level: 'info', service: 'wsguard', instance: 'i-1', event: 'x', msg: 'hello' });
    expect(out.lines[0]!.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });

  it('redacts tokens and authorization wherever they are commonly logged', () => {
    const out = new LogCapture();
    createLogger(cfg, out).info(
      {
        token: 'eyJ.top',
        access_token: 'eyJ.access',
        authorization: 'Bearer eyJ.auth',
        req: { headers: { authorization: 'Bearer eyJ.nested' } },
        headers: { authorization: 'Bearer eyJ.h' },
        query: { token: 'eyJ.q' },
      },
      'request',
    );
    const text = JSON.stringify(out.lines[0]);
    expect(text).not.toContain('eyJ');
    expect(out.lines[0]!.token).toBe('[redacted]');
  });

  it('honours the level', () => {
    const out = new LogCapture();
    const log = createLogger({ ...cfg, logs: { ...cfg.logs, level: 'warn' } }, out);
    log.info('quiet');
    log.warn('loud');
    expect(out.lines.map((l) => l.msg)).toEqual(['loud']);
  });
});

describe('rejection log', () => {
  it('logs the first N rejections per reason and interval, then one summary line with the count', () => {
    const out = new LogCapture();
    const log = new RejectionLog(createLogger(cfg, out), { intervalMs: 60_000, linesPerInterval: 5 });
    for (let i = 0; i < 100; i++) log.record({ route: '/ws', reason: 'conn_limit', decision: 'enforced', client: `10.0.0.${i % 7}` });
    log.record({ route: '/ws', reason: 'auth', decision: 'enforced', client: '10.0.0.1' });
    expect(out.lines.filter((l) => l.event === 'handshake_rejected')).toHaveLength(6);
    expect(out.lines.filter((l) => l.event === 'handshake_rejections_suppressed')).toHaveLength(0);
    log.flush();
    const summaries = out.lines.filter((l) => l.event === 'handshake_rejections_suppressed');
    expect(summaries).toEqual([
      expect.objectContaining({ reason: 'conn_limit', suppressed: 95, logged: 5, interval_ms: 60_000, routes: ['/ws'] }),
    ]);
    // A new interval logs again.
    log.record({ route: '/ws', reason: 'conn_limit', decision: 'enforced', client: '10.0.0.9' });
    expect(out.lines.filter((l) => l.event === 'handshake_rejected')).toHaveLength(7);
    log.flush();
  });

  it('flushes the summary by itself when the interval ends', async () => {
    const t = await startTestTelemetry({ logs: { rejectionSummaryIntervalMs: 150, rejectionLinesPerInterval: 1 } });
    try {
      for (let i = 0; i < 4; i++) t.observer.rejected('/ws', 'attempt_limit', 'enforced', '192.0.2.1');
      await new Promise((r) => setTimeout(r, 400));
      expect(t.logs.events('handshake_rejected')).toHaveLength(1);
      expect(t.logs.events('handshake_rejections_suppressed')).toEqual([
        expect.objectContaining({ reason: 'attempt_limit', suppressed: 3 }),
      ]);
    } finally {
      await t.close();
    }
  });
});
