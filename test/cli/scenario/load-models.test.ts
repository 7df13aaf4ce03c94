import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunResult } from '../../../cli/engine/result.ts';
import { useGateway } from '../../helpers/gateway.ts';
import { TEST_SECRET } from '../../helpers/tokens.ts';
import { runCli } from '../helpers/spawn-cli.ts';

/** The scenario runner takes its arrivals from flood's load models: the same flags, the same shapes. */
// Bounds for a hang, not measurements: a 2-core machine at load average 20 took over 5 s (the
// defaults) for some users' handshakes and echoes, and those users were stopped at the end of the run.
const SCENARIO = [
  'load: { gracefulStop: 60s }',
  'steps:',
  '  - connect: { timeout: 30s }',
  "  - send: 'u${user}'",
  "  - expect: { regex: '^u${user}$', check: echoed, timeout: 30s }",
  '  - sleep: 100ms',
  '  - close: 1000',
].join('\n');

async function runWith(flags: string[], scenario = SCENARIO): Promise<{ code: number | null; out: string; result: RunResult }> {
  const gw = await useGateway({
    // The sidecar's defaults (10 attempts per IP per hour, 60 messages per minute) would refuse this load from one address.
    config: { limits: { attempts: { max: 1000 } }, messages: { rate: { perMinute: 60_000, burst: 1_000 } } },
  });
  const dir = mkdtempSync(join(tmpdir(), 'wsguard-scenario-models-'));
  writeFileSync(join(dir, 's.yaml'), scenario);
  const json = join(dir, 'out.json');
  const r = await runCli(
    [
      'run',
      join(dir, 's.yaml'),
      '--url',
      `${gw.base}/ws/echo`,
      '--jwt-alg',
      'HS256',
      '--jwt-secret',
      TEST_SECRET,
      '--json',
      json,
      ...flags,
    ],
    60_000,
  );
  return { code: r.code, out: r.stdout + r.stderr, result: JSON.parse(readFileSync(json, 'utf8')) as RunResult };
}

describe('wsguard run: load models', () => {
  it('--arrival-rate starts users at the rate until the duration; each runs the steps once', async () => {
    const { code, out, result } = await runWith(['--arrival-rate', '10', '-d', '1s']);
    expect(code, out).toBe(0);
    expect(result.config.loadModel).toBe('constant-arrival-rate');
    const u = result.scenario!.users;
    // 10/s for 1 s: the tenth user is due at 0.9 s; a stalled tick on a busy machine may miss one or two.
    expect(u.started).toBeGreaterThanOrEqual(8);
    expect(u.started).toBeLessThanOrEqual(10);
    expect(u.finished).toBe(u.started);
    expect(result.scenario!.checks.echoed).toEqual({ passes: u.started, fails: 0 });
    expect(result.outcomes).toEqual({ completed: u.started });
  });

  it('--stages keeps the running users at the stage target: finished users are replaced (iterations)', async () => {
    const { code, out, result } = await runWith(['--stages', '1500ms:3', '--connect-rate', '100']);
    expect(code, out).toBe(0);
    expect(result.config.loadModel).toBe('ramping-vus');
    const u = result.scenario!.users;
    // Each iteration takes at least 100 ms of sleep, so 3 users over 1.5 s replace themselves several times.
    expect(u.started).toBeGreaterThan(3);
    expect(u.finished + u.stopped).toBe(u.started);
    expect(result.scenario!.checks.echoed!.fails).toBe(0);
  });

  it("a flood is a one-step scenario: flood's payloads, markers and CO-corrected RTT in the same result", async () => {
    const scenario = [
      'load: { gracefulStop: 60s }',
      'steps:',
      '  - connect: { timeout: 30s }',
      '  - flood: { rate: 40, count: 30, size: 64, drain: 30s }',
    ].join('\n');
    const { code, out, result } = await runWith(['-c', '3', '--threshold', 'messages_lost==0', '--threshold', 'p99_rtt_ms<1000'], scenario);
    expect(code, out).toBe(0);
    expect(result.messages).toMatchObject({ sent: 90, received: 90, lost: 0, unmatched: 0, bytesOut: 90 * 64 });
    expect(result.latency.rtt.count).toBe(90);
    expect(result.latency.rttUncorrected.count).toBe(90);
    expect(result.outcomes).toEqual({ completed: 3 });
  });
});
