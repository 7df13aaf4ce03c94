import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type WebSocket from 'ws';
import { attempt, open, rejected } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { LogCapture, parsePrometheus } from '../telemetry/helpers.ts';

/**
 * Issue 7 item 3: the in-memory limit store kept every client key for the whole attempt window with
 * no cap. Clients are told apart here as they are behind a trusted proxy (X-Forwarded-For), the case
 * where one peer can present any number of keys.
 */
let upstream: TestUpstream | null = null;
let gw: TestGateway | null = null;
const sockets: WebSocket[] = [];

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await gw?.close();
  await upstream?.close();
  gw = null;
  upstream = null;
});

async function rejectedFor(reason: string): Promise<number> {
  const s = parsePrometheus(await gw!.server.telemetry!.metricsText());
  return s.find('wsguard_connections_rejected_total', { reason, decision: 'enforced' }).reduce((a, x) => a + x.value, 0);
}

describe('tracked-key cap (limits.maxTrackedKeys)', () => {
  it('refuses a new client at the cap with 503 store_full, counts and logs it, and keeps tracked clients limited', async () => {
    const logs = new LogCapture();
    upstream = await startEchoUpstream();
    gw = await startTestGateway(
      upstream.url,
      {
        server: { trustedProxies: ['127.0.0.1'] },
        limits: { maxTrackedKeys: 3, attempts: { max: 3 } },
        telemetry: { logs: { rejectionLinesPerInterval: 1, rejectionSummaryIntervalMs: 60_000 } },
      },
      { logger: pino({ level: 'info' }, logs) },
    );
    const url = `${gw.base}/ws/a?access_token=${await signToken()}`;
    const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
    const before = await rejectedFor('store_full');

    for (const ip of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) sockets.push(await open(url, [], from(ip)));

    for (const ip of ['203.0.113.1', '203.0.113.2']) {
      const r = rejected(await attempt(url, [], from(ip)));
      expect(r.status).toBe(503);
      expect(r.headers['retry-after']).toBe('60');
      expect(JSON.parse(r.body).error).toBe('store_full');
    }
    expect((await rejectedFor('store_full')) - before).toBe(2);
    // Rate-limited log: one full line in the interval, the second refusal only counted.
    const lines = logs.events('handshake_rejected').filter((l) => l.reason === 'store_full');
    expect(lines).toHaveLength(1);

    // A tracked client is not evicted and keeps its own limit: 2 more attempts, then 429.
    sockets.push(await open(url, [], from('198.51.100.1')));
    sockets.push(await open(url, [], from('198.51.100.1')));
    expect(rejected(await attempt(url, [], from('198.51.100.1'))).status).toBe(429);
  });
});
