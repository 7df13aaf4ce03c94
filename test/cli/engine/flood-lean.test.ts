import { afterEach, describe, expect, it } from 'vitest';
import { runFlood } from '../../../cli/engine/flood.ts';
import { createPayloadBytes } from '../../../cli/engine/payload-bytes.ts';
import { createPayloadFactory } from '../../../cli/engine/payload.ts';
import { DEFAULT_SATURATION_LIMITS, GENERATOR_CORE_SHARE } from '../../../cli/engine/saturation.ts';
import { SendTimes } from '../../../cli/engine/send-times.ts';
import { startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { TEST_SECRET } from '../../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../../helpers/upstream.ts';
import { waitFor } from '../../helpers/wait.ts';
import { floodOptions } from '../helpers/flood-options.ts';
import { uwsEcho, type TestServer } from '../helpers/servers.ts';

describe('SendTimes', () => {
  it('returns each send time once, in or out of order, past ring growth and slot collisions', () => {
    const t = new SendTimes();
    // 5 000 in flight at once (the ring grows), then answers in a scrambled order.
    for (let s = 0; s < 5_000; s++) t.set(s, s * 0.5);
    expect(t.size).toBe(5_000);
    const order = Array.from({ length: 5_000 }, (_, i) => (i * 7919) % 5_000);
    for (const s of order) expect(t.take(s)).toBe(s * 0.5);
    expect(t.size).toBe(0);
    expect(t.take(3)).toBeUndefined();
    expect(t.take(-1)).toBeUndefined();
  });

  it('keeps a message that is never answered while later ones reuse its slot (overflow), without growing forever', () => {
    const t = new SendTimes();
    t.set(0, 42);
    // Answered one by one: the ring never needs more than a slot or two, so seq 0's slot comes round
    // again hundreds of times; seq 0 must survive in the overflow.
    let wrong = 0;
    for (let s = 1; s < 20_000; s++) {
      t.set(s, s);
      if (t.take(s) !== s) wrong++;
    }
    expect(wrong).toBe(0);
    expect(t.size).toBe(1);
    expect(t.take(0)).toBe(42);
    expect(t.take(0)).toBeUndefined();
  });
});

describe('createPayloadBytes', () => {
  it('makes byte for byte what the string factory makes, text and binary, across marker lengths', () => {
    for (const spec of [{ sizeBytes: 64 }, { sizeBytes: 12 }, { sizeBytes: 64, binary: true }, { sizeBytes: 5 }, { sizeBytes: 22 }]) {
      const bytes = createPayloadBytes(spec, 3)!;
      const strings = createPayloadFactory(spec, 3);
      for (const seq of [0, 1, 9, 10, 99, 100, 12345, 9_999_999, 10_000_000, 123_456_789_012, 999_999_999_999_999, 1_000_000_000_000_000]) {
        const s = strings(seq);
        expect(Buffer.from(bytes(seq)).equals(Buffer.from(s)), `${JSON.stringify(spec)} seq ${seq}`).toBe(true);
      }
    }
    expect(createPayloadBytes({ template: '{{marker}} hi' }, 0)).toBeNull();
  });
});

describe('flood over the lean client', () => {
  let upstream: TestUpstream | undefined;
  let gw: TestGateway | undefined;
  let echo: TestServer | undefined;
  afterEach(async () => {
    await gw?.close();
    await upstream?.close();
    await echo?.close();
    gw = upstream = echo = undefined;
  });

  it('through wsguard serve to a real echo app: every message counted, sent == received == what the app saw', async () => {
    upstream = await startEchoUpstream();
    let appMessages = 0;
    const watchApp = (): void => {
      void upstream!.nextSocket().then((ws) => {
        ws.on('message', () => appMessages++);
        watchApp();
      });
    };
    watchApp();
    gw = await startTestGateway(upstream.url, {
      auth: { audience: 'app' },
      limits: { concurrent: { max: 100 }, attempts: { max: 1000 } },
      messages: { rate: { perMinute: 1_000_000, burst: 100_000 } },
    });
    const jwt = { alg: 'HS256' as const, secret: TEST_SECRET, claimsTemplate: '{"sub":"u{{i}}","aud":"app"}', expSec: 60 };
    const r = await runFlood(
      floodOptions(`${gw.base}/ws/lean`, { connections: 8, msgRate: 200, durationSec: 1.5, auth: { jwt }, transport: 'lean' }),
    );
    const seen = JSON.stringify({
      outcomes: r.outcomes,
      details: r.outcomeDetails,
      messages: r.messages,
      saturation: r.saturation.reasons,
    });
    expect(r.outcomes, seen).toEqual({ completed: 8 });
    expect(r.connections.opened).toBe(8);
    // How many left depends on how fast the handshakes went on a busy machine; that all came back does not.
    expect(r.messages.sent, seen).toBeGreaterThan(100);
    expect(r.messages.received, seen).toBe(r.messages.sent);
    expect(r.messages.unmatched).toBe(0);
    expect(r.messages.lost).toBe(0);
    expect(r.latency.rtt.count).toBe(r.messages.sent);
    await waitFor(() => appMessages >= r.messages.sent, { timeoutMs: 5_000 });
    expect(appMessages).toBe(r.messages.sent);
  });

  it('a generator-bound run at the lean ceiling is still not called ok, and is called saturated when its own thread was busy', async () => {
    // The echo server shares this thread, and 2M msg/s is asked of it: far past what one core sends.
    echo = await uwsEcho();
    const r = await runFlood(
      floodOptions(echo.url, {
        connections: 20,
        msgRate: 100_000,
        durationSec: 1.5,
        transport: 'lean',
        caps: { maxConnections: 100, maxConnRate: 1_000, maxMsgRate: 10_000_000, maxDurationSec: 60 },
        saturation: DEFAULT_SATURATION_LIMITS,
      }),
    );
    const s = r.saturation;
    expect(r.messages.ratePerSecOut).toBeLessThan(2_000_000 * 0.97);
    expect(
      s.reasons.some((x) => /scheduled messages were sent/.test(x)),
      s.reasons.join('; '),
    ).toBe(true);
    // Saturated unless other work on a shared machine took the core (then machine_busy, with its cause).
    if ((s.threadCpuCoresPeak ?? 0) >= GENERATOR_CORE_SHARE) expect(s.verdict, s.cause).toBe('saturated');
    else expect(['saturated', 'machine_busy']).toContain(s.verdict);
    // Everything that was sent still came back and was counted.
    expect(r.messages.received).toBe(r.messages.sent);
  });
});
