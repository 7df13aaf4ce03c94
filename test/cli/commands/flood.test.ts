import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uwsEcho, wsServer, type TestServer } from '../helpers/servers.ts';
import { runCli } from '../helpers/spawn-cli.ts';

let echo: TestServer;
let limited: TestServer;
let mixed: TestServer;
/** The machine is shared with other test files: only the saturation test judges the generator. */
const RELAXED = ['--max-event-loop-p99', '1000', '--max-send-lag', '1000'];
const dir = mkdtempSync(join(tmpdir(), 'wsguard-cli-'));

beforeAll(async () => {
  echo = await uwsEcho();
  limited = await wsServer({ reject: () => ({ status: 429, headers: { 'Retry-After': '3' } }) });
  // Turns away every second attempt with a reason in the body and every fourth without a body reason.
  mixed = await wsServer({
    reject: (_req, n) => (n % 4 === 0 ? { status: 429, headers: { 'Retry-After': '1' } } : n % 2 === 0 ? { status: 429 } : undefined),
  });
});
afterAll(async () => {
  await echo.close();
  await limited.close();
  await mixed.close();
});

describe('wsguard flood (child process)', () => {
  it('exits 0 when every threshold passes and writes the result files', async () => {
    const json = join(dir, 'pass.json');
    const ndjson = join(dir, 'pass.ndjson');
    const r = await runCli([
      'flood',
      echo.url,
      '-c',
      '5',
      '-r',
      '20',
      '-d',
      '1.5s',
      '--threshold',
      'p99_rtt_ms<1000',
      '--threshold',
      'messages_lost==0',
      '--json',
      json,
      '--ndjson',
      ndjson,
      ...RELAXED,
    ]);
    expect(r.stderr).toBe('');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toContain('verdict: passed (exit 0)');
    const result = JSON.parse(readFileSync(json, 'utf8'));
    expect(result.verdict.exitCode).toBe(0);
    expect(result.messages.sent).toBe(result.messages.received);
    const lines = readFileSync(ndjson, 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(lines[0]!)).toHaveProperty('t');
  });

  it('exits 1 and names the threshold that failed, with thresholds from flags and a file', async () => {
    const file = join(dir, 'thresholds.yaml');
    writeFileSync(file, "thresholds:\n  - 'rejected.429>=3'\n  - 'opened==0'\n");
    const r = await runCli([
      'flood',
      limited.url,
      '-c',
      '3',
      '-d',
      '0.5s',
      '--threshold',
      'rejected.429<1',
      '--thresholds-file',
      file,
      ...RELAXED,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('threshold failed: rejected.429<1 (actual 3)');
    expect(r.stdout).toMatch(/rejected\.429>=3 +3 +pass/);
    expect(r.stdout).toMatch(/opened==0 +0 +pass/);
  });

  it('exits 3 on a usage error and names the problem', async () => {
    const unknown = await runCli(['flood', echo.url, '-c', '1', '--threshold', 'p98_banana<1']);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('unknown metric p98_banana');
  });

  it('shows the requested load and splits 429s by the reason the server gave', async () => {
    const r = await runCli(['flood', mixed.url, '-c', '8', '-r', '2', '--size', '100', '-d', '0.5s', ...RELAXED]);
    expect(r.stdout).toContain('requested: 8 connections, 2 msg/s each, 100 B messages, 0.5 s');
    expect(r.stdout).toMatch(/^rejected\.429 +4 /m);
    // wsServer answers {"error":"rejected"}: that field is the reason, whatever the headers said.
    expect(r.stdout).toMatch(/^ {2}rejected\.429 rejected +4 +reason given by the server$/m);
    expect(r.code, r.stdout).toBe(0);
  });

  it('off a terminal, prints a progress line every --progress-interval on stderr', async () => {
    const r = await runCli(['flood', echo.url, '-c', '2', '-r', '5', '-d', '2.5s', '--progress-interval', '1s', ...RELAXED]);
    const lines = r.stderr.split('\n').filter((l) => /^t=\d+s open=\d+/.test(l));
    expect(lines.length, r.stderr).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toMatch(/^t=1s open=2 /);
    expect(r.code).toBe(0);
  });

  it('the shards of one run carry one run id and merge in wsguard report', async () => {
    const files = ['1/2', '2/2'].map((s, i) => join(dir, `shard-run-${i + 1}.json`));
    const runs = await Promise.all(
      files.map((f, i) => runCli(['flood', echo.url, '-c', '4', '-d', '0.5s', '--shard', `${i + 1}/2`, '--json', f, ...RELAXED])),
    );
    expect(runs.map((x) => x.code)).toEqual([0, 0]);
    const ids = files.map((f) => JSON.parse(readFileSync(f, 'utf8')).runId);
    expect(ids[0]).toMatch(/^sharded-[0-9a-f]{16}$/);
    expect(ids[1]).toBe(ids[0]);
    const merged = await runCli(['report', ...files]);
    expect(merged.stdout).toContain('2 shards merged');
    expect(merged.code).toBe(0);
  });

  it('fails (exit 1) a run against a closed port: no connection opened, nothing was tested', async () => {
    // A port that was just free: every attempt is ECONNREFUSED.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const r = await runCli(['flood', `ws://127.0.0.1:${port}/`, '-c', '5', '-d', '0.5s', ...RELAXED]);
    expect(r.stdout).toContain('verdict: failed (exit 1)');
    expect(r.stdout).toMatch(/no connection opened \(5 attempts: error\.ECONNREFUSED×5\)/);
    expect(r.code).toBe(1);
  });

  it('fails (exit 1) a run where every connection got 429 and a latency threshold had no data', async () => {
    const r = await runCli([
      'flood',
      limited.url,
      '-c',
      '5',
      '-r',
      '10',
      '-d',
      '0.5s',
      '--threshold',
      'p99_rtt_ms<50',
      '--threshold',
      'p99_connect_ms<1000',
      ...RELAXED,
    ]);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toContain('threshold failed: p99_rtt_ms<50 (no data: nothing was measured)');
    // Refusals are not handshakes: they do not enter the connect percentiles either.
    expect(r.stdout).toContain('threshold failed: p99_connect_ms<1000 (no data: nothing was measured)');
    expect(r.stdout).toContain('no connection opened');
  });

  it('passes a run of refusals when the user asked for them (a threshold on rejected.*)', async () => {
    const r = await runCli(['flood', limited.url, '-c', '3', '-d', '0.5s', '--threshold', 'rejected.429==3', ...RELAXED]);
    expect(r.stdout).toContain('verdict: passed (exit 0)');
    expect(r.code).toBe(0);
  });

  it('asked for more than one core can generate: late timings, and the verdict names whose fault (exit 2 only for the generator)', async () => {
    const json = join(dir, 'saturated.json');
    const r = await runCli([
      'flood',
      echo.url,
      '-c',
      '50',
      '-r',
      '40000',
      '-d',
      '2s',
      '--max-msg-rate',
      '10000000',
      '--drain',
      '200',
      '--json',
      json,
    ]);
    const sat = JSON.parse(readFileSync(json, 'utf8')).saturation;
    expect(sat.reasons.join('\n')).toMatch(/scheduled messages were sent|event-loop delay|left [0-9.]* ms late/);
    // On a quiet machine the generator thread reaches its core; on one shared with other work it may
    // not, and then the run is not the generator's fault. Either way the verdict must say which.
    if (sat.threadCpuCoresPeak >= 0.8 || sat.verdict === 'saturated') {
      expect(r.stdout).toContain('verdict: invalid_run (exit 2)');
      expect(r.stdout).toContain('invalid run: the generator is saturated');
      expect(r.code).toBe(2);
    } else {
      expect(sat.verdict).toBe('machine_busy');
      expect(r.stdout).toContain('note: the machine is busy, not the generator');
      expect(r.code).toBe(0);
    }
  });
});
