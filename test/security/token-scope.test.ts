import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { RawConfig } from '../../src/config/schema.ts';
import { isAdmin } from '../../src/monitoring/admin-auth.ts';
import { attempt, rejected } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

/**
 * Issue 7 item 8: client and monitoring tokens were interchangeable (same keys, iss, aud), and an
 * admin claim matched any space-separated word of a string ("not admin" matched admin).
 */
const MONITORING = '/api/monitoring/websocket/active-connections/';
const MONITORING_AUD = 'wsguard-monitoring';

let upstream: TestUpstream | null = null;
let gw: TestGateway | null = null;
afterEach(async () => {
  await gw?.close();
  await upstream?.close();
  gw = upstream = null;
});

async function start(overrides: RawConfig = {}): Promise<{ ws: (token: string) => string; api: (token: string) => Promise<number> }> {
  upstream = await startEchoUpstream();
  gw = await startTestGateway(upstream.url, overrides);
  const base = gw.base;
  const admin = gw.server.telemetry!.admin!.url;
  return {
    ws: (token) => `${base}/ws/a?access_token=${token}`,
    api: async (token) => (await fetch(`${admin}${MONITORING}`, { headers: { authorization: `Bearer ${token}` } })).status,
  };
}

async function opens(url: string): Promise<boolean> {
  const a = await attempt(url);
  if (a.kind === 'open') a.ws.terminate();
  return a.kind === 'open';
}

describe('client and monitoring tokens do not open each other’s door', () => {
  it('refuses a client token on the monitoring API and a monitoring token on a client route (no auth.audience)', async () => {
    const g = await start();
    const client = await signToken({ role: 'admin' });
    const monitoring = await signToken({ role: 'admin', aud: MONITORING_AUD });
    expect(await opens(g.ws(client))).toBe(true);
    expect(await g.api(client)).toBe(401);
    expect(await g.api(monitoring)).toBe(200);
    const r = rejected(await attempt(g.ws(monitoring)));
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body).error).toBe('auth');
  });

  it('does the same with auth.audience set, and refuses a token that names both audiences on client routes', async () => {
    const g = await start({ auth: { audience: 'app' } });
    expect(await opens(g.ws(await signToken({ aud: 'app' })))).toBe(true);
    expect(await g.api(await signToken({ aud: 'app', role: 'admin' }))).toBe(401);
    expect(rejected(await attempt(g.ws(await signToken({ aud: MONITORING_AUD })))).status).toBe(401);
    expect(rejected(await attempt(g.ws(await signToken({ aud: ['app', MONITORING_AUD] })))).status).toBe(401);
  });

  it('uses telemetry.monitoring.audience when configured, and refuses it equal to auth.audience', async () => {
    const g = await start({ telemetry: { monitoring: { audience: 'ops-console' } } });
    expect(await g.api(await signToken({ aud: 'ops-console', role: 'admin' }))).toBe(200);
    expect(await g.api(await signToken({ aud: MONITORING_AUD, role: 'admin' }))).toBe(401);
    expect(rejected(await attempt(g.ws(await signToken({ aud: 'ops-console' })))).status).toBe(401);
    expect(() => parseConfig({ auth: { audience: 'same' }, telemetry: { monitoring: { audience: 'same' } } })).toThrow(/auth\.audience/);
  });
});

describe('admin claim matching', () => {
  it('matches exactly: "not admin" is not admin; arrays by membership', async () => {
    const g = await start();
    expect(await g.api(await signToken({ aud: MONITORING_AUD, role: 'not admin' }))).toBe(403);
    expect(await g.api(await signToken({ aud: MONITORING_AUD, role: 'admin ' }))).toBe(403);
    expect(await g.api(await signToken({ aud: MONITORING_AUD, role: ['user', 'admin'] }))).toBe(200);
  });

  it('splits only the OAuth scope claim on spaces (RFC 8693 §4.2)', async () => {
    const g = await start({ telemetry: { monitoring: { adminClaims: { claim: 'scope', value: 'admin' } } } });
    expect(await g.api(await signToken({ aud: MONITORING_AUD, scope: 'read admin' }))).toBe(200);
    expect(await g.api(await signToken({ aud: MONITORING_AUD, scope: 'read administer' }))).toBe(403);
    const roles = [{ claim: 'roles', value: 'admin' }];
    expect(isAdmin({ roles: 'read admin' }, roles)).toBe(false);
    expect(isAdmin({ roles: ['read', 'admin'] }, roles)).toBe(true);
  });
});
