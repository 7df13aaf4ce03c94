import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { buildTrustList } from '../../src/admission/client-ip.ts';
import { ConfigError, parseConfig } from '../../src/config/load.ts';
import type { RawConfig } from '../../src/config/schema.ts';
import { configWarnings } from '../../src/config/warnings.ts';
import { runCli } from '../cli/helpers/spawn-cli.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { TEST_SECRET } from '../helpers/tokens.ts';
import { startEchoUpstream } from '../helpers/upstream.ts';

/** The problems a config is refused for, or [] when it is accepted. */
function problems(raw: RawConfig): string[] {
  try {
    parseConfig(raw);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

const dir = mkdtempSync(join(tmpdir(), 'wsguard-footguns-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, config: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(config));
  return path;
}

describe('upstream.forwardHeaders refuses headers the gateway owns', () => {
  it.each([
    'authorization',
    'Authorization',
    'proxy-authorization',
    'sec-websocket-protocol',
    'Sec-WebSocket-Key',
    'sec-websocket-extensions',
    'host',
    'connection',
    'upgrade',
    'x-forwarded-for',
    'X-Forwarded-Host',
    'x-forwarded-anything',
    'forwarded',
    'traceparent',
    'tracestate',
  ])('%s', (header) => {
    const found = problems({ upstream: { forwardHeaders: ['cookie', header] } });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(new RegExp(`^upstream\\.forwardHeaders\\.1: ${header} cannot be forwarded`));
  });

  it('refuses a header that auth.claimHeaders sets, in any case', () => {
    const found = problems({ auth: { claimHeaders: { 'X-Tenant': 'tenant' } }, upstream: { forwardHeaders: ['x-tenant'] } });
    expect(found).toEqual([
      expect.stringMatching(/^upstream\.forwardHeaders\.0: x-tenant is set from a verified claim \(auth\.claimHeaders\)/),
    ]);
    // The default claim header too.
    expect(problems({ upstream: { forwardHeaders: ['X-AUTH-SUB'] } })).toHaveLength(1);
  });

  it('accepts ordinary headers', () => {
    expect(problems({ upstream: { forwardHeaders: ['cookie', 'user-agent', 'x-request-id', 'sec-ch-ua'] } })).toEqual([]);
  });
});

describe('server.trustedProxies: an invalid CIDR fails config check, not serve', () => {
  it.each(['10.0.0.0/33', '300.1.1.1', 'fd00::/129', '10.0.0.0/8/8', '10.0.0.0/', '1.2.3.4/-1', ' 10.0.0.1'])(
    '%j is refused naming the option',
    (entry) => {
      const found = problems({ server: { trustedProxies: ['10.0.0.0/8', entry] } });
      expect(found).toEqual([expect.stringMatching(/^server\.trustedProxies\.1: /)]);
      // The schema and the trust list share one parser: whatever passes the schema builds.
    },
  );

  it('everything the schema accepts, buildTrustList builds', () => {
    const ok = [
      '10.0.0.0/8',
      '10.0.0.1',
      '0.0.0.0/0',
      '::/0',
      'fd00::/8',
      '2001:db8::1',
      '::ffff:10.0.0.0/104',
      '192.168.0.0/32',
      'fd00::/128',
    ];
    const config = parseConfig({ server: { trustedProxies: ok } });
    expect(() => buildTrustList(config.server.trustedProxies)).not.toThrow();
  });

  it('`wsguard config check` exits 3 and names the entry', async () => {
    const r = await runCli(['config', 'check', file('bad-cidr.json', { server: { trustedProxies: ['10.0.0.0/33'] } })]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/server\.trustedProxies\.0: 10\.0\.0\.0\/33: the prefix length must be 0 to 32/);
    expect(r.stderr).not.toMatch(/RangeError/);
  });
});

describe('server.handshakeTimeoutMs below upstream.dialTimeoutMs', () => {
  it('is refused, naming both options', () => {
    const found = problems({ server: { handshakeTimeoutMs: 1_000 }, upstream: { dialTimeoutMs: 5_000 } });
    expect(found).toEqual([expect.stringMatching(/^server\.handshakeTimeoutMs: .*upstream\.dialTimeoutMs/)]);
    expect(problems({ server: { handshakeTimeoutMs: 5_000 }, upstream: { dialTimeoutMs: 5_000 } })).toEqual([]);
  });
});

describe('start-up warnings', () => {
  const anonymousRoute = { path: '/public/', upstream: 'ws://127.0.0.1:9/public/', allowAnonymous: true };

  it('warn about a trust-everything proxy range, a public admin listener and a cookie-forwarding anonymous route', () => {
    const warnings = configWarnings(
      parseConfig({
        server: { trustedProxies: ['10.0.0.0/8', '0.0.0.0/0', '::/0'] },
        telemetry: { admin: { host: '0.0.0.0' } },
        routes: [anonymousRoute],
      }),
    );
    expect(warnings).toEqual([
      expect.stringMatching(/^server\.trustedProxies\.1: 0\.0\.0\.0\/0 trusts every address/),
      expect.stringMatching(/^server\.trustedProxies\.2: ::\/0 trusts every address/),
      expect.stringMatching(/^telemetry\.admin\.host: 0\.0\.0\.0 is not a loopback address/),
      expect.stringMatching(/^routes\.0\.allowAnonymous: .*cross-site WebSocket hijacking/),
    ]);
  });

  it('stay quiet for the safe variants', () => {
    const quiet = (raw: RawConfig) => configWarnings(parseConfig(raw));
    expect(quiet({})).toEqual([]);
    expect(quiet({ telemetry: { admin: { host: '::1' } }, server: { trustedProxies: ['10.0.0.0/8'] } })).toEqual([]);
    expect(quiet({ telemetry: { enabled: false, admin: { host: '0.0.0.0' } } })).toEqual([]);
    expect(quiet({ routes: [anonymousRoute], origins: { allowed: ['https://app.example'] } })).toEqual([]);
    expect(quiet({ routes: [anonymousRoute], upstream: { forwardHeaders: ['user-agent'] } })).toEqual([]);
    expect(quiet({ routes: [{ ...anonymousRoute, allowAnonymous: false }], auth: { secret: TEST_SECRET } })).toEqual([]);
  });

  it('`wsguard config check` prints them and still passes', async () => {
    const r = await runCli(['config', 'check', file('warn.json', { server: { trustedProxies: ['0.0.0.0/0'] } })]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^warning: server\.trustedProxies\.0: 0\.0\.0\.0\/0 trusts every address/m);
    expect(r.stdout).toMatch(/ok \(1 warning\)/);
  });

  it('serve logs them at warn on start-up', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line));
        done();
      },
    });
    const upstream = await startEchoUpstream();
    const gw = await startTestGateway(upstream.url, { server: { trustedProxies: ['::/0'] } }, { logger: pino({ level: 'warn' }, sink) });
    try {
      expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([
        expect.stringMatching(/^server\.trustedProxies\.0: ::\/0 trusts every address/),
      ]);
    } finally {
      await gw.close();
      await upstream.close();
    }
  });
});
