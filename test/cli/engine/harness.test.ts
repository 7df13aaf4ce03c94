import { afterEach, describe, expect, it } from 'vitest';
import { isCliError } from '../../../cli/cli-error.ts';
import { parseShard } from '../../../cli/common-options.ts';
import { stormOptionsFromArgs, type StormArgs } from '../../../cli/commands/storm.ts';
import { floodOptionsFromArgs } from '../../../cli/commands/flood.ts';
import { runFlood } from '../../../cli/engine/flood.ts';
import { publicConfig, Recorder, redactText } from '../../../cli/engine/recorder.ts';
import { DEFAULT_SATURATION_LIMITS } from '../../../cli/engine/saturation.ts';
import { runStorm, STORM_DEFAULTS, type StormOptions } from '../../../cli/engine/storm.ts';
import { checkCaps, DEFAULT_CAPS, isLoopback, Target } from '../../../cli/engine/target.ts';
import { floodOptions } from '../helpers/flood-options.ts';
import { uwsEcho, type TestServer } from '../helpers/servers.ts';

let servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

const SECRET = 'hs256-secret-never-reported';

function stormOptions(url: string, o: Partial<StormOptions> = {}): StormOptions {
  return {
    ...STORM_DEFAULTS,
    url,
    connections: 2,
    dropAtSec: 0.3,
    dropAfterHeld: true,
    durationSec: 0.8,
    policy: { kind: 'immediate' },
    settleMs: 20,
    closeGraceMs: 300,
    handshakeTimeoutMs: 2_000,
    saturation: { ...DEFAULT_SATURATION_LIMITS, maxEventLoopP99Ms: 10_000 },
    ...o,
  };
}

describe('the run harness: target', () => {
  it('detects loopback targets by host name, not by a pattern over the whole URL', () => {
    expect(isLoopback('ws://127.0.0.9:1/')).toBe(true);
    expect(isLoopback('ws://localhost:1/')).toBe(true);
    expect(isLoopback('ws://[::1]:1/')).toBe(true);
    // storm's regex used to call these loopback: a host that merely starts with the word, and a path.
    expect(isLoopback('ws://localhost.example.com/')).toBe(false);
    expect(isLoopback('ws://example.com//127.0.0.1/')).toBe(false);
  });

  it('names the cap a load would exceed, with the flag that set the rate', () => {
    const demand = { durationSec: 1, peakConnections: 1, connRate: 1, connRateFlag: '--connect-rate', msgRate: 0 };
    const refused = (d: Partial<typeof demand>): string => {
      try {
        checkCaps({ ...demand, ...d }, DEFAULT_CAPS);
      } catch (err) {
        expect(isCliError(err) && err.code).toBe('cap_exceeded');
        return (err as Error).message;
      }
      return 'accepted';
    };
    expect(refused({})).toBe('accepted');
    expect(refused({ durationSec: DEFAULT_CAPS.maxDurationSec + 1 })).toContain('--max-duration');
    expect(refused({ peakConnections: DEFAULT_CAPS.maxConnections + 1 })).toContain('--max-connections');
    expect(refused({ connRate: DEFAULT_CAPS.maxConnRate + 1, connRateFlag: '--arrival-rate' })).toMatch(/--arrival-rate .*--max-conn-rate/);
    expect(refused({ msgRate: DEFAULT_CAPS.maxMsgRate + 1 })).toContain('--max-msg-rate');
  });

  it('mints the first token before the run, so a key mistake is a config error, not failed attempts', async () => {
    const o = { ...floodOptions('ws://127.0.0.1:1/', {}), auth: { jwt: { alg: 'HS256' as const, expSec: 60 } } };
    const demand = { durationSec: 1, peakConnections: 1, connRate: 1, connRateFlag: '--connect-rate', msgRate: 0 };
    await expect(Target.prepare(o, demand)).rejects.toMatchObject({ code: 'config', message: expect.stringContaining('--jwt-secret') });
  });

  it.each([
    ['flood', (url: string) => runFlood(floodOptions(url, { connections: 1 }))],
    ['storm', (url: string) => runStorm(stormOptions(url))],
  ])('%s refuses a target that is not ws:// or wss:// before dialling (storm used to fail every attempt instead)', async (_, run) => {
    await expect(run('http://127.0.0.1:1/')).rejects.toMatchObject({ code: 'usage', message: expect.stringContaining('ws:// or wss://') });
    await expect(run('not a url')).rejects.toMatchObject({ code: 'usage', message: expect.stringContaining('invalid target URL') });
  });

  it('splits a storm shard like a flood shard: connections, rate, users and rotated source addresses', () => {
    const args = {
      url: 'ws://127.0.0.1:1/',
      connections: 5,
      duration: '2s',
      dropAt: '1s',
      dropAfterHeld: false,
      dropPercent: 100,
      dropMode: 'reset',
      policy: 'immediate',
      maxAttempts: 0,
      honourRetryAfter: false,
      connectRate: 100,
      settle: 200,
      handshakeTimeout: 1_000,
      maxConnections: 10,
      maxConnRate: 1_000,
      maxMsgRate: 10,
      maxDuration: 10,
      maxEventLoopP99: 100,
      maxSendLag: 100,
      ignorePreflight: false,
      killWindow: 5,
      killMinEvents: 20,
      quiet: true,
      progressInterval: '0',
      sourceIp: ['127.0.0.2-127.0.0.4'],
      shard: '2/2',
    } as StormArgs;
    const storm = stormOptionsFromArgs(args);
    expect(storm).toMatchObject({ connections: 2, connectRate: 50, userOffset: 1, userStride: 2 });
    // Shares start on different source addresses, as flood's do (storm's shards all started on the first).
    expect(storm.sourceIps).toEqual(['127.0.0.3', '127.0.0.4', '127.0.0.2']);
    expect(parseShard(args.shard)).toEqual({ index: 2, count: 2 });
    return floodOptionsFromArgs({
      ...args,
      rate: 0,
      size: 64,
      binary: false,
      echo: true,
      maxInflight: 0,
      drain: 0,
      workers: 1,
    } as never).then((flood) => expect(flood.sourceIps).toEqual(storm.sourceIps));
  });
});

describe('the run harness: recorder', () => {
  it('reports each second as deltas and outcomes as they happened in it', () => {
    const samples: number[] = [];
    const rec = new Recorder((p) => samples.push(p.attempts));
    rec.attempt();
    rec.attempt();
    rec.openedSocket(3);
    rec.failedAttempt('rejected.429', 'conn_limit');
    const first = rec.sample(rec.t0 + 1000);
    expect(first).toMatchObject({ t: 1, open: 1, opening: 0, attempts: 2, opened: 1, outcomes: { 'rejected.429': 1 }, rttCount: 0 });
    rec.attempt();
    rec.sent += 5;
    rec.roundTrip(4, 2);
    rec.closed('closed.4100', '{"r":"conn_limit"}');
    const second = rec.sample(rec.t0 + 2000);
    expect(second).toMatchObject({
      t: 2,
      open: 0,
      opening: 1,
      attempts: 1,
      opened: 0,
      sent: 5,
      outcomes: { 'closed.4100': 1 },
      rttCount: 1,
    });
    expect(rec.sample(rec.t0 + 3000)).toMatchObject({ attempts: 0, sent: 0, outcomes: {}, rttCount: 0, rttP99Ms: 0 });
    expect(samples).toEqual([2, 1, 0]);
    expect(rec.peakOpen).toBe(1);
    expect(rec.outcomes.toJSON()).toEqual({ 'closed.4100': 1, 'rejected.429': 1 });
  });

  it('takes tokens out of outcome details, URLs and the recorded config', () => {
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl';
    expect(redactText(`Invalid URL: ws://h/ws?access_token=${jwt}&room=1`)).toBe('Invalid URL: ws://h/ws?access_token=[redacted]&room=1');
    expect(redactText(`Bearer ${jwt}`)).toBe('Bearer [redacted]');
    expect(redactText(`close reason ${jwt}`)).toBe('close reason [redacted]');
    expect(redactText('ws://h/ws?room=1')).toBe('ws://h/ws?room=1');
    const rec = new Recorder();
    rec.outcome('error.UNCLASSIFIED', `Invalid URL: ws://h/?token=${jwt}`);
    expect(JSON.stringify(rec.outcomes.detailsJSON())).not.toContain(jwt);
    const config = publicConfig({
      ...floodOptions(`ws://h/?access_token=${jwt}`, {}),
      auth: { token: jwt, headers: { Authorization: `Bearer ${jwt}` }, jwt: { alg: 'HS256', secret: SECRET, expSec: 60 } },
    });
    const text = JSON.stringify(config);
    expect(text).not.toContain(jwt);
    expect(text).not.toContain(SECRET);
    expect(config.auth).toEqual({ tokenIn: undefined, jwt: { alg: 'HS256', expSec: 60 }, headers: ['Authorization'] });
  });

  it.each([
    ['flood', (url: string, auth: StormOptions['auth']) => runFlood(floodOptions(url, { connections: 1, auth }))],
    ['storm', (url: string, auth: StormOptions['auth']) => runStorm(stormOptions(url, { auth }))],
  ])('%s reports no token or secret anywhere in its result (the target URL used to carry them)', async (_, run) => {
    const s = await uwsEcho();
    servers.push(s);
    const auth = {
      tokenIn: 'header' as const,
      headers: { 'X-Api-Key': 'static-key-never-reported' },
      jwt: { alg: 'HS256' as const, secret: SECRET, expSec: 60 },
    };
    const r = await run(`${s.url}?access_token=url-token-never-reported`, auth);
    expect(r.connections.opened).toBeGreaterThan(0);
    const text = JSON.stringify(r);
    for (const secret of [SECRET, 'static-key-never-reported', 'url-token-never-reported']) expect(text).not.toContain(secret);
    expect(r.target).toContain('access_token=[redacted]');
    expect(r.config.auth).toMatchObject({ headers: ['X-Api-Key'], jwt: { alg: 'HS256' } });
  });
});
