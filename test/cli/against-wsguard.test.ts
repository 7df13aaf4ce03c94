import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runFlood } from '../../cli/engine/flood.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { TEST_SECRET } from '../helpers/tokens.ts';
import { waitFor } from '../helpers/wait.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { floodOptions } from './helpers/flood-options.ts';
import { runCli } from './helpers/spawn-cli.ts';

/**
 * The toolkit against the real sidecar: its limits as configured must be what the probe observes.
 * Each test gets its own sidecar and app: counts and limits are state, and a test must not start
 * from what the one before it left.
 */
let upstream: TestUpstream;
let gw: TestGateway;
let upstreamMessages = 0;

beforeEach(async () => {
  upstreamMessages = 0;
  upstream = await startEchoUpstream();
  gw = await startTestGateway(upstream.url, {
    origins: { allowed: ['https://app.example'] },
    limits: { concurrent: { max: 3 }, attempts: { max: 1000 } },
    auth: { audience: 'app' },
    messages: { maxBytes: 1024, rate: { perMinute: 10, burst: 10, action: 'close' } },
  });
  const countMessages = (ws: import('ws').WebSocket) => ws.on('message', () => upstreamMessages++);
  // Every upstream-side socket counts what reached the app.
  const watch = (): void => {
    void upstream.nextSocket().then((ws) => {
      countMessages(ws);
      watch();
    });
  };
  watch();
});

afterEach(async () => {
  await gw.close();
  await upstream.close();
});

const AUTH = ['--jwt-alg', 'HS256', '--jwt-secret', TEST_SECRET, '--jwt-claims', '{"sub":"u{{i}}","aud":"app"}'];

describe('wsguard probe against wsguard serve', () => {
  it('every built-in check passes and the metrics moved as expected (exit 0)', async () => {
    const admin = gw.server.telemetry!.admin!.url;
    const r = await runCli(
      [
        'probe',
        `${gw.base}/ws/probe`,
        '--origin',
        'https://app.example',
        '--conn-limit',
        '3',
        '--msg-limit',
        '10',
        '--auth-required',
        '--bad-origin',
        'https://evil.example',
        '--max-size',
        '1024',
        '--metrics-url',
        `${admin}/metrics`,
        '--expect-metric',
        'wsguard_connections_rejected_total{reason="conn_limit"}>=1',
        '--expect-metric',
        'wsguard_connections_rejected_total{reason="auth"}>=4',
        '--expect-metric',
        'wsguard_messages_rate_limited_total{action="close"}>=1',
        ...AUTH,
        '--audience',
        'app',
        '--settle',
        '150',
      ],
      30_000,
    );
    expect(r.stdout).not.toMatch(/^FAIL/m);
    expect(r.stdout).toContain('12 checks, 0 failed');
    expect(r.stdout).toContain('PASS  connection 4 is refused: observed rejected.429');
    expect(r.stdout).toMatch(/PASS .* observed closed\.4129/);
    expect(r.stdout).toMatch(/PASS .* observed closed\.1009/);
    expect(r.stdout).toMatch(/PASS .*403/);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});

describe('wsguard flood against wsguard serve', () => {
  const jwt = { alg: 'HS256' as const, secret: TEST_SECRET, claimsTemplate: '{"sub":"u{{i}}","aud":"app"}', expSec: 300 };

  it('counts exactly what the upstream counted', async () => {
    const before = upstreamMessages;
    // 3 connections × 4 msg/s × 1.5 s stays inside the 10-message bucket.
    const result = await runFlood(
      floodOptions(`${gw.base}/ws/flood`, {
        connections: 3,
        msgRate: 4,
        durationSec: 1.5,
        expectEcho: true,
        origin: 'https://app.example',
        auth: { jwt },
      }),
    );
    expect(result.messages.sent).toBeGreaterThan(0);
    // Every message the flood counted as echoed has reached the upstream; wait for its count to settle.
    await waitFor(() => upstreamMessages - before >= result.messages.sent, { timeoutMs: 5_000 });
    expect(upstreamMessages - before).toBe(result.messages.sent);
    expect(result.messages.received).toBe(result.messages.sent);
    expect(result.outcomes, JSON.stringify(result.outcomes)).toEqual({ completed: 3 });
  });

  it('names the 4129 closes when the rate limit fires', async () => {
    const result = await runFlood(
      floodOptions(`${gw.base}/ws/flood`, {
        connections: 3,
        msgRate: 30,
        durationSec: 1.5,
        expectEcho: true,
        origin: 'https://app.example',
        auth: { jwt },
      }),
    );
    expect(result.outcomes['closed.4129']).toBe(3);
  });

  it('--token-in query puts the token where wsguard serve reads it (auth.queryParam default)', async () => {
    const r = await runCli([
      'flood',
      `${gw.base}/ws/flood`,
      '-c',
      '2',
      '-d',
      '0.5s',
      '--token-in',
      'query',
      '--origin',
      'https://app.example',
      ...AUTH,
      '--threshold',
      'opened==2',
      '--max-event-loop-p99',
      '1000',
      '--max-send-lag',
      '1000',
    ]);
    expect(r.stdout).not.toContain('rejected.401');
    expect(r.stdout).toContain('verdict: passed (exit 0)');
    expect(r.code).toBe(0);
  });
});
