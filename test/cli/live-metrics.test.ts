import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { LOADGEN_INSTRUMENTS, LOADGEN_PROMETHEUS_NAMES } from '../../cli/engine/live-metrics-names.ts';
import { waitFor } from '../helpers/wait.ts';
import { uwsEcho, type TestServer } from './helpers/servers.ts';

const BIN = fileURLToPath(new URL('../../bin/wsguard.js', import.meta.url));
/** The machine is shared with other test files: these tests do not judge the generator. */
const RELAXED = ['--max-event-loop-p99', '10000', '--max-send-lag', '10000'];
const dir = mkdtempSync(join(tmpdir(), 'wsguard-live-'));

interface Child {
  proc: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** The real CLI as a child process, watched while it runs (runCli only returns once it ended). */
function startCli(args: string[]): Child {
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  proc.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)));
  // A bound for a hang: the test's own waits fail long before this.
  const killer = setTimeout(() => proc.kill('SIGKILL'), 90_000);
  void exited.then(() => clearTimeout(killer));
  return { proc, stderr: () => err, exited };
}

let echo: TestServer | undefined;
let child: Child | undefined;
let collector: Server | undefined;
afterEach(async () => {
  if (child && child.proc.exitCode === null) {
    child.proc.kill('SIGKILL');
    await child.exited;
  }
  child = undefined;
  await echo?.close();
  echo = undefined;
  await new Promise<void>((resolve) => (collector ? collector.close(() => resolve()) : resolve()));
  collector = undefined;
});

/** `name{…labels…} value` lines of a Prometheus text exposition that carry `run_id="id"`. */
function series(text: string, name: string, runId: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (m && m[1] === name && m[2]!.includes(`run_id="${runId}"`)) out.set(m[2]!, Number(m[3]));
  }
  return out;
}

describe('live metrics: --metrics-port', () => {
  it('serves the run’s counters with its run_id while the flood is still running', { timeout: 90_000 }, async () => {
    echo = await uwsEcho();
    const runId = `live-prom-${randomUUID().slice(0, 8)}`;
    const json = join(dir, `${runId}.json`);
    // Long enough to be scraped mid-run on a busy machine; SIGINT ends it once the test has seen enough.
    child = startCli([
      'flood',
      echo.url,
      '-c',
      '4',
      '-r',
      '50',
      '-d',
      '60s',
      '--metrics-port',
      '0',
      '--run-id',
      runId,
      '--json',
      json,
      ...RELAXED,
    ]);
    const url = await waitFor(() => /live metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(child!.stderr())?.[1], {
      timeoutMs: 30_000,
      what: 'the metrics URL on stderr',
    });
    const text = await waitFor(
      async () => {
        const body = await (await fetch(url)).text();
        const received = series(body, LOADGEN_PROMETHEUS_NAMES.messages, runId).get(`run_id="${runId}",shard="1/1",direction="received"`);
        return received !== undefined && received > 0 && body;
      },
      { timeoutMs: 30_000, what: 'a nonzero received counter' },
    );
    expect(child.proc.exitCode, 'scraped mid-run').toBeNull();
    const one = (name: string): number | undefined => series(text, name, runId).get(`run_id="${runId}",shard="1/1"`);
    expect(one(LOADGEN_PROMETHEUS_NAMES.attempts)).toBe(4);
    expect(one(LOADGEN_PROMETHEUS_NAMES.opened)).toBe(4);
    expect(one(LOADGEN_PROMETHEUS_NAMES.open)).toBe(4);
    expect(one(`${LOADGEN_PROMETHEUS_NAMES.roundTrip}_count`)).toBeGreaterThan(0);
    expect(one(`${LOADGEN_PROMETHEUS_NAMES.connectDuration}_count`)).toBe(4);
    expect(text).toMatch(
      new RegExp(`^${LOADGEN_PROMETHEUS_NAMES.roundTrip}_bucket\\{run_id="${runId}",shard="1/1",le="\\+Inf"\\} \\d+$`, 'm'),
    );
    // No per-connection or per-address label: the only labels are run_id, shard, direction, outcome and le.
    for (const m of text.matchAll(/^wsguard_loadgen_\w+\{([^}]*)\}/gm)) {
      for (const label of m[1]!.matchAll(/(\w+)="/g)) expect(['run_id', 'shard', 'direction', 'outcome', 'le']).toContain(label[1]);
    }

    child.proc.kill('SIGINT');
    expect(await child.exited).toBe(2); // stopped early: an invalid run, still reported
    expect(JSON.parse(readFileSync(json, 'utf8')).runId).toBe(runId);
    await expect(fetch(url)).rejects.toThrow(); // the endpoint ends with the run
  });

  it('serves a scenario run’s counters too (wsguard run shares the flags and the recorder hook)', { timeout: 90_000 }, async () => {
    echo = await uwsEcho();
    const runId = `live-run-${randomUUID().slice(0, 8)}`;
    const scenario = join(dir, `${runId}.yaml`);
    // Each user echoes for far longer than the test waits; SIGINT ends it.
    writeFileSync(
      scenario,
      [
        `url: ${echo.url}`,
        'load: { connections: 2, duration: 60s }',
        'steps:',
        '  - connect:',
        '  - loop:',
        '      count: 10000',
        '      steps:',
        '        - send: { text: hello }',
        '        - expect: { regex: hello, check: echoed, timeout: 10s }',
        '        - sleep: 20ms',
      ].join('\n'),
    );
    child = startCli(['run', scenario, '--metrics-port', '0', '--run-id', runId, ...RELAXED]);
    const url = await waitFor(() => /live metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(child!.stderr())?.[1], {
      timeoutMs: 30_000,
      what: 'the metrics URL on stderr',
    });
    await waitFor(
      async () => {
        const body = await (await fetch(url)).text();
        const received = series(body, LOADGEN_PROMETHEUS_NAMES.messages, runId).get(`run_id="${runId}",shard="1/1",direction="received"`);
        return received !== undefined && received > 0 && body;
      },
      { timeoutMs: 30_000, what: 'a nonzero received counter from the scenario' },
    );
    expect(child.proc.exitCode, 'scraped mid-run').toBeNull();
    child.proc.kill('SIGINT');
    await child.exited;
  });

  it('names the option when the port is taken', { timeout: 60_000 }, async () => {
    collector = createServer();
    await new Promise<void>((resolve) => collector!.listen(0, '127.0.0.1', resolve));
    const port = (collector.address() as AddressInfo).port;
    child = startCli(['flood', 'ws://127.0.0.1:1/', '-c', '1', '-d', '1s', '--metrics-port', String(port)]);
    expect(await child.exited).toBe(3);
    expect(child.stderr()).toContain(`--metrics-port ${port} on 127.0.0.1: the port is already in use`);
  });
});

interface OtlpPoint {
  attributes?: { key: string; value: { stringValue?: string } }[];
  asInt?: string | number;
  asDouble?: number;
  count?: string | number;
}
interface OtlpBody {
  resourceMetrics: {
    scopeMetrics: { metrics: { name: string; sum?: { dataPoints: OtlpPoint[] }; histogram?: { dataPoints: OtlpPoint[] } }[] }[];
  }[];
}

/** Every data point of `name` in one OTLP/JSON export request, with its attributes as a record. */
function points(body: OtlpBody, name: string): { attrs: Record<string, string>; value: number }[] {
  const out: { attrs: Record<string, string>; value: number }[] = [];
  for (const rm of body.resourceMetrics)
    for (const sm of rm.scopeMetrics)
      for (const m of sm.metrics) {
        if (m.name !== name) continue;
        for (const p of (m.sum ?? m.histogram)?.dataPoints ?? []) {
          const attrs = Object.fromEntries((p.attributes ?? []).map((a) => [a.key, a.value.stringValue ?? '']));
          out.push({ attrs, value: Number(p.asInt ?? p.asDouble ?? p.count) });
        }
      }
  return out;
}

describe('live metrics: OTLP push', () => {
  it('pushes the run’s totals over all worker threads to a collector, mid-run and once more at the end', { timeout: 90_000 }, async () => {
    echo = await uwsEcho();
    const bodies: { at: 'running' | 'ended'; body: OtlpBody; contentType: string }[] = [];
    const runId = `live-otlp-${randomUUID().slice(0, 8)}`;
    const json = join(dir, `${runId}.json`);
    collector = createServer((req: IncomingMessage, res) => {
      let data = '';
      req.setEncoding('utf8').on('data', (d: string) => (data += d));
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/v1/metrics') {
          bodies.push({
            at: child?.proc.exitCode === null ? 'running' : 'ended',
            body: JSON.parse(data) as OtlpBody,
            contentType: String(req.headers['content-type']),
          });
        }
        res.writeHead(200, { 'Content-Type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => collector!.listen(0, '127.0.0.1', resolve));
    const endpoint = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    child = startCli([
      'flood',
      echo.url,
      '-c',
      '4',
      '-r',
      '50',
      '-d',
      '6s',
      '--workers',
      '2',
      '--otlp-endpoint',
      endpoint,
      '--otlp-interval',
      '500ms',
      '--run-id',
      runId,
      '--json',
      json,
      ...RELAXED,
    ]);
    const received = (b: OtlpBody): number =>
      points(b, LOADGEN_INSTRUMENTS.messages)
        .filter((p) => p.attrs.run_id === runId && p.attrs.direction === 'received')
        .reduce((a, p) => a + p.value, 0);
    await waitFor(() => bodies.some((b) => b.at === 'running' && received(b.body) > 0), {
      timeoutMs: 30_000,
      what: 'a mid-run push with received messages',
    });
    expect(await child.exited).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8'));
    expect(result.config.workers).toBe(2);
    // The last push is the final one: the process's total over both threads, equal to the result's.
    const last = bodies.at(-1)!;
    expect(last.contentType).toContain('application/json');
    const total = (name: string, attrs: Record<string, string> = {}): number =>
      points(last.body, name)
        .filter((p) => p.attrs.run_id === runId && p.attrs.shard === '1/1' && Object.entries(attrs).every(([k, v]) => p.attrs[k] === v))
        .reduce((a, p) => a + p.value, 0);
    expect(total(LOADGEN_INSTRUMENTS.attempts)).toBe(result.connections.attempts);
    expect(total(LOADGEN_INSTRUMENTS.messages, { direction: 'sent' })).toBe(result.messages.sent);
    expect(total(LOADGEN_INSTRUMENTS.messages, { direction: 'received' })).toBe(result.messages.received);
    expect(total(LOADGEN_INSTRUMENTS.outcomes, { outcome: 'completed' })).toBe(result.outcomes.completed);
    expect(total(LOADGEN_INSTRUMENTS.roundTrip)).toBe(result.latency.rtt.count);
    expect(result.messages.sent).toBeGreaterThan(0);
  });
});
