import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.ts';
import { ERROR_CODES, settingForReason } from '../src/errors.ts';
import { REASONS } from '../src/telemetry/names.ts';
import { RejectionLog } from '../src/telemetry/rejection-log.ts';
import pino from 'pino';
import { LogCapture } from './telemetry/helpers.ts';

/** The one error catalogue, checked against the config schema and the metric names it points at. */
describe('error catalogue', () => {
  it('names only options that exist', () => {
    const defaults = loadConfig({}) as unknown as Record<string, unknown>;
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      if (!info.setting) continue;
      const value = info.setting.split('.').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], defaults);
      expect(value, `${code} → ${info.setting}`).not.toBeUndefined();
    }
  });

  it('uses only documented metric reasons', () => {
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      if (info.reason !== null) expect(REASONS, code).toContain(info.reason);
    }
  });

  it('puts the option behind a limit in the rejection log line', () => {
    expect(settingForReason('attempt_limit')).toBe('limits.attempts.max');
    expect(settingForReason('auth')).toBeUndefined();
    const out = new LogCapture();
    const log = new RejectionLog(pino({ level: 'info' }, out), { intervalMs: 60_000, linesPerInterval: 5 });
    log.record({ route: '/ws/', reason: 'attempt_limit', decision: 'enforced', client: '198.51.100.9' });
    log.record({ route: '/ws/', reason: 'auth', decision: 'enforced', client: '198.51.100.9' });
    log.flush();
    expect(out.lines[0]).toMatchObject({ event: 'handshake_rejected', reason: 'attempt_limit', setting: 'limits.attempts.max' });
    expect(out.lines[1]).not.toHaveProperty('setting');
  });
});
