import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RawConfig } from '../../src/config/schema.ts';
import { attempt, closed, open, rejected } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { closedPort, startEchoUpstream, startSilentServer, type TestUpstream } from '../helpers/upstream.ts';

let upstream: TestUpstream | null = null;
let gw: TestGateway | null = null;
const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  await gw?.close();
  await upstream?.close();
  gw = null;
  upstream = null;
});

async function setup(overrides: RawConfig = {}): Promise<TestGateway> {
  upstream = await startEchoUpstream();
  gw = await startTestGateway(upstream.url, overrides);
  return gw;
}

function json(body: string): Record<string, unknown> {
  return JSON.parse(body) as Record<string, unknown>;
}

/** Sends a raw HTTP request and returns the response head (status line + headers). */
function rawRequest(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(request));
    let data = '';
    s.on('data', (c) => (data += c.toString()));
    s.on('end', () => resolve(data));
    s.on('error', reject);
    setTimeout(() => {
      s.destroy();
      resolve(data);
    }, 2000);
  });
}

describe('handshake sanity', () => {
  it('answers 426 with Sec-WebSocket-Version: 13 to an unsupported version', async () => {
    const { port } = await setup({ routes: [{ path: '/ws/', upstream: 'ws://127.0.0.1:1/ws/', allowAnonymous: true }] });
    const head = await rawRequest(
      port,
      'GET /ws/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n',
    );
    expect(head).toMatch(/^HTTP\/1\.1 426 /);
    expect(head).toMatch(/Sec-WebSocket-Version: 13/i);
  });

  it('answers 400 to a malformed key and to a plain GET on a WebSocket path', async () => {
    const { port } = await setup({ routes: [{ path: '/ws/', upstream: 'ws://127.0.0.1:1/ws/', allowAnonymous: true }] });
    const badKey = await rawRequest(
      port,
      'GET /ws/x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    expect(badKey).toMatch(/^HTTP\/1\.1 400 /);
    expect(badKey).toContain('"error":"bad_request"');
    const plain = await rawRequest(port, 'GET /ws/x HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(plain).toMatch(/^HTTP\/1\.1 400 /);
    const unrouted = await rawRequest(port, 'GET /other HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(unrouted).toMatch(/^HTTP\/1\.1 404 /);
  });
});

describe('origin', () => {
  const origins = { allowed: ['https://app.example.com', 'http://localhost:3000'], allowMissing: false };

  it('admits an exact origin match and rejects anything else with 403', async () => {
    const { base } = await setup({ origins });
    const token = await signToken();
    const ok = await open(`${base}/ws/a?access_token=${token}`, [], { origin: 'https://app.example.com' });
    ok.close();
    for (const origin of ['https://app.example.com:8443', 'http://app.example.com', 'https://evil.example.com', 'http://localhost:3001']) {
      const r = rejected(await attempt(`${base}/ws/a?access_token=${token}`, [], { origin }));
      expect(r.status, origin).toBe(403);
      expect(json(r.body).error).toBe('origin');
    }
  });

  it('rejects a missing Origin when allowMissing is false, admits it by default', async () => {
    const { base } = await setup({ origins });
    const token = await signToken();
    expect(rejected(await attempt(`${base}/ws/a?access_token=${token}`)).status).toBe(403);
    await gw!.close();
    gw = await startTestGateway(upstream!.url, {});
    (await open(`${gw.base}/ws/a?access_token=${token}`)).close();
  });
});

describe('auth', () => {
  it('401 with WWW-Authenticate (RFC 6750 §3.1) for a missing, expired, badly signed or exp-less token, and no jose detail in the body', async () => {
    const { base } = await setup();
    const cases: Record<string, string | null> = {
      missing: null,
      expired: await signToken({}, -60),
      'no exp': await signToken({}, null),
      'wrong key': await signToken({}, 300, new TextEncoder().encode('another-secret-another-secret-another!')),
      garbage: 'not.a.jwt',
    };
    for (const [name, token] of Object.entries(cases)) {
      const r = rejected(await attempt(`${base}/ws/a${token ? `?access_token=${token}` : ''}`));
      expect(r.status, name).toBe(401);
      // No credentials: a bare challenge; credentials that failed: error="invalid_token".
      expect(r.headers['www-authenticate'], name).toBe(token ? 'Bearer error="invalid_token"' : 'Bearer');
      const body = JSON.parse(r.body) as { error: string; message: string };
      expect(body.error, name).toBe(token === null ? 'token_missing' : name === 'expired' ? 'token_expired' : 'auth');
      expect(body.message, name).not.toMatch(/ERR_|JW[STKE]|claim|kid|signature/i);
    }
    expect(upstream!.handshakes).toHaveLength(0);
  });

  it('reads the token from Authorization, from a bearer. subprotocol and from the query', async () => {
    const { base } = await setup();
    const token = await signToken();
    (await open(`${base}/ws/a`, [], { headers: { authorization: `Bearer ${token}` } })).close();
    (await open(`${base}/ws/a`, ['chat.v1', `bearer.${token}`])).close();
    (await open(`${base}/ws/a?access_token=${token}`)).close();
    expect(upstream!.handshakes).toHaveLength(3);
  });

  it('admits an anonymous client only on a route that allows it, and never an invalid token', async () => {
    upstream = await startEchoUpstream();
    gw = await startTestGateway(upstream.url, {
      routes: [
        { path: '/ws/', upstream: `${upstream.url}/ws/` },
        { path: '/public/', upstream: `${upstream.url}/public/`, allowAnonymous: true },
      ],
    });
    (await open(`${gw.base}/public/feed`)).close();
    expect(rejected(await attempt(`${gw.base}/public/feed?access_token=bad.token.here`)).status).toBe(401);
    expect(rejected(await attempt(`${gw.base}/ws/feed`)).status).toBe(401);
    expect(upstream.handshakes.map((h) => h.url)).toEqual(['/public/feed']);
  });
});

describe('per-IP concurrent limit', () => {
  it('admits exactly 5, rejects the 6th with 429 + Retry-After, then admits once one closes', async () => {
    const { base } = await setup();
    const token = await signToken();
    const url = `${base}/ws/a?access_token=${token}`;
    const sockets = [];
    for (let i = 0; i < 5; i++) sockets.push(await open(url));
    const sixth = rejected(await attempt(url));
    expect(sixth.status).toBe(429);
    expect(sixth.headers['retry-after']).toBe('30');
    expect(json(sixth.body)).toMatchObject({ error: 'conn_limit', retry_after_ms: 30_000 });

    const first = sockets.shift()!;
    const done = closed(first);
    first.close(1000);
    await done;
    // The slot is released in the gateway's close handler, which runs as the close frame arrives.
    await new Promise((r) => setTimeout(r, 50));
    const again = await open(url);
    sockets.push(again);
    expect(rejected(await attempt(url)).status).toBe(429);
    for (const s of sockets) s.close();
  });

  it('releases the slot when the client aborts mid-upgrade', async () => {
    const silent = await startSilentServer();
    cleanups.push(() => silent.close());
    upstream = await startEchoUpstream();
    gw = await startTestGateway(upstream.url, {
      limits: { concurrent: { max: 1 } },
      routes: [
        { path: '/slow/', upstream: `ws://127.0.0.1:${silent.port}/slow/` },
        { path: '/ws/', upstream: `${upstream.url}/ws/` },
      ],
    });
    const token = await signToken();
    // Hangs in the upstream dial, holding the only slot; then the client gives up.
    const pending = attempt(`${gw.base}/slow/a?access_token=${token}`, [], { handshakeTimeout: 300 });
    await new Promise((r) => setTimeout(r, 100));
    expect(rejected(await attempt(`${gw.base}/ws/a?access_token=${token}`)).status).toBe(429);
    expect((await pending).kind).toBe('error');
    await new Promise((r) => setTimeout(r, 50));
    (await open(`${gw.base}/ws/a?access_token=${token}`)).close();
  });

  it('releases the slot when a later step rejects (bad token, upstream down)', async () => {
    upstream = await startEchoUpstream();
    const down = await closedPort();
    gw = await startTestGateway(upstream.url, {
      limits: { concurrent: { max: 1 } },
      routes: [
        { path: '/down/', upstream: `ws://127.0.0.1:${down}/down/` },
        { path: '/ws/', upstream: `${upstream.url}/ws/` },
      ],
    });
    const token = await signToken();
    for (let i = 0; i < 3; i++) {
      expect(rejected(await attempt(`${gw.base}/ws/a?access_token=bad`)).status).toBe(401);
      expect(rejected(await attempt(`${gw.base}/down/a?access_token=${token}`)).status).toBe(502);
    }
    (await open(`${gw.base}/ws/a?access_token=${token}`)).close();
  });
});

describe('per-IP attempt limit', () => {
  it('admits exactly N attempts in the window and rejects N+1 with 429 and a truthful Retry-After', async () => {
    const { base } = await setup({ limits: { attempts: { max: 3, windowMs: 60_000 } } });
    const token = await signToken();
    const url = `${base}/ws/a?access_token=${token}`;
    for (let i = 0; i < 3; i++) {
      const ws = await open(url);
      const done = closed(ws);
      ws.close();
      await done;
    }
    const r = rejected(await attempt(url));
    expect(r.status).toBe(429);
    expect(json(r.body).error).toBe('attempt_limit');
    // The refusal names the option that sets the limit, so the fix is findable.
    expect(json(r.body).setting).toBe('limits.attempts.max');
    expect(json(r.body).message).toContain('limits.attempts.max');
    const retry = Number(r.headers['retry-after']);
    expect(retry).toBeGreaterThan(55);
    expect(retry).toBeLessThanOrEqual(60);
  });

  it('counts failed tokens against the budget but not upstream failures', async () => {
    upstream = await startEchoUpstream();
    const down = await closedPort();
    gw = await startTestGateway(upstream.url, {
      limits: { attempts: { max: 2, windowMs: 60_000 } },
      routes: [
        { path: '/down/', upstream: `ws://127.0.0.1:${down}/down/` },
        { path: '/ws/', upstream: `${upstream.url}/ws/` },
      ],
    });
    const token = await signToken();
    for (let i = 0; i < 4; i++) expect(rejected(await attempt(`${gw.base}/down/a?access_token=${token}`)).status).toBe(502);
    expect(rejected(await attempt(`${gw.base}/ws/a?access_token=bad`)).status).toBe(401);
    (await open(`${gw.base}/ws/a?access_token=${token}`)).close();
    expect(rejected(await attempt(`${gw.base}/ws/a?access_token=${token}`)).status).toBe(429);
  });
});

describe('upstream failures', () => {
  it('502 when the upstream refuses, 504 when it does not answer in time', async () => {
    const silent = await startSilentServer();
    cleanups.push(() => silent.close());
    upstream = await startEchoUpstream();
    const down = await closedPort();
    gw = await startTestGateway(upstream.url, {
      upstream: { dialTimeoutMs: 300 },
      routes: [
        { path: '/down/', upstream: `ws://127.0.0.1:${down}/down/` },
        { path: '/slow/', upstream: `ws://127.0.0.1:${silent.port}/slow/` },
      ],
    });
    const token = await signToken();
    const refused = rejected(await attempt(`${gw.base}/down/a?access_token=${token}`));
    expect(refused.status).toBe(502);
    expect(json(refused.body).error).toBe('upstream_unavailable');
    const started = Date.now();
    const slow = rejected(await attempt(`${gw.base}/slow/a?access_token=${token}`));
    expect(slow.status).toBe(504);
    expect(json(slow.body).error).toBe('upstream_timeout');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('504 from the handshake deadline when admission + dial take too long', async () => {
    const silent = await startSilentServer();
    cleanups.push(() => silent.close());
    upstream = await startEchoUpstream();
    gw = await startTestGateway(upstream.url, {
      // Equal deadlines (a handshake deadline below the dial's is refused): the handshake's timer is
      // armed first, before admission, so it fires first.
      server: { handshakeTimeoutMs: 200 },
      upstream: { dialTimeoutMs: 200 },
      routes: [{ path: '/slow/', upstream: `ws://127.0.0.1:${silent.port}/slow/` }],
    });
    const r = rejected(await attempt(`${gw.base}/slow/a?access_token=${await signToken()}`));
    expect(r.status).toBe(504);
    expect(json(r.body).error).toBe('handshake_timeout');
  });
});

describe('rejectWith: close and dry-run', () => {
  it('accepts and closes with the contract close code and a short JSON reason', async () => {
    const { base } = await setup({ server: { rejectWith: 'close' }, limits: { concurrent: { max: 1 } } });
    const token = await signToken();
    const unauth = await open(`${base}/ws/a`);
    expect(await closed(unauth)).toEqual({ code: 4001, reason: '{"r":"auth"}' });
    const first = await open(`${base}/ws/a?access_token=${token}`);
    const second = await open(`${base}/ws/a?access_token=${token}`);
    const c = await closed(second);
    expect(c.code).toBe(4100);
    expect(JSON.parse(c.reason)).toEqual({ r: 'conn_limit', retry_ms: 30_000 });
    expect(Buffer.byteLength(c.reason)).toBeLessThanOrEqual(123);
    first.close();
  });

  it('dry-run counts what would be rejected and lets it through', async () => {
    const rejectedSeen: string[] = [];
    upstream = await startEchoUpstream();
    const { createNoopObserver } = await import('../../src/telemetry/observer.ts');
    const observer = {
      ...createNoopObserver(),
      rejected: (_r: string, reason: string, decision: string) => rejectedSeen.push(`${reason}:${decision}`),
    };
    gw = await startTestGateway(
      upstream.url,
      { limits: { concurrent: { max: 1, dryRun: true } }, origins: { allowed: ['https://a.example'], dryRun: true } },
      { observer },
    );
    const token = await signToken();
    const a = await open(`${gw.base}/ws/a?access_token=${token}`, [], { origin: 'https://b.example' });
    const b = await open(`${gw.base}/ws/a?access_token=${token}`, [], { origin: 'https://a.example' });
    expect(rejectedSeen).toEqual(['origin:dry_run', 'conn_limit:dry_run']);
    a.close();
    b.close();
  });
});

describe('draining', () => {
  it('closes open sockets with 1001 and stops listening', async () => {
    const { base, server } = await setup();
    const token = await signToken();
    const ws = await open(`${base}/ws/a?access_token=${token}`);
    const done = closed(ws);
    const drained = server.gateway.drain(50);
    const close = await done;
    expect(close.code).toBe(1001);
    // The window is announced, so a client that listens spreads its reconnect over it (docs/contracts.md).
    expect(JSON.parse(close.reason)).toEqual({ r: 'draining', retry_ms: 50 });
    await drained;
    expect(server.gateway.listening).toBe(false);
    expect((await attempt(`${base}/ws/a?access_token=${token}`)).kind).toBe('error');
  });
});
