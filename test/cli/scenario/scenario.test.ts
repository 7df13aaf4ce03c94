import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished, describe, expect, it } from 'vitest';
import { startDemoUpstream } from '../../../src/demo/demo-upstream.ts';
import type { RunResult } from '../../../cli/engine/result.ts';
import type { RawConfig } from '../../../src/config/schema.ts';
import { useGateway } from '../../helpers/gateway.ts';
import { TEST_SECRET } from '../../helpers/tokens.ts';
import { runCli } from '../helpers/spawn-cli.ts';

/**
 * `wsguard run` against a real `wsguard serve` in front of the demo upstream's broadcast room, the
 * CLI spawned as a user runs it. Every test has its own sidecar and room: a room is shared state.
 */
const ROOT = new URL('../../../', import.meta.url).pathname;
const AUTH = ['--jwt-alg', 'HS256', '--jwt-secret', TEST_SECRET];

async function roomUrl(config: RawConfig = {}): Promise<string> {
  const demo = await startDemoUpstream();
  onTestFinished(() => demo.close());
  const gw = await useGateway({ upstream: `ws://127.0.0.1:${demo.port}`, config });
  return `${gw.base}/ws/room/`;
}

function tmp(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'wsguard-scenario-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

async function run(scenario: string, args: string[]): Promise<{ code: number | null; out: string; json: string; result?: RunResult }> {
  const json = join(mkdtempSync(join(tmpdir(), 'wsguard-scenario-out-')), 'out.json');
  const r = await runCli(['run', scenario, '--json', json, '--progress-interval', '0', ...args], 60_000);
  let result: RunResult | undefined;
  try {
    result = JSON.parse(readFileSync(json, 'utf8')) as RunResult;
  } catch {
    result = undefined;
  }
  return { code: r.code, out: r.stdout + r.stderr, json, result };
}

describe('wsguard run against wsguard serve --demo (broadcast room)', () => {
  it('runs docs/examples/chat.yaml as written: join, welcome, send, expect the broadcast, CSV data, captures (exit 0)', async () => {
    const url = await roomUrl();
    const r = await run(join(ROOT, 'docs/examples/chat.yaml'), ['--url', url, ...AUTH]);
    expect(r.code, r.out).toBe(0);
    const sc = r.result!.scenario!;
    expect(sc.users).toEqual({ started: 5, finished: 5, stopped: 0, failed: 0 });
    expect(sc.checks.joined).toEqual({ passes: 5, fails: 0 });
    expect(sc.checks.broadcast).toEqual({ passes: 15, fails: 0 });
    expect(sc.checks.pong).toEqual({ passes: 5, fails: 0 });
    expect(r.result!.outcomes).toEqual({ completed: 5 });
    expect(r.out).toMatch(/checks\.joined > 0\.99\s+1\s+pass/);
  });

  it('fills CSV columns and captured variables into later sends (seen by another user in the room)', async () => {
    const url = await roomUrl();
    const dir = tmp({
      'users.csv': 'name,greeting\nann,"hi, all"\nbo,yo\n',
      's.yaml': [
        'load: { connections: 2 }',
        'data: users.csv',
        'steps:',
        '  - connect:',
        "  - send: { json: { type: join, user: '${name}', n: '${user}' } }",
        "  - expect: { json: { type: join, user: '${name}' }, capture: { me: n }, check: joined }",
        '  - send: \'{"type":"say","from":"${me}","text":"${greeting}"}\'',
        '  - expect: { regex: \'"from":"${me}","text":"([^"]+)"\', capture: { said: 1 }, check: said }',
        '  - send: \'{"type":"echo","said":"${said}","user":"${name}"}\'',
        "  - expect: { json: { type: echo, said: '${greeting}', user: '${name}' }, check: echoed }",
      ].join('\n'),
    });
    const r = await run(join(dir, 's.yaml'), ['--url', url, ...AUTH]);
    expect(r.code, r.out).toBe(0);
    const c = r.result!.scenario!.checks;
    expect(c.joined).toEqual({ passes: 2, fails: 0 });
    expect(c.said).toEqual({ passes: 2, fails: 0 });
    // 'hi, all' came out of a quoted CSV field, through a regex capture, and back through the room.
    expect(c.echoed).toEqual({ passes: 2, fails: 0 });
  });

  it('a failing expect is a failed check naming the step and the message received; a threshold on it exits 1', async () => {
    const url = await roomUrl();
    const dir = tmp({
      's.yaml': [
        'load: { connections: 1 }',
        'thresholds: [checks.welcomed > 0.99]',
        'steps:',
        '  - connect:',
        '  - send: { json: { type: join, user: u1 } }',
        '  - name: wait for the welcome',
        '    expect: { json: { type: welcome }, check: welcomed, timeout: 300ms }',
        '  - send: never sent',
      ].join('\n'),
    });
    const r = await run(join(dir, 's.yaml'), ['--url', url, ...AUTH]);
    expect(r.code, r.out).toBe(1);
    const w = r.result!.scenario!.checks.welcomed!;
    expect(w.passes).toBe(0);
    expect(w.fails).toBe(1);
    expect(w.firstFailure).toMatchObject({ step: 'steps[2]', stepName: 'wait for the welcome', received: '{"type":"join","user":"u1"}' });
    expect(w.firstFailure!.reason).toMatch(/timed out; 1 message\(s\) did not match/);
    expect(r.result!.scenario!.users.failed).toBe(1);
    // The user stopped at the failed expect: the send after it never went out.
    expect(r.result!.messages.sent).toBe(1);
    expect(r.out).toContain('threshold failed: checks.welcomed > 0.99 (actual 0)');
    expect(r.out).toMatch(/welcomed\s+0\s+1\s+user 0 at wait for the welcome: timed out.*received: \{"type":"join","user":"u1"\}/);
    // `report` renders the saved result the same way, and keeps its verdict.
    const md = await runCli(['report', r.json, '-f', 'md']);
    expect(md.code, md.stderr).toBe(1);
    expect(md.stdout).toContain('| welcomed | 0 | 1 | user 0 at wait for the welcome: timed out; 1 message(s) did not match; received:');
  });
});

describe('wsguard run: connect takes every auth option the CLI has', () => {
  it('header, query and subprotocol carriage, per-user JWT claims from the data file, and the origin', async () => {
    const url = await roomUrl({ origins: { allowed: ['https://app.example'] }, auth: { audience: 'app' } });
    const roundTrip = (check: string): string[] => [
      "  - send: 'hi-${name}-${seq}'",
      `  - expect: { regex: '^hi-\${name}-', check: ${check} }`,
    ];
    const dir = tmp({
      'users.csv': 'name,aud\nann,app\nbo,app\ncy,other\n',
      's.yaml': [
        'load: { connections: 3 }',
        'data: users.csv',
        'auth:',
        '  origin: https://app.example',
        `  jwt: { alg: HS256, secret: '${TEST_SECRET}', claims: { sub: '\${name}', aud: '\${aud}' } }`,
        'steps:',
        '  - connect: { tokenIn: header }',
        ...roundTrip('header'),
        '  - connect: { tokenIn: query }',
        ...roundTrip('query'),
        '  - connect: { tokenIn: subprotocol, subprotocols: [wsguard.auth] }',
        ...roundTrip('subprotocol'),
        '  - connect: { origin: https://evil.example }',
      ].join('\n'),
    });
    const r = await run(join(dir, 's.yaml'), ['--url', url]);
    const sc = r.result!.scenario!;
    // ann and bo get through every carriage; cy's token has the wrong audience.
    for (const c of ['header', 'query', 'subprotocol']) expect(sc.checks[c], `${c}: ${r.out}`).toEqual({ passes: 2, fails: 0 });
    expect(r.result!.outcomes).toEqual({ completed: 6, 'rejected.401': 1, 'rejected.403': 2 });
    expect(sc.users).toEqual({ started: 3, finished: 0, stopped: 0, failed: 3 });
    // No token in the result, whatever carried it.
    expect(readFileSync(r.json, 'utf8')).not.toMatch(/eyJ[\w-]+\.[\w-]+\./);
    expect(readFileSync(r.json, 'utf8')).not.toContain(TEST_SECRET);
  });
});

describe('wsguard run: the scenario schema', () => {
  it('lists every problem with its line (exit 3), before connecting anywhere', async () => {
    const dir = tmp({
      's.yaml': [
        'url: ws://127.0.0.1:9/ws/', // 1
        'load:', // 2
        '  connections: -1', // 3
        'steps:', // 4
        '  - connect:', // 5
        '  - send: { text: hi, bogus: 1 }', // 6
        "  - expect: { regex: '(' }", // 7
        '  - sleep: soon', // 8
        '  - close: 1006', // 9
        '  - spam: {}', // 10
      ].join('\n'),
    });
    const r = await run(join(dir, 's.yaml'), []);
    expect(r.code, r.out).toBe(3);
    expect(r.out).toContain('7 problem(s)');
    expect(r.out).toMatch(/s\.yaml:3:\d+: load\.connections: .*>0/);
    expect(r.out).toMatch(/s\.yaml:6:\d+: steps\[1\]\.send\.bogus: unknown key 'bogus'/);
    expect(r.out).toMatch(/s\.yaml:7:\d+: steps\[2\]\.expect\.regex: not a valid regular expression/);
    expect(r.out).toMatch(/s\.yaml:8:\d+: steps\[3\]\.sleep\.fixed: expected a duration/);
    expect(r.out).toMatch(/s\.yaml:9:\d+: steps\[4\]\.close\.code: a client may close with 1000 or 3000-4999/);
    expect(r.out).toMatch(/s\.yaml:10:\d+: steps\[5\]\.spam: unknown key 'spam'/);
    expect(r.out).toMatch(/s\.yaml:10:\d+: steps\[5\]: a step has exactly one of connect, send/);
  });

  it('lists what only a whole-file check sees: unknown variables, thresholds on unnamed checks, a bad data file', async () => {
    const dir = tmp({
      's.yaml': [
        'url: ws://127.0.0.1:9/ws/', // 1
        'data: missing.csv', // 2
        'thresholds: [checks.nope > 0.5, p99_rtt_ms < 5]', // 3
        'steps:', // 4
        '  - connect:', // 5
        "  - send: 'hello ${who}'", // 6
        "  - expect: { regex: 'x', capture: { who: 0 } }", // 7
        "  - send: 'hello ${who}'", // 8
      ].join('\n'),
    });
    const r = await run(join(dir, 's.yaml'), []);
    expect(r.code, r.out).toBe(3);
    expect(r.out).toContain('3 problem(s)');
    expect(r.out).toMatch(/s\.yaml:2:\d+: data: missing\.csv: ENOENT/);
    expect(r.out).toMatch(/s\.yaml:3:\d+: thresholds\[0\]: no step names the check 'nope'/);
    // Used before the capture that makes it (line 6), fine after it (line 8).
    expect(r.out).toMatch(/s\.yaml:6:\d+: steps\[1\]\.send: unknown variable \$\{who\}/);
    expect(r.out).not.toMatch(/s\.yaml:8:/);
  });
});
