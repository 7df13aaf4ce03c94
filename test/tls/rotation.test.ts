import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { delta, useGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { waitFor } from '../helpers/wait.ts';
import { certDir, makePair, peerSerial, replacePair, type Pair } from './certs.ts';

const RELOAD = 'wsguard_tls_reload_total';
const EXPIRY = 'wsguard_tls_certificate_expiry_timestamp_seconds';

/** The not-after the gauge should show for a certificate file. */
function notAfterSec(file: string): number {
  return Math.floor(Date.parse(new X509Certificate(readFileSync(file)).validTo) / 1000);
}

interface Client {
  ws: WebSocket;
  closed: boolean;
  echo(text: string): Promise<string>;
}

async function openClient(port: number): Promise<Client> {
  const ws = new WebSocket(`wss://127.0.0.1:${port}/ws/echo`, {
    rejectUnauthorized: false,
    headers: { authorization: `Bearer ${await signToken()}` },
  });
  const client: Client = {
    ws,
    closed: false,
    echo: (text) =>
      new Promise((resolve, reject) => {
        // A socket that already closed never emits 'close' again: fail now, not at the test's timeout.
        if (ws.readyState !== WebSocket.OPEN) return reject(new Error(`closed before the echo (readyState ${ws.readyState})`));
        ws.once('message', (m) => resolve(m.toString()));
        ws.once('close', () => reject(new Error('closed before the echo')));
        ws.send(text);
      }),
  };
  ws.on('close', () => (client.closed = true));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  return client;
}

function tlsConfig(pair: Pair) {
  return {
    server: { tls: { certFile: pair.certFile, keyFile: pair.keyFile, reloadDebounceMs: 50 } },
    limits: { concurrent: { max: 100 }, attempts: { max: 1000 } },
  };
}

describe('certificate rotation', () => {
  it('swaps in a new pair written over the files while 50 connections stay open and keep relaying', async () => {
    const dir = certDir();
    const served = makePair(dir, 'served', 'localhost', { days: 2 });
    const next = makePair(dir, 'next', 'localhost', { days: 30 });
    const g = await useGateway({ config: tlsConfig(served) });
    // One at a time: server.maxPendingPerClient (10) bounds handshakes in flight from one address.
    const clients: Client[] = [];
    for (let i = 0; i < 50; i++) clients.push(await openClient(g.port));
    const before = await g.metrics();
    expect(before.value(EXPIRY, { server_name: 'default' })).toBe(notAfterSec(served.certFile));
    for (const [i, c] of clients.entries()) expect(await c.echo(`before ${i}`)).toBe(`before ${i}`);

    replacePair(next, served);
    await waitFor(async () => (await peerSerial(g.port)) === next.serial, { what: 'new handshakes to see the new serial' });

    // Every connection opened before the swap is still open and still relays, on its old session.
    for (const [i, c] of clients.entries()) expect(await c.echo(`after ${i}`)).toBe(`after ${i}`);
    expect(clients.filter((c) => c.closed)).toHaveLength(0);
    expect(g.server.gateway.connectionCount).toBe(50);
    // A full wss handshake and relay on the new listener.
    const fresh = await openClient(g.port);
    expect(await fresh.echo('fresh')).toBe('fresh');
    const after = await g.metrics();
    expect(delta(before, after, RELOAD, { outcome: 'success' })).toBe(1);
    expect(delta(before, after, RELOAD, { outcome: 'error' })).toBe(0);
    expect(after.value(EXPIRY, { server_name: 'default' })).toBe(notAfterSec(next.certFile));
    for (const c of [...clients, fresh]) c.ws.close();
  });

  it('refuses a bad new pair: counts an error and keeps serving the old certificate and connections', async () => {
    const dir = certDir();
    const served = makePair(dir, 'served', 'localhost');
    const other = makePair(dir, 'other', 'localhost');
    const g = await useGateway({ config: tlsConfig(served) });
    const client = await openClient(g.port);
    const before = await g.metrics();

    // A key that does not match the certificate (a half-finished rotation, say).
    replacePair({ ...other, certFile: served.certFile }, served);
    const errored = await waitFor(async () => {
      const s = await g.metrics();
      return delta(before, s, RELOAD, { outcome: 'error' }) >= 1 && s;
    });
    expect(delta(before, errored, RELOAD, { outcome: 'success' })).toBe(0);
    expect(await peerSerial(g.port)).toBe(served.serial);
    expect(await client.echo('still here')).toBe('still here');
    expect(errored.value(EXPIRY, { server_name: 'default' })).toBe(notAfterSec(served.certFile));

    // Finishing the rotation (the matching certificate arrives) is picked up.
    replacePair(other, served);
    await waitFor(async () => (await peerSerial(g.port)) === other.serial, { what: 'the completed pair to be served' });
    expect(await client.echo('and after')).toBe('and after');
    client.ws.close();
  });

  it('reloads on demand (SIGHUP) and reports unchanged files as unchanged', async () => {
    const dir = certDir();
    const served = makePair(dir, 'served', 'localhost');
    const next = makePair(dir, 'next', 'localhost');
    const g = await useGateway({ config: { ...tlsConfig(served), server: { tls: { ...tlsConfig(served).server.tls, watch: false } } } });
    expect(await g.server.gateway.reloadTls()).toBe('unchanged');
    replacePair(next, served);
    expect(await g.server.gateway.reloadTls()).toBe('success');
    expect(await peerSerial(g.port)).toBe(next.serial);
  });
});
