import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MONITORING_PATHS } from '../../src/monitoring/paths.ts';
import { handshakeStatus } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

/** Who may see the status page's data, per telemetry.monitoring.statusPage (docs/status-page.md). */
const SERIES = MONITORING_PATHS.series;

describe('status page access', () => {
  let upstream: TestUpstream;
  beforeAll(async () => {
    upstream = await startEchoUpstream();
  });
  afterAll(async () => {
    await upstream?.close();
  });

  async function withGateway(statusPage: 'off' | 'token' | 'local' | undefined, fn: (gw: TestGateway, admin: string) => Promise<void>) {
    const gw = await startTestGateway(upstream.url, statusPage ? { telemetry: { monitoring: { statusPage } } } : {});
    try {
      await fn(gw, gw.server.telemetry!.admin!.url);
    } finally {
      await gw.close();
    }
  }

  it('token (the default): the page loads under a strict CSP; its data needs the admin JWT, not a client token', async () => {
    await withGateway(undefined, async (gw, admin) => {
      const page = await fetch(`${admin}/status`);
      expect(page.status).toBe(200);
      expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(await page.text()).toContain('/status/app.js');
      const js = await fetch(`${admin}/status/app.js`);
      expect([js.status, js.headers.get('content-type')]).toEqual([200, 'text/javascript; charset=utf-8']);
      const again = await fetch(`${admin}/status/app.js`, { headers: { 'if-none-match': js.headers.get('etag')! } });
      expect(again.status).toBe(304);

      const none = await fetch(`${admin}${SERIES}`);
      expect([none.status, none.headers.get('www-authenticate')]).toEqual([401, 'Bearer realm="wsguard-monitoring"']);
      const client = await fetch(`${admin}${SERIES}`, { headers: { authorization: `Bearer ${await signToken()}` } });
      expect(client.status).toBe(401);
      const notAdmin = await fetch(`${admin}${SERIES}`, {
        headers: { authorization: `Bearer ${await signToken({ aud: 'wsguard-monitoring', role: 'viewer' })}` },
      });
      expect(notAdmin.status).toBe(403);

      expect(await handshakeStatus(`${gw.base}/ws/x`)).toBe(401); // no token on a private route
      const ok = await fetch(`${admin}${SERIES}`, {
        headers: { authorization: `Bearer ${await signToken({ aud: 'wsguard-monitoring', role: 'admin' })}` },
      });
      expect(ok.status).toBe(200);
      const body = (await ok.json()) as { masked: boolean; top_offenders: Array<{ client: string }>; info: { ready: boolean } };
      expect(body).toMatchObject({ masked: false, top_offenders: [{ client: '127.0.0.1', count: 1 }], info: { ready: true } });
    });
  });

  it('local: a loopback viewer needs no token and sees client keys shortened; a token sent is still checked', async () => {
    await withGateway('local', async (gw, admin) => {
      expect(await handshakeStatus(`${gw.base}/ws/x`)).toBe(401);
      const res = await fetch(`${admin}${SERIES}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { masked: boolean; top_offenders: Array<{ client: string }> };
      expect(body.masked).toBe(true);
      expect(body.top_offenders).toEqual([{ client: '127.0.0.0/24', count: 1, error: 0 }]);
      expect(JSON.stringify(body)).not.toContain('127.0.0.1');
      const bad = await fetch(`${admin}${SERIES}`, { headers: { authorization: 'Bearer not.a.token' } });
      expect(bad.status).toBe(401);
      // The rest of the monitoring API keeps its token.
      expect((await fetch(`${admin}/api/monitoring/websocket/rejections/`)).status).toBe(401);
    });
  });

  it('off: no page, no series; and the page is never on the public port', async () => {
    await withGateway('off', async (_gw, admin) => {
      expect((await fetch(`${admin}/status`)).status).toBe(404);
      expect((await fetch(`${admin}${SERIES}`)).status).toBe(404);
    });
    await withGateway('local', async (gw) => {
      const res = await fetch(`http://127.0.0.1:${gw.port}/status`);
      expect(res.status).not.toBe(200);
      expect(await res.text()).not.toContain('app.js');
    });
  });
});
