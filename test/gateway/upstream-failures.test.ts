import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { attempt, rejected } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { closedPort } from '../helpers/upstream.ts';
import { LogCapture } from '../telemetry/helpers.ts';

/**
 * A failed dial used to answer the client `upstream dial failed: connect ECONNREFUSED 127.0.0.1:8999`
 * (an internal address) while the operator got an `info` line with no cause. Now the client gets
 * the reason only, the log line is `warn` with the upstream URL (no query) and the error, and a
 * refused dial counts as kind="refused".
 */
let gw: TestGateway | null = null;
afterEach(async () => {
  await gw?.close();
  gw = null;
});

describe('upstream dial failures', () => {
  it('tells the client the reason only, and the operator where and why', async () => {
    const port = await closedPort();
    const logs = new LogCapture();
    gw = await startTestGateway(
      `ws://127.0.0.1:${port}`,
      {
        routes: [{ path: '/ws/', upstream: `ws://127.0.0.1:${port}/ws/?tenant=secret-tenant` }],
      },
      { logger: pino({ level: 'info' }, logs) },
    );
    const r = rejected(await attempt(`${gw.base}/ws/room?access_token=${await signToken()}&q=private`));
    expect(r.status).toBe(502);
    const body = JSON.parse(r.body) as { error: string; message: string };
    expect(body).toMatchObject({ error: 'upstream_unavailable', message: 'the upstream app is unavailable' });
    expect(r.body).not.toMatch(/127\.0\.0\.1|ECONNREFUSED|\d{4,5}/);

    const line = logs.events('upstream_dial_failed')[0]!;
    expect(line).toMatchObject({ level: 40 /* warn */, route: '/ws/', upstream: `ws://127.0.0.1:${port}/ws/room`, kind: 'refused' });
    expect(String(line.err)).toContain('ECONNREFUSED');
    expect(JSON.stringify(line)).not.toMatch(/secret-tenant|private|access_token/);
    const metrics = await gw.server.telemetry!.metricsText();
    expect(metrics).toMatch(/^wsguard_upstream_errors_total\{[^}]*kind="refused"[^}]*\} 1$/m);
  });
});
