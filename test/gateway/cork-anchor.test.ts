import { readdirSync } from 'node:fs';
import net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CorkAnchor } from '../../src/gateway/cork-anchor.ts';
import { attempt } from '../helpers/client.ts';
import { startTestGateway, useGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream } from '../helpers/upstream.ts';

const openFds = (): number => readdirSync('/proc/self/fd').length;

/** A pino logger whose lines land in `lines`, parsed. */
function capturingLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

describe('CorkAnchor', () => {
  it('holds its request and runs each upgrade at once, also after close', async () => {
    const { logger, lines } = capturingLogger();
    const anchor = await CorkAnchor.start(logger);
    onTestFinished(() => anchor.close());
    let ran = 0;
    anchor.run(() => ran++);
    anchor.close();
    anchor.close();
    anchor.run(() => ran++);
    expect(ran).toBe(2);
    // Closing it on purpose is not the loss an operator is told about.
    expect(lines.filter((l) => l.level === 40)).toEqual([]);
  });

  it('starts without the held request when it cannot make its socket, says so, and still runs upgrades', async () => {
    const { logger, lines } = capturingLogger();
    const before = process.env.TMPDIR;
    const restore = (): void => {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    };
    onTestFinished(restore);
    process.env.TMPDIR = '/nonexistent-wsguard-anchor-test';
    const anchor = await CorkAnchor.start(logger);
    restore();
    let ran = 0;
    anchor.run(() => ran++);
    expect(ran).toBe(1);
    expect(lines.map((l) => l.event)).toEqual(['cork_anchor_unavailable']);
  });

  it('is closed when the gateway cannot bind its port (an open one keeps the process alive and holds two fds)', async () => {
    const upstream = await startEchoUpstream();
    onTestFinished(() => upstream.close());
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
    onTestFinished(() => new Promise<void>((r) => holder.close(() => r())));
    const port = (holder.address() as net.AddressInfo).port;
    // A first failed start warms up whatever a start opens once per process (the fd watcher, modules).
    await expect(startTestGateway(upstream.url, { server: { port } })).rejects.toThrow(/already in use/);
    const before = openFds();
    await expect(startTestGateway(upstream.url, { server: { port } })).rejects.toThrow(/already in use/);
    expect(openFds() - before).toBe(0);
  });
});

describe('what the 101 and an HTTP refusal say about the server', () => {
  it('names no server software: no uWebSockets header on a 101 or a 404', async () => {
    const g = await useGateway();
    const opened = await attempt(`${g.base}/ws/`, [], { headers: { authorization: `Bearer ${await signToken()}` } });
    if (opened.kind !== 'open') throw new Error(`expected a 101, got ${JSON.stringify(opened)}`);
    opened.ws.close();
    expect(opened.headers.upgrade).toBe('websocket');
    expect(Object.keys(opened.headers)).not.toContain('uwebsockets');
    const refused = await attempt(`${g.base}/no-such-route/`);
    expect(refused).toMatchObject({ kind: 'rejected', status: 404 });
    expect(Object.keys((refused as { headers: object }).headers)).not.toContain('uwebsockets');
  });
});
