import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { describe, expect, it, onTestFinished } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { useGateway } from '../helpers/gateway.ts';
import { attempt } from '../helpers/client.ts';
import { signToken } from '../helpers/tokens.ts';
import { certDir, makePair, type Pair } from './certs.ts';

/** An app over wss:// that requires a client certificate signed by `ca` and echoes; records the client cert's CN. */
async function startMtlsUpstream(ca: Pair, server: Pair): Promise<{ url: string; clientNames: string[] }> {
  const httpsServer = https.createServer({
    cert: readFileSync(server.certFile),
    key: readFileSync(server.keyFile),
    ca: readFileSync(ca.certFile),
    requestCert: true,
    rejectUnauthorized: true,
  });
  const wss = new WebSocketServer({ server: httpsServer });
  const clientNames: string[] = [];
  wss.on('connection', (ws, req) => {
    clientNames.push((req.socket as TLSSocket).getPeerCertificate().subject.CN?.toString() ?? '');
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise<void>((r) => httpsServer.listen(0, '127.0.0.1', r));
  onTestFinished(
    () =>
      new Promise<void>((r) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        httpsServer.closeAllConnections();
        httpsServer.close(() => r());
      }),
  );
  return { url: `wss://127.0.0.1:${(httpsServer.address() as { port: number }).port}`, clientNames };
}

/** The gateway's answer to a handshake, with its error code. */
async function refusal(port: number): Promise<string> {
  const a = await attempt(`ws://127.0.0.1:${port}/ws/echo`, [], { headers: { authorization: `Bearer ${await signToken()}` } });
  if (a.kind === 'open') a.ws.close();
  return a.kind === 'rejected' ? `${a.status} ${(JSON.parse(a.body) as { error: string }).error}` : a.kind;
}

async function echoThrough(port: number, text: string): Promise<string> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws/echo`, { headers: { authorization: `Bearer ${await signToken()}` } });
  return new Promise((resolve, reject) => {
    ws.once('open', () => ws.send(text));
    ws.once('message', (m) => {
      ws.close();
      resolve(m.toString());
    });
    ws.once('error', reject);
  });
}

/**
 * A CA, the app's certificate for app.internal.test, the sidecar's client certificate, the mTLS app,
 * and a gateway on `leg` whose upstream.tls is `tls` (given the CA and the client pair).
 */
async function mtlsGateway(leg: 'lean' | 'ws', tls: (ca: Pair, client: Pair) => Record<string, string>) {
  const dir = certDir();
  const ca = makePair(dir, 'ca', 'wsguard-test-ca', { isCa: true });
  const server = makePair(dir, 'app', 'app.internal.test', { ca });
  const client = makePair(dir, 'sidecar', 'wsguard-sidecar', { ca, clientAuth: true });
  const app = await startMtlsUpstream(ca, server);
  const g = await useGateway({ upstream: app.url, config: { upstream: { client: leg, tls: tls(ca, client) } } });
  return { app, port: g.port };
}

describe.each(['lean', 'ws'] as const)('wss:// upstream with mTLS (%s leg)', (leg) => {
  it('presents the client certificate, verifies the upstream against the CA and servername, and relays', async () => {
    const { app, port } = await mtlsGateway(leg, (ca, client) => ({
      caFile: ca.certFile,
      certFile: client.certFile,
      keyFile: client.keyFile,
      serverName: 'app.internal.test',
    }));
    expect(await echoThrough(port, `mtls ${leg}`)).toBe(`mtls ${leg}`);
    expect(app.clientNames).toEqual(['wsguard-sidecar']);
  });

  it('gets 502 when the upstream refuses the handshake for want of a client certificate', async () => {
    const { app, port } = await mtlsGateway(leg, (ca) => ({ caFile: ca.certFile, serverName: 'app.internal.test' }));
    expect(await refusal(port)).toBe('502 upstream_unavailable');
    expect(app.clientNames).toEqual([]);
  });

  it('gets 502 when the upstream certificate does not match the configured servername', async () => {
    const { port } = await mtlsGateway(leg, (ca, client) => ({
      caFile: ca.certFile,
      certFile: client.certFile,
      keyFile: client.keyFile,
      serverName: 'evil.test',
    }));
    expect(await refusal(port)).toBe('502 upstream_unavailable');
  });
});
