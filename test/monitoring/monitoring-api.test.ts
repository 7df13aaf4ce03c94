import { SignJWT, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TelemetryConfigInput } from '../../src/telemetry/config.ts';
import { startTestTelemetry, type TestTelemetry } from '../telemetry/helpers.ts';

const SECRET = new TextEncoder().encode('monitoring-test-secret-at-least-32-bytes!');
const OTHER_SECRET = new TextEncoder().encode('some-other-secret-that-is-32-bytes-long!!');
const METRICS = '/api/monitoring/websocket/metrics/';
const ACTIVE = '/api/monitoring/websocket/active-connections/';
const REJECTIONS = '/api/monitoring/websocket/rejections/';

/** The monitoring audience (telemetry.monitoring.audience's default) that the gateway's verifier requires here. */
const MONITORING_AUD = 'wsguard-monitoring';

/** The verifier the gateway injects: jose, HS256 pinned, exp and the monitoring audience required; throws on anything invalid. */
async function verifyToken(token: string): Promise<Record<string, unknown>> {
  const { payload } = await jwtVerify(token, SECRET, { algorithms: ['HS256'], requiredClaims: ['exp'], audience: MONITORING_AUD });
  return payload as Record<string, unknown>;
}

async function token(claims: Record<string, unknown>, opts: { secret?: Uint8Array; exp?: string | number } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setAudience(MONITORING_AUD)
    .setSubject('ops-1')
    .setIssuedAt()
    .setExpirationTime(opts.exp ?? '5m')
    .sign(opts.secret ?? SECRET);
}

async function get(t: TestTelemetry, path: string, bearer?: string): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${t.url}${path}`, { headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` } });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

async function withTelemetry(config: TelemetryConfigInput, fn: (t: TestTelemetry) => Promise<void>): Promise<void> {
  const t = await startTestTelemetry(config, { verifyToken });
  try {
    await fn(t);
  } finally {
    await t.close();
  }
}

describe('monitoring API', () => {
  let t: TestTelemetry;
  let admin: string;
  let ready = true;
  beforeAll(async () => {
    t = await startTestTelemetry({}, { verifyToken, readiness: () => ({ ready, checks: { listening: true, jwks: ready } }) });
    admin = await token({ role: 'admin' });
  });
  afterAll(() => t.close());

  it('answers 401 with WWW-Authenticate Bearer when the token is missing', async () => {
    const r = await get(t, METRICS);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="wsguard-monitoring"');
    expect(r.body).toEqual({ error: 'unauthorized' });
  });

  it('answers 401 invalid_token for a bad signature, an expired token and garbage', async () => {
    for (const bad of [
      await token({ role: 'admin' }, { secret: OTHER_SECRET }),
      await token({ role: 'admin' }, { exp: Math.floor(Date.now() / 1000) - 60 }),
      'abc.def.ghi',
    ]) {
      const r = await get(t, METRICS, bad);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="wsguard-monitoring", error="invalid_token"');
      expect(JSON.stringify(r.body)).toBe('{"error":"invalid_token"}');
    }
    // The reason is logged (never the token).
    const logged = t.logs.events('monitoring_auth_failed');
    expect(logged.length).toBeGreaterThanOrEqual(3);
    expect(logged.some((l) => String(l.detail).includes('exp'))).toBe(true);
    expect(JSON.stringify(logged)).not.toMatch(/eyJ/);
  });

  it('answers 401 invalid_request for a non-Bearer Authorization header', async () => {
    const res = await fetch(`${t.url}${METRICS}`, { headers: { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_request"');
  });

  it('answers 403 insufficient_scope for a valid token without the admin claim', async () => {
    for (const claims of [{ role: 'user' }, {}, { is_staff: true }]) {
      const r = await get(t, METRICS, await token(claims));
      expect(r.status).toBe(403);
      expect(r.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    }
    expect((await get(t, ACTIVE, await token({ role: 'user' }))).status).toBe(403);
  });

  // The tests that feed the hooks get their own listener: on the shared one each would see what the
  // tests before it had counted, and fail when run alone or in another order.
  it("returns exactly the reference guide's fields with the values the hooks produced", () =>
    withTelemetry({}, async (t) => {
      const o = t.observer;
      const c = o.routeCounters('/ws');
      const conns = [1, 2, 3].map(() => o.handshakeStarted('/ws', undefined, undefined).accepted());
      for (const conn of conns) conn.opened();
      conns[0]!.closed({ code: 1000, initiator: 'client', durationMs: 40_000, messagesIn: 0, messagesOut: 0 });
      conns[1]!.closed({ code: 1000, initiator: 'client', durationMs: 50_640, messagesIn: 0, messagesOut: 0 });
      c.messagesIn += 980;
      c.messagesOut += 1250;
      const asked = Date.now();
      const r = await get(t, METRICS, admin);
      const answered = Date.now();
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/json; charset=utf-8');
      const body = r.body as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(
        [
          'active_connections',
          'avg_connection_duration',
          'connections_today',
          'messages_per_minute',
          'messages_received',
          'messages_sent',
          'timestamp',
        ].sort(),
      );
      expect(body).toMatchObject({
        active_connections: 1,
        connections_today: 3,
        messages_sent: 1250,
        messages_received: 980,
        avg_connection_duration: 45.32,
      });
      // The 1 s sampler started with 0 messages and the window has not passed: all 2230 fall in it.
      expect(body.messages_per_minute).toBe(2230);
      expect(body.timestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      // Taken while the request was served (the format has whole seconds): no window a slow machine could overrun.
      const stamped = Date.parse(body.timestamp as string);
      expect(stamped).toBeGreaterThanOrEqual(Math.floor(asked / 1000) * 1000);
      expect(stamped).toBeLessThanOrEqual(answered);
      for (const v of Object.values(body).filter((v) => typeof v !== 'string')) expect(typeof v).toBe('number');
    }));

  it('returns {active_connections} alone, with and without the trailing slash', () =>
    withTelemetry({}, async (t) => {
      const [a, b] = [1, 2].map(() => t.observer.handshakeStarted('/ws', undefined, undefined).accepted());
      a!.opened();
      b!.opened();
      a!.closed({ code: 1000, initiator: 'client', durationMs: 10, messagesIn: 0, messagesOut: 0 });
      const r = await get(t, ACTIVE, admin);
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ active_connections: 1 });
      expect((await get(t, ACTIVE.slice(0, -1), admin)).body).toEqual({ active_connections: 1 });
    }));

  it('reports rejections by reason and top offenders behind the same auth', () =>
    withTelemetry({}, async (t) => {
      for (let i = 0; i < 4; i++) t.observer.rejected('/ws', 'conn_limit', 'enforced', '198.51.100.9');
      t.observer.rejected('/ws', 'origin', 'enforced', '203.0.113.5');
      expect((await get(t, REJECTIONS)).status).toBe(401);
      expect((await get(t, REJECTIONS, await token({ role: 'user' }))).status).toBe(403);
      const r = await get(t, `${REJECTIONS}?top=1`, admin);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({
        total: 5,
        by_reason: { conn_limit: { enforced: 4, dry_run: 0 }, origin: { enforced: 1, dry_run: 0 } },
        top_offenders: [{ client: '198.51.100.9', count: 4, error: 0 }],
      });
    }));

  it('serves /healthz and flips /readyz with the readiness callback', async () => {
    expect((await get(t, '/healthz')).body).toEqual({ status: 'ok' });
    let r = await get(t, '/readyz');
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ ready: true, checks: { listening: true, jwks: true } });
    ready = false;
    r = await get(t, '/readyz');
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ ready: false, checks: { listening: true, jwks: false } });
    ready = true;
    expect((await get(t, '/readyz')).status).toBe(200);
  });

  it('answers 404 for unknown paths and 405 for other methods', async () => {
    expect((await get(t, '/nope')).status).toBe(404);
    const res = await fetch(`${t.url}/metrics`, { method: 'POST' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('admin claim configuration', () => {
  it('accepts is_staff: true style rules, and array-valued claims', async () => {
    await withTelemetry(
      {
        monitoring: {
          adminClaims: [
            { claim: 'is_staff', value: true },
            { claim: 'roles', value: 'ops' },
          ],
        },
      },
      async (t) => {
        expect((await get(t, ACTIVE, await token({ is_staff: true }))).status).toBe(200);
        expect((await get(t, ACTIVE, await token({ is_staff: 'true' }))).status).toBe(403);
        expect((await get(t, ACTIVE, await token({ roles: ['dev', 'ops'] }))).status).toBe(200);
        expect((await get(t, ACTIVE, await token({ role: 'admin' }))).status).toBe(403);
      },
    );
  });

  it('accepts an OAuth scope word', async () => {
    await withTelemetry({ monitoring: { adminClaims: { claim: 'scope', value: 'monitoring:read' } } }, async (t) => {
      expect((await get(t, ACTIVE, await token({ scope: 'openid monitoring:read' }))).status).toBe(200);
      expect((await get(t, ACTIVE, await token({ scope: 'openid monitoring:readwrite' }))).status).toBe(403);
    });
  });
});
