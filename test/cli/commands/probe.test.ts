import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUARD_SECRET, guardedServer } from '../helpers/guarded-server.ts';
import type { TestServer } from '../helpers/servers.ts';
import { runCli } from '../helpers/spawn-cli.ts';

let strict: TestServer;
let lax: TestServer;
const dir = mkdtempSync(join(tmpdir(), 'wsguard-probe-'));
const AUTH = ['--jwt-alg', 'HS256', '--jwt-secret', GUARD_SECRET, '--jwt-claims', '{"sub":"u{{i}}","aud":"app"}'];
const FLAGS = ['--conn-limit', '3', '--msg-limit', '10', '--auth-required', '--bad-origin', 'https://evil.example', '--max-size', '1024', ...AUTH];

beforeAll(async () => {
  strict = await guardedServer({ connLimit: 3, msgLimit: 10, maxPayload: 1024 });
  lax = await guardedServer({ connLimit: 3, msgLimit: 10, maxPayload: 1024, lax: true });
});
afterAll(async () => {
  await strict.close();
  await lax.close();
});

describe('wsguard probe (child process)', () => {
  it('passes every built-in check against a server that enforces its limits', async () => {
    const r = await runCli(['probe', strict.url, ...FLAGS, '--settle', '150']);
    expect(r.stdout).not.toContain('FAIL');
    expect(r.stdout).toContain('PASS  connection 4 is refused: observed rejected.429');
    expect(r.stdout).toContain('PASS  expired token → 401: observed rejected.401');
    expect(r.stdout).toContain('PASS  wrong audience → 401');
    expect(r.stdout).toContain('PASS  alg=none token → 401');
    expect(r.stdout).toContain('observed closed.1009');
    expect(r.stdout).toContain('observed dropped');
    expect(r.stdout).toContain('9 checks, 0 failed');
    expect(r.code).toBe(0);
  });

  it('fails (exit 1) and says which check failed against a server that enforces nothing', async () => {
    const r = await runCli(['probe', lax.url, ...FLAGS, '--settle', '150']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL  connection 4 is refused: observed opened, expected one of rejected.429 | closed.4100 | closed.1013');
    expect(r.stdout).toContain('FAIL  no token → 401');
  });

  it('runs a YAML suite with metric expectations', async () => {
    const suite = join(dir, 'suite.yaml');
    writeFileSync(
      suite,
      [
        `target: ${strict.url}`,
        'checks:',
        '  - type: conn_limit',
        '    limit: 3',
        '  - type: origin',
        '    origin: https://evil.example',
        'metrics:',
        `  url: http://127.0.0.1:${strict.port}/metrics`,
        '  expect:',
        '    - metric: wsguard_connections_rejected_total{reason="conn_limit"}',
        '      delta: "==1"',
        '    - metric: wsguard_connections_rejected_total{reason="origin"}',
        '      delta: ">=1"',
      ].join('\n'),
    );
    const r = await runCli(['probe', '--suite', suite, ...AUTH, '--settle', '150']);
    expect(r.stdout).toContain('PASS  metric wsguard_connections_rejected_total{reason="conn_limit"} moved 1');
    expect(r.code).toBe(0);
    writeFileSync(join(dir, 'bad.yaml'), 'checks:\n  - type: nonsense\n');
    const bad = await runCli(['probe', strict.url, '--suite', join(dir, 'bad.yaml')]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('checks.0.type');
  });
});
