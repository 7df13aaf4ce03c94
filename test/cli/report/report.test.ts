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
  // Marked as the CLI marks them: one run id, shard i of 2.
  shards = (await Promise.all([0, 1].map((i) => runFlood(splitShare(base, i, 2))))).map((r, i) => ({
    ...r,
    runId: 'run-a',
    shard: { index: i + 1, count: 2 },
  }));
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
    const lines = toNdjson(r)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
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
    expect(fail.stdout).toMatch(new RegExp(`^wrote html report to ${html.replaceAll('.', '\\.')} \\(\\d+(\\.\\d)? KiB\\)$`, 'm'));
    expect(readFileSync(html, 'utf8')).toContain('<svg');
    expect(readFileSync(html, 'utf8')).toContain('2 shards merged');
    writeFileSync(join(dir, 'junk.json'), '{"hello":1}');
    const bad = await runCli(['report', join(dir, 'junk.json')]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('not a wsguard result');
  });

  it('refuses (exit 3) to merge results that are not the shards of one run', async () => {
    const write = (name: string, r: RunResult): string => {
      const f = join(dir, name);
      writeFileSync(f, JSON.stringify(r));
      return f;
    };
    const a = write('a.json', shards[0]!);
    const otherTarget = write('other-target.json', { ...shards[1]!, target: 'ws://127.0.0.1:9/elsewhere' });
    const otherRun = write('other-run.json', { ...shards[1]!, runId: 'run-b' });
    const same = write('same.json', shards[0]!);
    const whole = write('whole.json', { ...shards[1]!, shard: undefined });
    const cases = [
      [otherTarget, 'is not from the same run'],
      [otherRun, 'is not from the same run'],
      [same, 'are the same shard'],
      [whole, 'is a whole run, not a shard'],
    ] as const;
    // Four CLI processes: started together, and given the time a loaded 2-core machine needs to start them.
    const runs = await Promise.all(cases.map(([f]) => runCli(['report', a, f], 45_000)));
    for (const [i, [, msg]] of cases.entries()) {
      expect(runs[i]!.stderr).toContain(msg);
      expect(runs[i]!.code).toBe(3);
    }
  }, 60_000);

  it('renders a probe result (terminal, Markdown, HTML) instead of refusing it', async () => {
    const json = join(dir, 'probe.json');
    const probe = await runCli(['probe', echo.url, '--settle', '50', '--json', json], 45_000);
    expect(probe.code).toBe(0);
    // Three renderings of one file: started together, with the time a loaded machine needs to start them.
    const [text, md, html] = await Promise.all([
      runCli(['report', json], 45_000),
      runCli(['report', json, '-f', 'md'], 45_000),
      runCli(['report', json, '-f', 'html'], 45_000),
    ]);
    expect(text.stdout).toContain('PASS  a valid client connects: observed opened');
    expect(text.stdout).toContain('verdict: passed (exit 0)');
    expect(text.code).toBe(0);
    expect(md.stdout).toContain('| a valid client connects | pass | `opened` |');
    expect(html.stdout).toContain('<div class="verdict verdict-passed" data-exit="0">Verdict: passed (exit 0)');
    expect(html.stdout).toContain('<td>a valid client connects</td>');
  }, 90_000);
});
