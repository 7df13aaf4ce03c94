import { createServer, type Server } from 'node:http';
import { WebSocketServer } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { open, closed } from '../helpers/client.ts';
import { signToken } from '../helpers/tokens.ts';

let gateway: TestGateway | undefined;
let server: Server | undefined;
afterEach(async () => {
  await gateway?.close();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  gateway = undefined;
  server = undefined;
});

/** A real ws upstream on 127.0.0.1 that records the source address of every connection it accepts. */
async function recordingUpstream(): Promise<{ url: string; sources: string[] }> {
  const sources: string[] = [];
  server = createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    sources.push(req.socket.remoteAddress ?? '?');
    ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary }));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `ws://127.0.0.1:${port}`, sources };
}

describe('upstream.localAddresses', () => {
  it('rotates the upstream dial over the configured source addresses', async () => {
    const upstream = await recordingUpstream();
    gateway = await startTestGateway(upstream.url, { upstream: { localAddresses: ['127.0.0.2', '127.0.0.3'] } });
    const token = await signToken();
    for (let i = 0; i < 4; i++) {
      const ws = await open(`${gateway.base}/ws/?access_token=${token}`);
      ws.close();
      await closed(ws);
    }
    // Before the option existed every dial came from the kernel's pick, 127.0.0.1.
    expect(upstream.sources).toHaveLength(4);
    expect(new Set(upstream.sources)).toEqual(new Set(['127.0.0.2', '127.0.0.3']));
    expect(upstream.sources[0]).not.toBe(upstream.sources[1]);
    expect(upstream.sources[2]).toBe(upstream.sources[0]);
  });

  it('refuses an entry that is not an IP address, naming the option', () => {
    expect(() =>
      parseConfig({ routes: [{ path: '/', upstream: 'ws://127.0.0.1:1/' }], upstream: { localAddresses: ['localhost'] } }),
    ).toThrow(/upstream\.localAddresses\.0/);
  });
});
