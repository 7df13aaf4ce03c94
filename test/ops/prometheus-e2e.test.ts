/**
 * The operations pack against a real Prometheus (Debian's `prometheus`, 1 s scrape and evaluation)
 * scraping a real `wsguard serve`, while the project's own CLI drives a calm run, then a flood and a
 * reconnect storm. Asserts through Prometheus' HTTP API that every dashboard and rule expression
 * parses and finds the series the run produced, that WsguardConnectionSpike,
 * WsguardRateLimitViolationsHigh and WsguardReconnectStorm fire while the flood runs, and that
 * nothing fires during the calm run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { buildDashboard, DS_VAR } from '../../ops/dashboard.ts';
import { JOB } from '../../ops/promql.ts';
import { alertRules, E2E, recordingRules, ruleGroups } from '../../ops/rules.ts';
import { PROMETHEUS_NAMES, RUNTIME_PROMETHEUS_NAMES } from '../../src/telemetry/names.ts';
import { LOADGEN_PROMETHEUS_NAMES } from '../../cli/engine/live-metrics-names.ts';
import { TEST_SECRET } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

// The server comes from Debian's prometheus package; .ci/run installs it.
const PROMETHEUS = '/usr/bin/prometheus';

const BIN = new URL('../../bin/wsguard.js', import.meta.url).pathname;
const CALM_SEC = 15;
const LOAD_SEC = 15;
/** After the load, how long the fast copy of the rules gets to reach `firing` (for: 3 s, windows ≤ 10 s). */
const FIRING_GRACE_MS = 20_000;

/**
 * Series that appear only with their first event (docs/metrics.md) and that this run does not
 * provoke: a JWKS fetch, a Redis store, a backpressure episode, a dry-run policy. Queries over them
 * may come back empty; every other query must find data.
 */
const NOT_PRODUCED = new Set<string>([
  PROMETHEUS_NAMES.jwksRefresh,
  PROMETHEUS_NAMES.limitStoreErrors,
  // the memory store never degrades; the gauge appears with the first degraded/recovered event
  PROMETHEUS_NAMES.limitStoreDegraded,
  PROMETHEUS_NAMES.backpressure,
  // exported only with server.tls, which this run does not turn on (test/tls/ covers both)
  PROMETHEUS_NAMES.tlsReload,
  PROMETHEUS_NAMES.tlsCertificateExpiry,
]);
const DRY_RUN_PANEL_NOTE = 'decision="dry_run"';

const children: ChildProcess[] = [];
let upstream: TestUpstream;
let dir: string;
let prom: { url: string; log: () => string };
let gateway: { port: number; admin: string };
/** The main flood's --metrics-port: Prometheus scrapes the load generator too (the dashboard's "Load generator" row). */
let loadgenPort = 0;
const firingSeen = { calm: new Set<string>(), load: new Set<string>() };
let loadStartedAt = 0;
/** When the main flood's CLI process exited (epoch ms). */
let floodEndedAt = 0;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function start(cmd: string, args: string[]): { child: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, out: () => out, exited };
}

/** Polls `check` every 250 ms until it returns a value, or throws after `ms`. */
async function until<T>(what: string, ms: number, check: () => Promise<T | undefined>, diag: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms\n${diag().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

/** `atSec`: evaluate at that time (epoch seconds) instead of now. */
async function query(expr: string, atSec?: number): Promise<Sample[]> {
  const at = atSec === undefined ? '' : `&time=${atSec}`;
  const res = await fetch(`${prom.url}/api/v1/query?query=${encodeURIComponent(expr)}${at}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { result: Sample[] } };
  if (body.status !== 'success') throw new Error(`query failed: ${expr}\n${body.error}`);
  return body.data!.result;
}

const calmWindow = { start: 0, end: 0 };
async function queryRange(expr: string, w: { start: number; end: number }): Promise<unknown> {
  const res = await fetch(`${prom.url}/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${w.start}&end=${w.end}&step=1`);
  return ((await res.json()) as { data: unknown }).data;
}

async function firingNow(): Promise<string[]> {
  return (await query('ALERTS{alertstate="firing"}')).map((s) => s.metric['alertname']!);
}

/** Runs the CLI; resolves with its exit code and output. Never a usage error (exit 3). */
async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  const r = start(process.execPath, [BIN, ...args]);
  const code = await r.exited;
  return { code, out: r.out() };
}

/** Polls ALERTS while `work` runs, collecting every alert seen firing. */
async function watchAlerts(into: Set<string>, work: Promise<unknown>): Promise<void> {
  let done = false;
  void work.finally(() => (done = true));
  while (!done) {
    for (const a of await firingNow()) into.add(a);
    await new Promise((r) => setTimeout(r, 500));
  }
}

const AUTH = ['--jwt-alg', 'HS256', '--jwt-secret', TEST_SECRET];

describe('the operations pack against a real Prometheus (Debian package prometheus; .ci/run installs it)', () => {
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'wsguard-ops-e2e-'));
    upstream = await startEchoUpstream();
    const closedPort = await freePort();
    const serve = start(process.execPath, [
      BIN,
      'serve',
      '--port',
      '0',
      '--set',
      'telemetry.admin.port=0',
      '--route',
      `/ws/=${upstream.url}/ws/`,
      // nothing listens there: handshakes get 502 upstream_unavailable
      '--route',
      `/dead/=ws://127.0.0.1:${closedPort}/`,
      '--set',
      `auth.secret=${TEST_SECRET}`,
      '--set',
      'origins.allowed=["https://app.example"]',
      '--set',
      'messages.rate.perMinute=60',
      '--set',
      'messages.rate.burst=5',
      '--set',
      'messages.rate.action=drop',
      '--set',
      'messages.rate.notice=false',
      '--set',
      'messages.maxBytes=4096',
      // 6 attempts an hour per address: the storm's 4 addresses hold 5 connections each, so after the
      // drop one reconnect each succeeds and the rest get 429 attempt_limit (the flood's 90 addresses
      // use 5 attempts each).
      '--set',
      'limits.attempts.max=6',
    ]);
    gateway = await until(
      'wsguard serve banner',
      // Bounds for a hang: node + tsx can take many seconds to start on a loaded 2-core machine.
      40_000,
      async () => {
        const port = serve.out().match(/wsguard listening on ws:\/\/127\.0\.0\.1:(\d+)/)?.[1];
        const admin = serve.out().match(/metrics:\s+(http:\/\/127\.0\.0\.1:\d+)\/metrics/)?.[1];
        return port && admin ? { port: Number(port), admin } : undefined;
      },
      serve.out,
    );

    loadgenPort = await freePort();
    writeFileSync(join(dir, 'rules.yml'), stringify(ruleGroups(E2E)));
    writeFileSync(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: [join(dir, 'rules.yml')],
        scrape_configs: [
          { job_name: JOB, static_configs: [{ targets: [gateway.admin.replace('http://', '')] }] },
          { job_name: 'wsguard-loadgen', static_configs: [{ targets: [`127.0.0.1:${loadgenPort}`] }] },
        ],
      }),
    );
    const port = await freePort();
    const p = start(PROMETHEUS, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ]);
    prom = { url: `http://127.0.0.1:${port}`, log: p.out };
    await until(
      'Prometheus ready and scraping wsguard',
      30_000,
      async () => {
        const up = await query(`up{job="${JOB}"} == 1`);
        return up.length === 1 ? true : undefined;
      },
      p.out,
    );

    // Until its first scrape, absent(up) holds and the fast WsguardDown (for: 3 s) may fire: a
    // start-up artefact that production's for: 2m absorbs. The calm run starts once it has resolved.
    await until('no alert firing after start-up', 15_000, async () => ((await firingNow()).length === 0 ? true : undefined), p.out);

    // Calm: 5 clients well under every limit, watched for alerts for as long as the load runs.
    const calm = cli([
      'flood',
      `ws://127.0.0.1:${gateway.port}/ws/calm`,
      '-c',
      '5',
      '-r',
      '0.5',
      '-d',
      `${CALM_SEC}s`,
      '--source-ip',
      '127.0.0.2-127.0.0.6',
      ...AUTH,
    ]);
    calmWindow.start = Date.now() / 1000 - 10;
    await watchAlerts(firingSeen.calm, calm);
    calmWindow.end = Date.now() / 1000;
    const calmRun = await calm;
    expect(calmRun.code, calmRun.out).not.toBe(3);

    // Load: new connections at 30/s from 90 addresses (under 10 attempts/h each), each sending
    // 20 messages/s against a limit of 1/s (burst 5); a reconnect storm from 4 addresses that runs
    // into the attempt limit; and a few clients the policies refuse (no token, foreign origin,
    // a route whose app is down).
    loadStartedAt = Date.now();
    const base = `ws://127.0.0.1:${gateway.port}`;
    const load = Promise.all([
      cli([
        'flood',
        `${base}/ws/flood`,
        '--arrival-rate',
        '30',
        '--hold',
        '1s',
        '-r',
        '20',
        '-d',
        `${LOAD_SEC}s`,
        '--source-ip',
        '127.0.0.10-127.0.0.99',
        '--metrics-port',
        String(loadgenPort),
        '--run-id',
        'e2e-flood',
        ...AUTH,
      ]).finally(() => (floodEndedAt = Date.now())),
      cli([
        'storm',
        `${base}/ws/storm`,
        '-c',
        '20',
        '--drop-at',
        '2s',
        '--drop-mode',
        'reset',
        '--policy',
        'fixed:250',
        '-d',
        `${LOAD_SEC}s`,
        '--source-ip',
        '127.0.0.100-127.0.0.103',
        ...AUTH,
      ]),
      cli(['flood', `${base}/ws/noauth`, '-c', '3', '-d', '3s', '--source-ip', '127.0.0.110-127.0.0.112']),
      cli([
        'flood',
        `${base}/ws/origin`,
        '-c',
        '3',
        '-d',
        '3s',
        '--origin',
        'https://evil.example',
        '--source-ip',
        '127.0.0.113-127.0.0.115',
        ...AUTH,
      ]),
      // a token that expires after 2 s: 4200 closes (the policy range of the close-code panel)
      cli(['flood', `${base}/ws/expiry`, '-c', '3', '-d', '4s', '--jwt-exp', '2', '--source-ip', '127.0.0.119-127.0.0.121', ...AUTH]),
      // messages over messages.maxBytes: 1009 closes (the "other" range)
      cli([
        'flood',
        `${base}/ws/big`,
        '-c',
        '2',
        '-r',
        '1',
        '--size',
        '8000',
        '-d',
        '3s',
        '--source-ip',
        '127.0.0.122-127.0.0.123',
        ...AUTH,
      ]),
      cli(['flood', `${base}/dead/`, '-c', '3', '-d', '3s', '--source-ip', '127.0.0.116-127.0.0.118', ...AUTH]),
    ]);
    await watchAlerts(firingSeen.load, load);
    for (const r of await load) expect(r.code, r.out).not.toBe(3);
    // 30 s of runs plus start-up: a run on a heavily loaded 2-core machine overran a 120 s bound.
  }, 240_000);

  afterAll(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
    await upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('fires no alert during the calm run', async () => {
    const diag = firingSeen.calm.size ? JSON.stringify(await queryRange(`up{job="${JOB}"} or ALERTS`, calmWindow)) : '';
    expect([...firingSeen.calm], diag).toEqual([]);
  });

  it('fires WsguardConnectionSpike, WsguardRateLimitViolationsHigh and WsguardReconnectStorm during the flood and storm', async () => {
    const want = ['WsguardConnectionSpike', 'WsguardRateLimitViolationsHigh', 'WsguardReconnectStorm'];
    await until(
      'the load alerts firing',
      FIRING_GRACE_MS,
      async () => {
        for (const a of await firingNow()) firingSeen.load.add(a);
        return want.every((a) => firingSeen.load.has(a)) ? true : undefined;
      },
      () => `firing so far: ${[...firingSeen.load].join(', ')}`,
    );
    expect([...firingSeen.load]).toEqual(expect.arrayContaining(want));
    // When Prometheus itself first marked each alert firing: while the flood still ran, not after.
    const range = (await queryRange('ALERTS{alertstate="firing"}', { start: loadStartedAt / 1000 - 1, end: Date.now() / 1000 })) as {
      result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }>;
    };
    const first = Object.fromEntries(range.result.map((r) => [r.metric['alertname']!, Math.round(r.values[0]![0] * 1000 - loadStartedAt)]));
    console.log(`first firing, ms after the load began: ${JSON.stringify(first)}; the flood ended at ${floodEndedAt - loadStartedAt} ms`);
    for (const a of want) expect(first[a], a).toBeLessThanOrEqual(floodEndedAt - loadStartedAt);
  }, 30_000);

  it('every recording rule has data and every alert expression parses and names live metrics', async () => {
    for (const r of recordingRules(E2E)) {
      expect((await query(r.record)).length, r.record).toBeGreaterThan(0);
    }
    const names = new Set(((await (await fetch(`${prom.url}/api/v1/label/__name__/values`)).json()) as { data: string[] }).data);
    for (const a of alertRules(E2E)) {
      await query(a.expr); // throws with Prometheus' parse error
      for (const m of metricsIn(a.expr))
        if (!NOT_PRODUCED.has(m)) expect(names.has(m), `${a.alert} uses ${m}, which the run never produced`).toBe(true);
    }
  });

  it('every dashboard query finds the series the run produced, and the variables resolve', async () => {
    const dash = buildDashboard() as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
      templating: { list: Array<{ name: string; definition?: string }> };
    };
    const empty: string[] = [];
    for (const panel of dash.panels) {
      for (const t of panel.targets ?? []) {
        const expr = t.expr
          .replaceAll('$instance', '.*')
          .replaceAll('$route', '.*')
          .replaceAll('$run_id', '.*')
          .replaceAll('$__rate_interval', '1m');
        // The load generator's series end with its run (its endpoint closes, Prometheus marks them
        // stale): its panels are read as they were just before the main flood's process exited.
        const loadgen = metricsIn(t.expr).some((m) => LOADGEN_FAMILIES.has(m));
        const result = await query(expr, loadgen ? floodEndedAt / 1000 - 3 : undefined);
        if (result.length > 0) continue;
        const missing = metricsIn(t.expr).filter((m) => NOT_PRODUCED.has(m));
        if (missing.length === 0 && !t.expr.includes(DRY_RUN_PANEL_NOTE)) empty.push(`${panel.title}: ${t.expr}`);
      }
    }
    expect(empty).toEqual([]);
    for (const v of dash.templating.list.filter((v) => v.name !== DS_VAR)) {
      const m = v.definition!.match(/^label_values\((?:(.+), )?(\w+)\)$/)!;
      const match = m[1]!.replaceAll('$instance', '.*');
      const res = (await (await fetch(`${prom.url}/api/v1/label/${m[2]}/values?match[]=${encodeURIComponent(match)}`)).json()) as {
        data: string[];
      };
      expect(res.data.length, v.name).toBeGreaterThan(0);
    }
  });
});

const LOADGEN_FAMILIES = new Set<string>(Object.values(LOADGEN_PROMETHEUS_NAMES));
const KNOWN = [...Object.values(PROMETHEUS_NAMES), ...Object.values(RUNTIME_PROMETHEUS_NAMES), ...Object.values(LOADGEN_PROMETHEUS_NAMES)];
/** The wsguard metric families an expression reads (histogram series map to their family). */
function metricsIn(expr: string): string[] {
  const found = new Set<string>();
  for (const m of expr.matchAll(/\b([a-z_][a-z0-9_]*)\s*(?=[{[)\s])/g)) {
    const name = m[1]!.replace(/_(bucket|count|sum)$/, '');
    if (KNOWN.includes(name)) found.add(name);
  }
  return [...found];
}
