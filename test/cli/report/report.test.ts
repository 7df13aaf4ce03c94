import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFlood } from '../../../cli/engine/flood.ts';
import type { RunResult } from '../../../cli/engine/result.ts';
import { splitShare } from '../../../cli/engine/shard.ts';
import { renderHtml } from '../../../cli/report/html.ts';
import { renderMarkdown } from '../../../cli/report/markdown.ts';
import { mergeResults } from '../../../cli/engine/merge.ts';
import { toNdjson } from '../../../cli/report/output.ts';
import { renderTerminal } from '../../../cli/report/terminal.ts';
import { floodOptions } from '../helpers/flood-options.ts';
import { uwsEcho, type TestServer } from '../helpers/servers.ts';
import { runCli } from '../helpers/spawn-cli.ts';

let echo: TestServer;
let shards: RunResult[];
const dir = mkdtempSync(join(tmpdir(), 'wsguard-report-'));

beforeAll(async () => {
  echo = await uwsEcho();
  const base = floodOptions(echo.url, { connections: 5, msgRate: 20, durationSec: 1.2 });
  // Two shards side by side, as two machines running --shard 1/2 and --shard 2/2 would.
  shards = await Promise.all([0, 1].map((i) => runFlood(splitShare(base, i, 2))));
});
afterAll(async () => {
  await echo.close();
});

describe('report', () => {
  it('merges shards: counts add up and histograms merge exactly', () => {
    const m = mergeResults(shards);
    expect(m.shards).toBe(2);
    expect(m.connections.attempts).toBe(5);
    expect(m.messages.sent).toBe(echo.counts.messages);
    expect(m.latency.rtt.count).toBe(shards[0]!.latency.rtt.count + shards[1]!.latency.rtt.count);
    // Equal within HdrHistogram's 3 significant digits.
    const max = Math.max(shards[0]!.latency.rtt.max, shards[1]!.latency.rtt.max);
    expect(Math.abs(m.latency.rtt.max - max) / max).toBeLessThan(0.002);
    expect(m.outcomes).toEqual({ completed: 5 });
  });

  it('renders terminal, Markdown, NDJSON and a self-contained HTML file with SVG charts', () => {
    const r = mergeResults(shards);
    expect(renderTerminal(r)).toContain('rtt (CO-corrected)');
    const md = renderMarkdown(r);
    expect(md).toContain('| attempts | opened | peak open |');
    expect(md).toContain('`completed`');
    const html = renderHtml(r);
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.match(/<svg /g)!.length).toBeGreaterThanOrEqual(5);
    expect(html).toContain('Connections over time');
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    const lines = toNdjson(r).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ kind: 'flood', t: expect.any(Number), open: expect.any(Number) });
  });

  it('wsguard report merges files and re-evaluates thresholds with exit codes', async () => {
    const files = shards.map((s, i) => {
      const f = join(dir, `shard-${i + 1}.json`);
      writeFileSync(f, JSON.stringify(s));
      return f;
    });
    const html = join(dir, 'r.html');
    const fail = await runCli(['report', ...files, '-f', 'html', '-o', html, '--threshold', 'attempts>5']);
    expect(fail.code).toBe(1);
    expect(readFileSync(html, 'utf8')).toContain('<svg');
    expect(readFileSync(html, 'utf8')).toContain('2 shards merged');
    writeFileSync(join(dir, 'junk.json'), '{"hello":1}');
    const bad = await runCli(['report', join(dir, 'junk.json')]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('not a wsguard result');
  });
});
