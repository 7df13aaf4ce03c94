import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { WebSocketServer } from 'ws';
import type { RunResult } from '../../../cli/engine/result.ts';
import { runCli } from '../helpers/spawn-cli.ts';

/** A room that holds every message DELAY_MS before broadcasting it to every member, the sender included. */
const DELAY_MS = 50;

async function delayedRoom(): Promise<string> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      setTimeout(() => {
        for (const c of wss.clients) c.send(data, { binary: isBinary });
      }, DELAY_MS);
    });
  });
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  );
  return `ws://127.0.0.1:${(wss.address() as { port: number }).port}/`;
}

describe('wsguard run: fanout latency', () => {
  it('measures send-to-first and send-to-last receiver against a room that delays broadcasts by 50 ms', async () => {
    const url = await delayedRoom();
    const dir = mkdtempSync(join(tmpdir(), 'wsguard-fanout-'));
    writeFileSync(
      join(dir, 's.yaml'),
      [
        'load: { connections: 5 }',
        'thresholds: [fanout_missing == 0]',
        'steps:',
        '  - connect:',
        '  - name: room',
        '    fanout: { sender: 0, count: 40, rate: 40, receivers: 4, size: 128, timeout: 2s }',
      ].join('\n'),
    );
    const json = join(dir, 'out.json');
    const r = await runCli(['run', join(dir, 's.yaml'), '--url', url, '--json', json, '--progress-interval', '0'], 60_000);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8')) as RunResult;
    const f = result.scenario!.fanout.room!;
    expect(f.messages).toBe(40);
    expect(f.expected).toBe(160);
    expect(f.delivered).toBe(160);
    expect(f.missing).toBe(0);
    expect(f.first.count).toBe(40);
    expect(f.last.count).toBe(40);
    // The server's delay is a floor no message can beat (its timer fires no earlier than 50 ms).
    expect(f.first.min).toBeGreaterThanOrEqual(DELAY_MS);
    expect(f.first.p50).toBeGreaterThanOrEqual(DELAY_MS);
    expect(f.last.p50).toBeGreaterThanOrEqual(f.first.p50);
    // Sane upper bound: loopback plus a busy 2-core machine's scheduling, far below a second.
    expect(f.last.p99).toBeLessThan(DELAY_MS + 500);
    expect(r.stdout).toMatch(/room to first receiver\s+40\s+0\s+\d+(\.\d+)?\s/);
    expect(r.stdout).toContain('room to last receiver');
  });
});
