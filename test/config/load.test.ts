import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.ts';

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('defaults', () => {
  it("carries the reference guide's defaults", () => {
    const c = parseConfig({});
    expect(c.limits.concurrent.max).toBe(5);
    expect(c.limits.attempts).toMatchObject({ max: 10, windowMs: 3_600_000 });
    expect(c.messages.rate).toMatchObject({ perMinute: 60, action: 'close' });
    expect(c.server.host).toBe('127.0.0.1');
  });

  it('is frozen all the way down', () => {
    const c = parseConfig({ routes: [{ path: '/ws/', upstream: 'ws://127.0.0.1:1/', allowAnonymous: true }] });
    expect(Object.isFrozen(c.limits.concurrent)).toBe(true);
    expect(Object.isFrozen(c.routes[0])).toBe(true);
  });
});

describe('validation', () => {
  it('reports every problem at once, each naming the option', () => {
    const p = problems(() =>
      parseConfig({
        server: { port: 70000, idleTimeoutSec: 5 },
        limits: { concurrent: { max: 0 } },
        routes: [{ path: 'ws', upstream: 'http://x' }],
        origins: { allowed: ['https://a.example/path'] },
        auth: { secret: 'short' },
        bogus: true,
      }),
    );
    const text = p.join('\n');
    for (const option of [
      'server.port',
      'server.idleTimeoutSec',
      'limits.concurrent.max',
      'routes.0.path',
      'routes.0.upstream',
      'origins.allowed.0',
      'auth.secret',
      'unknown option bogus',
    ]) {
      expect(text).toContain(option);
    }
  });

  it('demands a key when a route requires tokens', () => {
    expect(problems(() => parseConfig({ routes: [{ path: '/ws/', upstream: 'ws://127.0.0.1:1/' }] })).join()).toMatch(/^auth: /);
  });
});

describe('sources', () => {
  const dir = mkdtempSync(join(tmpdir(), 'wsguard-config-'));

  it('layers file, then env, then flags', () => {
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'limits:\n  concurrent:\n    max: 7\n  attempts:\n    max: 20\nserver:\n  port: 9000\n');
    const c = loadConfig({
      file,
      env: { WSGUARD_LIMITS__ATTEMPTS__MAX: '30', WSGUARD_SERVER__PORT: '9100', OTHER: 'x' },
      overrides: [['server.port', '9200']],
    });
    expect(c.limits.concurrent.max).toBe(7);
    expect(c.limits.attempts.max).toBe(30);
    expect(c.server.port).toBe(9200);
  });

  it('reads JSON files and parses env values as JSON where they parse', () => {
    const file = join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ origins: { allowMissing: false } }));
    const c = loadConfig({ file, env: { WSGUARD_ORIGINS__ALLOWED: '["https://a.example"]', WSGUARD_AUTH__SECRET: 'x'.repeat(40) } });
    expect(c.origins).toMatchObject({ allowMissing: false, allowed: ['https://a.example'] });
    expect(c.auth.secret).toBe('x'.repeat(40));
  });

  it('names the WSGUARD_* variable behind a bad or unknown option, and suggests the option meant', () => {
    const p = problems(() =>
      loadConfig({ env: { WSGUARD_LIMITS__CONCURENT__MAX: '8', WSGUARD_SERVER__PORT: '"eighty"', WSGUARD_ROUTES: '[]' } }),
    );
    expect(p).toContain('WSGUARD_LIMITS__CONCURENT__MAX: unknown option limits.concurent; did you mean limits.concurrent?');
    expect(p.find((m) => m.includes('server.port'))).toMatch(/^WSGUARD_SERVER__PORT: server\.port: /);
    // No suggestion when nothing is close.
    expect(problems(() => loadConfig({ env: { WSGUARD_LIMITS__ZZZZZZZZZZ: '1' } }))).toEqual([
      'WSGUARD_LIMITS__ZZZZZZZZZZ: unknown option limits.zzzzzzzzzz',
    ]);
  });

  it('keeps an all-digit value a string where the option is one (a secret from the environment)', () => {
    const digits = '1'.repeat(40);
    const c = loadConfig({ env: { WSGUARD_AUTH__SECRET: digits, WSGUARD_SERVER__PORT: '9100' }, overrides: [['auth.issuer', '12345']] });
    expect(c.auth.secret).toBe(digits);
    expect(c.auth.issuer).toBe('12345');
    expect(c.server.port).toBe(9100);
  });

  it('names the file when it cannot be read or parsed', () => {
    expect(problems(() => loadConfig({ file: join(dir, 'missing.yaml') })).join()).toMatch(/cannot read .*missing\.yaml/);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'server: [unclosed');
    expect(problems(() => loadConfig({ file: bad })).join()).toMatch(/cannot parse .*bad\.yaml/);
  });
});

describe('--set paths into lists', () => {
  it('walks into an array by index without replacing it', () => {
    const c = loadConfig({
      overrides: [
        ['routes', [{ path: '/ws/', upstream: 'ws://127.0.0.1:1/' }]],
        ['routes.0.allowAnonymous', 'true'],
      ],
    });
    expect(c.routes).toEqual([{ path: '/ws/', upstream: 'ws://127.0.0.1:1/', allowAnonymous: true }]);
  });
});
