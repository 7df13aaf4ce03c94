import { afterEach, describe, expect, it } from 'vitest';
import { PROMETHEUS_NAMES as P } from '../../src/telemetry/names.ts';
import { closed, open } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { scrape } from './helpers.ts';

let gw: TestGateway | null = null;
let upstream: TestUpstream | null = null;

afterEach(async () => {
  await gw?.close();
  await upstream?.close();
  gw = null;
  upstream = null;
});

/** Polls the scrape until `check` holds: the gateway books a close after the client has seen it. */
async function scrapedUntil(url: string, check: (value: number) => boolean, labels: Record<string, string>, ms = 5_000): Promise<number> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = (await scrape(url)).value(P.upstreamErrors, labels) ?? 0;
    if (check(value) || Date.now() > deadline) return value;
    await new Promise((r) => setImmediate(r));
  }
}

describe('wsguard_upstream_errors_total after open', () => {
  it.each(['lean', 'ws'] as const)(
    'counts an upstream that drops TCP mid-connection as kind="abnormal_close" (%s leg), and the client gets 1014',
    async (leg) => {
      upstream = await startEchoUpstream();
      gw = await startTestGateway(upstream.url, { upstream: { client: leg } });
      const metrics = gw.server.telemetry!.admin!.url;
      const labels = { route: '/ws/', kind: 'abnormal_close' };
      const before = (await scrape(metrics)).value(P.upstreamErrors, labels) ?? 0;

      const appSide = upstream.nextSocket();
      const ws = await open(`${gw.base}/ws/a?access_token=${await signToken()}`);
      const app = await appSide;
      const done = closed(ws);
      app.terminate(); // TCP gone, no close frame: the leg reports 1006
      expect((await done).code).toBe(1014);

      expect(await scrapedUntil(metrics, (v) => v === before + 1, labels)).toBe(before + 1);
    },
  );

  it('does not count an upstream that closes normally', async () => {
    upstream = await startEchoUpstream();
    gw = await startTestGateway(upstream.url);
    const metrics = gw.server.telemetry!.admin!.url;
    const appSide = upstream.nextSocket();
    const ws = await open(`${gw.base}/ws/a?access_token=${await signToken()}`);
    const app = await appSide;
    const done = closed(ws);
    app.close(1000, 'bye');
    expect((await done).code).toBe(1000);
    await new Promise((r) => setImmediate(r));
    const s = await scrape(metrics);
    expect(s.find(P.upstreamErrors).filter((x) => Number(x.value) > 0)).toEqual([]);
  });
});
