import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uwsEcho, wsServer, type TestServer } from '../helpers/servers.ts';
import { runCli } from '../helpers/spawn-cli.ts';

let echo: TestServer;
const RELAXED = ['--max-event-loop-p99', '1000', '--max-send-lag', '1000'];

beforeAll(async () => {
  echo = await uwsEcho();
});
afterAll(async () => {
  await echo.close();
});

describe('wsguard storm (child process)', () => {
  it('fails (exit 1) a storm in which no connection opened', async () => {
    const refusing = await wsServer({ reject: () => ({ status: 429 }) });
    try {
      const r = await runCli(['storm', refusing.url, '-c', '3', '-d', '1s', '--drop-at', '0.5s', '--policy', 'fixed:100', ...RELAXED]);
      expect(r.stdout).toContain('verdict: failed (exit 1)');
      expect(r.stdout).toContain('no connection opened');
      expect(r.code).toBe(1);
    } finally {
      await refusing.close();
    }
  });

  it('exits 1 when recovery is slower than the threshold allows', async () => {
    // recovered==10 holds and recover_p50_ms<50 cannot (the policy waits 100 ms): exit 1 names only the latter.
    const r = await runCli([
      'storm',
      echo.url,
      '-c',
      '10',
      '-d',
      '2s',
      '--drop-at',
      '0.5s',
      '--drop-after-held',
      '--policy',
      'fixed:100',
      '--threshold',
      'recover_p50_ms<50',
      '--threshold',
      'recovered==10',
      ...RELAXED,
    ]);
    expect(r.stdout).toContain('storm: held 10, dropped 10 (reset)');
    expect(r.stdout).toContain('recovered==10');
    expect(r.stdout).not.toContain('threshold failed: recovered==10');
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toContain('threshold failed: recover_p50_ms<50');
  });
});

describe('wsguard storm --source-ip', () => {
  it('auto binds real 127.0.0.x addresses (it used to pass the word through: every attempt ERR_INVALID_IP_ADDRESS)', async () => {
    const r = await runCli([
      'storm',
      echo.url,
      '-c',
      '3',
      '-d',
      '1.5s',
      '--drop-at',
      '0.5s',
      '--drop-after-held',
      '--policy',
      'fixed:50',
      '--source-ip',
      'auto',
      ...RELAXED,
    ]);
    expect(r.stdout).not.toContain('ERR_INVALID_IP_ADDRESS');
    expect(r.stdout).toContain('storm: held 3, dropped 3 (reset)');
    expect(r.code, r.stdout).toBe(0);
  });

  it.each([['storm'], ['flood']])('%s refuses a --source-ip that is not an address (exit 3)', async (cmd) => {
    const r = await runCli([cmd, echo.url, '-c', '1', '--source-ip', 'banana']);
    expect(r.stderr).toContain('--source-ip banana: expected an IP address');
    expect(r.code).toBe(3);
  });
});

describe('wsguard storm flags', () => {
  it('refuses the flood-only kill switch with exit 3 instead of ignoring it', async () => {
    const r = await runCli(['storm', 'ws://127.0.0.1:1/', '--kill-error-rate', '0.5']);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('storm has no kill switch');
  });
});
