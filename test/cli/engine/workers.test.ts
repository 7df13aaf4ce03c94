import { afterEach, describe, expect, it } from 'vitest';
import { runFloodWorkers } from '../../../cli/engine/workers.ts';
import { autoSourceIps } from '../../../cli/engine/source-ips.ts';
import { waitFor } from '../../helpers/wait.ts';
import { floodOptions } from '../helpers/flood-options.ts';
import { wsServer, type TestServer } from '../helpers/servers.ts';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('worker threads and source addresses', () => {
  it('splits a flood over two threads and 127.0.0.x sources, and merges the shares', async () => {
    const sources = new Set<string>();
    server = await wsServer({ onConnection: (_ws, req) => sources.add(req.socket.remoteAddress ?? '') });
    const r = await runFloodWorkers(
      floodOptions(server.url, { connections: 8, msgRate: 20, durationSec: 1.2, sourceIps: ['127.0.0.2', '127.0.0.3', '127.0.0.4'] }),
      2,
    );
    expect(r.config.workers).toBe(2);
    expect(r.connections.attempts).toBe(8);
    expect(r.outcomes).toEqual({ completed: 8 });
    expect(r.messages.sent).toBe(server!.counts.messages);
    expect(r.messages.received).toBe(r.messages.sent);
    expect([...sources].sort()).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  });

  it("an abort ends a threaded run with every share's result (it hung: threads were terminated and never answered)", async () => {
    server = await wsServer();
    const ac = new AbortController();
    let opened = 0;
    const run = runFloodWorkers(floodOptions(server.url, { connections: 4, msgRate: 20, durationSec: 120 }), 2, {
      signal: ac.signal,
      onSample: (p) => (opened = p.opened),
    });
    await waitFor(() => opened === 4, { timeoutMs: 30_000 });
    ac.abort();
    const r = await run;
    expect(r.config.workers).toBe(2);
    expect(r.aborted?.reason).toMatch(/SIGINT/);
    expect(r.connections.attempts).toBe(4);
    expect(r.messages.received).toBe(r.messages.sent);
    expect(r.messages.sent).toBeGreaterThan(0);
  });

  it('picks enough loopback sources for the connection count', () => {
    expect(autoSourceIps('ws://127.0.0.1:1/', 100)).toEqual(['127.0.0.1']);
    expect(autoSourceIps('ws://127.0.0.1:1/', 60_000)!.length).toBeGreaterThanOrEqual(3);
    expect(() => autoSourceIps('ws://example.com/', 10)).toThrow(/loopback/);
  });
});
