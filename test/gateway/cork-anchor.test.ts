import { Writable } from 'node:stream';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { CorkAnchor } from '../../src/gateway/cork-anchor.ts';

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
});
