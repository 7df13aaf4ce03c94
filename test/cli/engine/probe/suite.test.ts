import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isCliError } from '../../../../cli/cli-error.ts';
import { builtinSuite, loadSuiteFile, runSuite } from '../../../../cli/engine/probe/suite.ts';
import { parsePrometheusText, parseSelector, sumMatching } from '../../../../cli/engine/probe/prometheus-text.ts';
import { GUARD_SECRET, guardedServer } from '../../helpers/guarded-server.ts';
import type { TestServer } from '../../helpers/servers.ts';

let strict: TestServer;
let lax: TestServer;
const dir = mkdtempSync(join(tmpdir(), 'wsguard-probe-'));
const jwt = { alg: 'HS256' as const, secret: GUARD_SECRET, claimsTemplate: '{"sub":"u{{i}}","aud":"app"}', expSec: 60 };
const target = (url: string) => ({ url, auth: { jwt }, handshakeTimeoutMs: 2_000, settleMs: 100 });

beforeAll(async () => {
  strict = await guardedServer({ connLimit: 3, msgLimit: 10, maxPayload: 1024 });
  lax = await guardedServer({ connLimit: 3, msgLimit: 10, maxPayload: 1024, lax: true });
});
afterAll(async () => {
  await strict.close();
  await lax.close();
});

describe('probe suites', () => {
  it('reports what a lax server did instead of the contract', async () => {
    const suite = builtinSuite({ msgLimit: 10, auth: true, jwt: true, maxSize: 1024 });
    const r = await runSuite(suite, target(lax.url), jwt);
    expect(r.ok).toBe(false);
    const by = Object.fromEntries(r.checks.map((c) => [c.type, c]));
    expect(by.connect!.ok).toBe(true);
    expect(by.message_rate).toMatchObject({ ok: false, observed: 'all_delivered' });
    expect(by.auth_missing).toMatchObject({ ok: false, observed: 'opened' });
    expect(by.auth_expired).toMatchObject({ ok: false, observed: 'opened' });
    expect(by.oversize).toMatchObject({ ok: false, observed: 'opened' });
  });

  it('runs a YAML suite and checks that /metrics counters moved by the expected amounts', async () => {
    const file = join(dir, 'suite.yaml');
    writeFileSync(
      file,
      [
        `target: ${strict.url}`,
        'checks:',
        '  - type: conn_limit',
        '    limit: 3',
        '  - name: evil origin',
        '    type: origin',
        '    origin: https://evil.example',
        'metrics:',
        `  url: http://127.0.0.1:${strict.port}/metrics`,
        '  expect:',
        '    - metric: wsguard_connections_rejected_total{reason="conn_limit"}',
        '      delta: "==1"',
        '    - metric: wsguard_connections_rejected_total{reason="origin"}',
        '      delta: ">=2"',
      ].join('\n'),
    );
    const { suite, target: url } = loadSuiteFile(file);
    expect(url).toBe(strict.url);
    const r = await runSuite(suite, target(strict.url), jwt);
    expect(r.checks.map((c) => [c.name, c.ok])).toEqual([
      ['conn_limit#1', true],
      ['evil origin', true],
    ]);
    expect(r.metrics).toEqual([
      expect.objectContaining({ ok: true, after: expect.any(Number) }),
      expect.objectContaining({ ok: false, metric: 'wsguard_connections_rejected_total{reason="origin"}' }),
    ]);
    expect(r.ok).toBe(false);
  });

  it('does not mistake a server that never echoes for one that drops over the limit', async () => {
    const { wsServer } = await import('../../helpers/servers.ts');
    const silent = await wsServer({ echo: false });
    try {
      const r = await runSuite(
        { checks: [{ name: 'rate', type: 'message_rate', limit: 5, expect: ['dropped'] }] },
        { url: silent.url, handshakeTimeoutMs: 2_000, settleMs: 50 },
      );
      expect(r.checks[0]).toMatchObject({ ok: false, observed: 'no_echo' });
    } finally {
      await silent.close();
    }
  });

  it('rejects an invalid suite file as a config error naming the field', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'checks:\n  - type: nonsense\n');
    let err: unknown;
    try {
      loadSuiteFile(file);
    } catch (e) {
      err = e;
    }
    expect(isCliError(err) && err.exitCode).toBe(3);
    expect((err as Error).message).toContain('checks.0.type');
  });

  it('reads Prometheus text with label matching', () => {
    const s = parsePrometheusText('# HELP x\nx_total{a="1",b="2"} 3\nx_total{a="1",b="3"} 4\nx_total{a="2"} 10\ny 1\n');
    expect(sumMatching(s, parseSelector('x_total{a="1"}'))).toBe(7);
    expect(sumMatching(s, parseSelector('x_total'))).toBe(17);
  });
});
