import { WebSocketServer } from 'ws';
import { describe, expect, it } from 'vitest';
import { attempt, closed, nextMessage, open, rejected } from '../helpers/client.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { closedPort, startSilentServer } from '../helpers/upstream.ts';
import { useRig } from './helpers/setup.ts';

const rig = useRig();
const limits = { attempts: { max: 1000 }, concurrent: { max: 100 } };

/** An echo upstream on a fixed port that a test can kill and bring back. */
async function echoOn(port: number): Promise<{ wss: WebSocketServer; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
  await new Promise<void>((r, j) => {
    wss.once('listening', () => r());
    wss.once('error', j);
  });
  wss.on('connection', (ws) => ws.on('message', (d, bin) => ws.send(d, { binary: bin })));
  return {
    wss,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  };
}

async function gatewayTo(upstreamUrl: string, extra: Record<string, unknown> = {}) {
  const gw = await startTestGateway(upstreamUrl, { limits, ...extra });
  rig.defer(() => gw.close());
  return gw;
}

describe('upstream faults', () => {
  it('refused: 502 upstream_unavailable, and the attempt is given back', async () => {
    const gw = await gatewayTo(`ws://127.0.0.1:${await closedPort()}`, { limits: { attempts: { max: 2 }, concurrent: { max: 100 } } });
    const url = `${gw.base}/ws/a?access_token=${await signToken()}`;
    for (let i = 0; i < 4; i++) {
      const r = rejected(await attempt(url));
      expect(r.status).toBe(502);
      expect(JSON.parse(r.body).error).toBe('upstream_unavailable');
    }
  });

  it('hangs without answering: 504 upstream_timeout within the dial deadline', async () => {
    const silent = await startSilentServer();
    rig.defer(() => silent.close());
    const handshakeTimeoutMs = 20_000;
    const gw = await gatewayTo(`ws://127.0.0.1:${silent.port}`, { upstream: { dialTimeoutMs: 300 }, server: { handshakeTimeoutMs } });
    const started = performance.now();
    const r = rejected(await attempt(`${gw.base}/ws/a?access_token=${await signToken()}`));
    // upstream_timeout (not handshake_timeout) already shows the dial's own deadline ended it; the bound only
    // rules out waiting for the handshake deadline, with seconds of slack for a busy 2-core machine.
    expect(r.status).toBe(504);
    expect(JSON.parse(r.body).error).toBe('upstream_timeout');
    expect(performance.now() - started).toBeLessThan(handshakeTimeoutMs / 2);
  });

  it('dies mid-session: every open client gets 1014', async () => {
    const port = await closedPort();
    let up = await echoOn(port);
    rig.defer(() => up.close());
    const gw = await gatewayTo(`ws://127.0.0.1:${port}`);
    const url = `${gw.base}/ws/a?access_token=${await signToken()}`;
    const clients = await Promise.all([open(url), open(url), open(url)]);
    const ends = clients.map((ws) => closed(ws));
    await up.close();
    expect((await Promise.all(ends)).map((e) => e.code)).toEqual([1014, 1014, 1014]);
    // Restarted: new connections are relayed again.
    up = await echoOn(port);
    const again = await open(url);
    const reply = nextMessage(again);
    again.send('back');
    expect((await reply).data.toString()).toBe('back');
    again.close();
  });

  it('restarts while down: 502 while it is down, open again once it is back; old sessions got 1014', async () => {
    const port = await closedPort();
    let up = await echoOn(port);
    rig.defer(() => up.close());
    const gw = await gatewayTo(`ws://127.0.0.1:${port}`);
    const url = `${gw.base}/ws/a?access_token=${await signToken()}`;
    const old = await open(url);
    const oldEnd = closed(old);
    await up.close();
    expect((await oldEnd).code).toBe(1014);
    expect(rejected(await attempt(url)).status).toBe(502);
    up = await echoOn(port);
    const fresh = await open(url);
    const reply = nextMessage(fresh);
    fresh.send('ok');
    expect((await reply).data.toString()).toBe('ok');
    fresh.close();
  });
});
