import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { attempt, rejected } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { parsePrometheus } from '../telemetry/helpers.ts';
import { waitFor } from '../helpers/wait.ts';

/**
 * Issue 7 item 6: while the JWKS had never loaded, every token handshake re-fetched it and got 401,
 * charged to the client; after the IdP recovered, a valid token was locked out with 429 for an hour.
 */
interface Idp {
  url: string;
  up: boolean;
  hits: number;
  /** Resolves when a key set has been served. */
  served: Promise<void>;
  close(): Promise<void>;
}

async function startIdp(keys: JWK[]): Promise<Idp> {
  let markServed!: () => void;
  const served = new Promise<void>((r) => (markServed = r));
  const idp = { up: false, hits: 0 } as Idp;
  const server: Server = createServer((_req, res) => {
    idp.hits++;
    if (!idp.up) {
      res.writeHead(500).end('down');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }), () => markServed());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  idp.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
  idp.served = served;
  idp.close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return idp;
}

const until = (cond: () => boolean, timeoutMs: number, what: string) => waitFor(cond, { timeoutMs, intervalMs: 10, what });

let upstream: TestUpstream | null = null;
let gw: TestGateway | null = null;
let idp: Idp | null = null;
afterEach(async () => {
  await gw?.close();
  await upstream?.close();
  await idp?.close();
  gw = upstream = idp = null;
});

describe('JWKS outage', () => {
  it('answers 503 auth_unavailable (not 401) with bounded fetches, gives attempts back, and admits a valid token once the IdP recovers', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    idp = await startIdp([{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }]);
    const token = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
      .sign(pair.privateKey);
    upstream = await startEchoUpstream();
    const retryMinMs = 500;
    gw = await startTestGateway(upstream.url, {
      // The default attempt limit (10 an hour) stays: more handshakes than that are made below.
      auth: { secret: undefined, jwksUrl: idp.url, algorithms: ['ES256'], jwksRetryMinMs: retryMinMs, jwksRetryMaxMs: 1000 },
    });
    const server = gw.server;
    const admin = server.telemetry!.admin!.url;
    const metrics = async () => parsePrometheus(await server.telemetry!.metricsText());
    const unavailable0 = (await metrics())
      .find('wsguard_connections_rejected_total', { reason: 'auth_unavailable' })
      .reduce((a, s) => a + s.value, 0);
    await until(() => idp!.hits >= 1, 5000, 'the first JWKS fetch');

    const started = Date.now();
    const n = 20;
    const hitsBefore = idp.hits;
    for (let i = 0; i < n; i++) {
      const r = rejected(await attempt(`${gw.base}/ws/a?access_token=${token}`));
      expect(r.status).toBe(503);
      expect(JSON.parse(r.body).error).toBe('auth_unavailable');
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    const elapsed = Date.now() - started;
    // Handshakes never start a fetch: only the background retries (one per backoff step) hit the IdP.
    expect(idp.hits - hitsBefore).toBeLessThanOrEqual(1 + Math.ceil(elapsed / retryMinMs));
    expect(idp.hits - hitsBefore).toBeLessThan(n / 2);
    const s = await metrics();
    expect(
      s.find('wsguard_connections_rejected_total', { reason: 'auth_unavailable' }).reduce((a, x) => a + x.value, 0) - unavailable0,
    ).toBe(n);
    expect((await fetch(`${admin}/readyz`)).status).toBe(503);
    // A malformed token is still the client's fault.
    expect(rejected(await attempt(`${gw.base}/ws/a?access_token=not.a.jwt`)).status).toBe(401);

    idp.up = true;
    await idp.served;
    await until(() => server.verifier!.ready(), 5000, 'the key set to load');
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    // 22 handshakes against a limit of 10: the outage's 20 were given back (the malformed one stays counted), so this one opens.
    const a = await attempt(`${gw.base}/ws/a?access_token=${token}`);
    expect(a.kind).toBe('open');
    if (a.kind === 'open') a.ws.terminate();
  });
});
