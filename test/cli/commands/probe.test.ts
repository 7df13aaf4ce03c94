import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUARD_SECRET, guardedServer } from '../helpers/guarded-server.ts';
import type { TestServer } from '../helpers/servers.ts';
import { runCli } from '../helpers/spawn-cli.ts';

let strict: TestServer;
let lax: TestServer;
const AUTH = ['--jwt-alg', 'HS256', '--jwt-secret', GUARD_SECRET, '--jwt-claims', '{"sub":"u{{i}}","aud":"app"}'];

beforeAll(async () => {
  strict = await guardedServer({ connLimit: 3, msgLimit: 10, maxPayload: 1024 });
  lax = await guardedServer({ connLimit: 3, msgLimit: 10, maxPayload: 1024, lax: true });
});
afterAll(async () => {
  await strict.close();
  await lax.close();
});

describe('wsguard probe (child process)', () => {
  it('passes every built-in check against a server that enforces its limits (exit 0)', async () => {
    const r = await runCli([
      'probe',
      strict.url,
      '--conn-limit',
      '3',
      '--msg-limit',
      '10',
      '--auth-required',
      '--bad-origin',
      'https://evil.example',
      '--max-size',
      '1024',
      ...AUTH,
      '--audience',
      'app',
      '--settle',
      '100',
    ]);
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
    const r = await runCli(['probe', lax.url, '--conn-limit', '3', '--bad-origin', 'https://evil.example', ...AUTH, '--settle', '100']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('FAIL  connection 4 is refused: observed opened, expected one of rejected.429 | closed.4100 | closed.1013');
    expect(r.stdout).toContain('FAIL  Origin https://evil.example → 403: observed opened');
  });

  it('runs the wrong-audience check only when the audience is named, and skips checks by name or type', async () => {
    const r = await runCli([
      'probe',
      strict.url,
      '--auth-required',
      ...AUTH,
      '--skip',
      'auth_alg_none',
      '--skip',
      'a valid client connects',
      '--settle',
      '100',
    ]);
    expect(r.stdout).not.toContain('wrong audience');
    expect(r.stdout).toContain('SKIP  alg=none token → 401 (--skip)');
    expect(r.stdout).toContain('SKIP  a valid client connects (--skip)');
    expect(r.stdout).not.toMatch(/^(PASS|FAIL) {2}alg=none/m);
    expect(r.stdout).toContain('2 checks, 0 failed');
    expect(r.code).toBe(0);
    const unknown = await runCli(['probe', strict.url, '--skip', 'nope']);
    expect(unknown.stderr).toContain("--skip nope: no such check; the checks are: 'a valid client connects' (connect)");
    expect(unknown.code).toBe(3);
  });
});

describe('wsguard probe refuses a suite it cannot run (exit 3, no check runs)', () => {
  it('--jwt-alg HS256 without --jwt-secret', async () => {
    const r = await runCli(['probe', strict.url, '--auth-required', '--jwt-alg', 'HS256']);
    expect(r.stderr).toContain('--jwt-secret is required for --jwt-alg HS256');
    expect(r.stdout).not.toMatch(/PASS|FAIL/);
    expect(r.code).toBe(3);
  });

  it('a suite check that needs a token, without --jwt-*', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'wsguard-probe-')), 'suite.yaml');
    writeFileSync(file, `target: ${strict.url}\nchecks:\n  - type: auth_expired\n`);
    const r = await runCli(['probe', '--suite', file]);
    expect(r.stderr).toContain("check 'auth_expired#1' needs a signed token");
    expect(r.code).toBe(3);
  });
});
