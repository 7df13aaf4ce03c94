import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

/**
 * uWS binds with SO_REUSEPORT unless told otherwise: a second wsguard on a taken port used to start,
 * print "listening", and get half of the first one's connections from the kernel.
 */
const stops: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

describe('listening', () => {
  it('refuses a public port another wsguard holds, naming server.port', async () => {
    const upstream: TestUpstream = await startEchoUpstream();
    stops.push(() => upstream.close());
    const first: TestGateway = await startTestGateway(upstream.url);
    stops.push(() => first.close());
    await expect(startTestGateway(upstream.url, { server: { port: first.port } })).rejects.toThrow(
      new RegExp(`could not listen on 127\\.0\\.0\\.1:${first.port}: port ${first.port} is already in use.*server\\.port`),
    );
  });

  it('refuses a port a plain Node server holds, and an admin port in use names telemetry.admin.port', async () => {
    const upstream = await startEchoUpstream();
    stops.push(() => upstream.close());
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    stops.push(() => new Promise((r) => holder.close(r)));
    const port = (holder.address() as net.AddressInfo).port;
    await expect(startTestGateway(upstream.url, { server: { port } })).rejects.toThrow(/already in use.*server\.port/);
    await expect(startTestGateway(upstream.url, { telemetry: { admin: { port } } })).rejects.toThrow(
      /already in use.*telemetry\.admin\.port/,
    );
  });
});
