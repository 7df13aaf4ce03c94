import { afterEach, describe, expect, it } from 'vitest';
import { attempt, rejected } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

/**
 * Handshakes that used to be invisible: an unknown path (404) was counted nowhere, and a wrong
 * Sec-WebSocket-Version (426) was counted as `bad_request`. Both now count under their own reasons,
 * in /metrics and in the monitoring API's rejections; a 404 under the one route label `unrouted`.
 */
let upstream: TestUpstream | null = null;
let gw: TestGateway | null = null;
afterEach(async () => {
  await gw?.close();
  await upstream?.close();
  gw = upstream = null;
});

function count(metrics: string, labels: RegExp): number {
  const line = metrics.split('\n').find((l) => l.startsWith('wsguard_connections_rejected_total{') && labels.test(l));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

describe('404 and 426 are counted under their own reasons', () => {
  it('in /metrics and in the monitoring API', async () => {
    upstream = await startEchoUpstream();
    gw = await startTestGateway(upstream.url);
    const tel = gw.server.telemetry!;
    const before = await tel.metricsText();

    expect(rejected(await attempt(`${gw.base}/nowhere/a`)).status).toBe(404);
    expect(rejected(await attempt(`${gw.base}/scan/../etc/passwd`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${gw.port}/favicon.ico`)).status).toBe(404);
    expect(rejected(await attempt(`${gw.base}/ws/a`, [], { protocolVersion: 8 })).status).toBe(426);

    const after = await tel.metricsText();
    const notFound = /route="unrouted".*reason="not_found"|reason="not_found".*route="unrouted"/;
    expect(count(after, notFound) - count(before, notFound)).toBe(3);
    const version = /route="\/ws\/".*reason="unsupported_version"|reason="unsupported_version".*route="\/ws\/"/;
    expect(count(after, version) - count(before, version)).toBe(1);
    // No label per scanned path.
    expect(after).not.toContain('nowhere');
    expect(after).not.toContain('favicon');

    const token = await signToken({ role: 'admin', aud: 'wsguard-monitoring' });
    const res = await fetch(`${tel.admin!.url}/api/monitoring/websocket/rejections/`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { by_reason: Record<string, { enforced: number }> };
    expect(body.by_reason.not_found?.enforced).toBe(3);
    expect(body.by_reason.unsupported_version?.enforced).toBe(1);
  });
});
