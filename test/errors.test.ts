import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.ts';
import { ERROR_CODES, isServerFault, keepsAttempt, settingForReason, type GatewayErrorCode } from '../src/errors.ts';
import { CLOSE } from '../src/relay/close-codes.ts';
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

/** The rows of the first Markdown table under the `## heading` of docs/contracts.md, as trimmed cells. */
function contractTable(heading: string): string[][] {
  const text = readFileSync(new URL('../docs/contracts.md', import.meta.url), 'utf8');
  const start = text.indexOf(`\n## ${heading}`);
  expect(start, `docs/contracts.md has no "## ${heading}"`).toBeGreaterThan(-1);
  const lines = text
    .slice(start + 1)
    .split('\n')
    .slice(1);
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .slice(1, -1)
        .split('|')
        .map((cell) => cell.trim()),
    );
  }
  // Header and separator rows go.
  return rows.slice(2);
}

const CODES = Object.keys(ERROR_CODES) as GatewayErrorCode[];

/** docs/contracts.md's tables against the catalogue, both ways (as names.test.ts holds docs/metrics.md against a scrape). */
describe('docs/contracts.md and the error catalogue', () => {
  it('lists every handshake rejection with the status the catalogue gives it, and no other', () => {
    const documented = new Map<string, number>();
    for (const [status, codes] of contractTable('Handshake rejections')) {
      for (const [, code] of codes!.matchAll(/`([a-z_]+)`/g)) documented.set(code!, Number(status));
    }
    for (const [code, status] of documented) {
      expect(CODES, `documented code ${code}`).toContain(code);
      expect(ERROR_CODES[code as GatewayErrorCode].status, code).toBe(status);
    }
    // Every code that can refuse a handshake (it has a metric reason) is documented.
    for (const code of CODES.filter((c) => ERROR_CODES[c].reason !== null)) expect([...documented.keys()], code).toContain(code);
  });

  it('lists every close code the gateway sends, and documents none it does not know', () => {
    const documented = new Set<number>();
    for (const [codes] of contractTable('Close codes')) {
      for (const [code] of codes!.matchAll(/\d{4}/g)) documented.add(Number(code));
    }
    const known = new Set<number>([...Object.values(CLOSE), ...CODES.map((c) => ERROR_CODES[c].closeCode)]);
    for (const code of documented) expect(known, `documented close code ${code}`).toContain(code);
    // httpOnly codes never reach a socket as a close code.
    for (const code of CODES.filter((c) => !ERROR_CODES[c].httpOnly)) expect(documented, code).toContain(ERROR_CODES[code].closeCode);
    // The private codes keep the documented groups: 4000–4099 do not reconnect, 4100–4199 back off, 4200–4299 reconnect now.
    for (const code of CODES) {
      const closeCode = ERROR_CODES[code].closeCode;
      if (closeCode >= 4000 && closeCode < 4100) expect(keepsAttempt(code), `${code} (${closeCode}) is a do-not-reconnect code`).toBe(true);
    }
  });

  it('documents the blame of every handshake rejection as the catalogue has it', () => {
    const text = readFileSync(new URL('../docs/contracts.md', import.meta.url), 'utf8');
    const rows = text.split('\n').filter((l) => /^\| `(client|limit|gateway|upstream)` /.test(l));
    const documented = new Map<string, string>();
    for (const row of rows) {
      const [blame, codes] = row
        .slice(1, -1)
        .split('|')
        .map((c) => c.trim().replace(/`/g, ''));
      for (const code of codes!.split(/,\s*/)) documented.set(code, blame!);
    }
    for (const [code, blame] of documented) expect(ERROR_CODES[code as GatewayErrorCode]?.blame, code).toBe(blame);
    for (const code of CODES.filter((c) => ERROR_CODES[c].reason !== null)) expect(documented.has(code), code).toBe(true);
  });

  it('decides blame in one place: client faults keep the attempt, gateway and upstream faults are server faults', () => {
    for (const code of CODES) {
      const { blame, status } = ERROR_CODES[code];
      expect(keepsAttempt(code), code).toBe(blame === 'client');
      expect(isServerFault(code), code).toBe(blame === 'gateway' || blame === 'upstream');
      // OTel HTTP semconv: a 5xx answer is a server fault, a 4xx one is not.
      if (ERROR_CODES[code].reason !== null) expect(isServerFault(code), `${code} (${status})`).toBe(status >= 500);
    }
  });
});
