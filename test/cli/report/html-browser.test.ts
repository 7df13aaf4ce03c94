import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFlood } from '../../../cli/engine/flood.ts';
import { decideVerdict, evaluateThresholds, parseThreshold } from '../../../cli/engine/thresholds.ts';
import type { RunResult } from '../../../cli/engine/result.ts';
import { renderHtml } from '../../../cli/report/html.ts';
import { PERCENTILE_COLORS } from '../../../cli/report/svg-chart.ts';
import { CHROMIUM, CHROMIUM_FLAGS } from '../../helpers/browser.ts';
import { floodOptions } from '../helpers/flood-options.ts';
import { wsServer, type TestServer } from '../helpers/servers.ts';

// The HTML report is a web page, so a real browser renders it (Debian's chromium; .ci/run installs it).
/** Screenshots are kept for a human to look at (gitignored). */
const ARTIFACTS = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

function chromium(args: string[], dir: string) {
  return spawnSync(CHROMIUM, ['--headless', ...CHROMIUM_FLAGS, `--user-data-dir=${join(dir, 'profile')}`, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
}

let server: TestServer;
let result: RunResult;
const dir = mkdtempSync(join(tmpdir(), 'wsguard-html-'));
const page = join(dir, 'report.html');

beforeAll(async () => {
  // An echo server that swallows the echoes of messages arriving between 0.8 s and 2.6 s after its
  // first one: at least one whole second has no round trip, which the RTT chart must show as a gap.
  let first = 0;
  server = await wsServer({
    echo: false,
    onConnection: (ws) =>
      ws.on('message', (d: Buffer) => {
        first ||= Date.now();
        const at = Date.now() - first;
        if (at < 800 || at >= 2_600) ws.send(d);
      }),
  });
  result = await runFlood(floodOptions(server.url, { connections: 2, msgRate: 20, durationSec: 3.5, drainMs: 100 }));
  result.thresholds = evaluateThresholds(result, [parseThreshold('messages_lost==0')]);
  result.verdict = decideVerdict(result, result.thresholds);
  writeFileSync(page, renderHtml(result));
}, 30_000);
afterAll(async () => {
  await server.close();
});

const attr = (tag: string, name: string): string | undefined => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];

describe('HTML report in headless Chromium (Debian package chromium; .ci/run installs it)', () => {
  it('renders every chart, the coloured verdict, gridline-aligned axes, gaps and one percentile palette', () => {
    const dom = chromium(['--dump-dom', `file://${page}`], dir);
    expect(dom.status, dom.stderr).toBe(0);
    const html = dom.stdout;
    const svgs = html.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    expect(svgs.length).toBeGreaterThanOrEqual(6);
    // Page width: every chart scales to the page instead of a fixed 720 px.
    for (const svg of svgs) expect(attr(svg.slice(0, svg.indexOf('>')), 'width')).toBe('100%');
    expect(html).not.toMatch(/max-width:\s*960px/);

    // The verdict is a coloured banner: lost echoes failed the threshold, so it is the red one.
    expect(result.verdict!.exitCode).toBe(1);
    expect(html).toMatch(/<div class="verdict verdict-failed" data-exit="1">Verdict: threshold_failed \(exit 1\)/);
    expect(html).toMatch(/\.verdict-failed\{background:#fee2e2/);

    // Axes: each x label sits on a vertical gridline at the same x, each y label on a horizontal one.
    for (const svg of svgs.filter((s) => s.includes('class="grid-x"'))) {
      const gx = [...svg.matchAll(/<line class="grid-x" x1="([\d.]+)"/g)].map((m) => m[1]);
      const tx = [...svg.matchAll(/<text class="tick-x" x="([\d.]+)"/g)].map((m) => m[1]);
      expect(tx.length).toBeGreaterThanOrEqual(2);
      expect(tx).toEqual(gx);
      const gy = [...svg.matchAll(/<line class="grid-y" x1="[\d.]+" x2="[\d.]+" y1="([\d.]+)"/g)].map((m) => Number(m[1]));
      const ty = [...svg.matchAll(/<text class="tick-y" x="[\d.]+" y="([\d.]+)"/g)].map((m) => Number(m[1]) - 4);
      expect(ty.map((y) => y.toFixed(1))).toEqual(gy.map((y) => y.toFixed(1)));
      // And each label names its gridline's value exactly: quarters of a round maximum, no rounding
      // (these charts stay below 1,000, where labels are plain numbers).
      const labels = [...svg.matchAll(/<text class="tick-y"[^>]*>([^<]+)</g)].map((m) => Number(m[1]));
      expect(labels).toEqual([0, 1, 2, 3, 4].map((i) => Number(((labels[4]! * i) / 4).toFixed(2))));
    }

    // Gaps: a second without round trips breaks the RTT line (a second move-to), it is not drawn as 0 ms.
    expect(result.series.some((p, i) => i > 0 && i < result.series.length - 1 && p.rttCount === 0)).toBe(true);
    const rttChart = svgs.find((s) => s.includes('aria-label="Round trip per second (CO-corrected)"'))!;
    const p99 = /<path class="series" data-series="p99" d="([^"]+)"/.exec(rttChart)?.[1] ?? '';
    expect(p99.match(/M/g)?.length ?? 0).toBeGreaterThanOrEqual(2);

    // One palette: p99 is the same colour in the per-second lines and in the percentile bars.
    expect(rttChart).toContain(`data-series="p99" d="${p99}" fill="none" stroke="${PERCENTILE_COLORS.p99}"`);
    const bars = svgs.find((s) => s.includes('aria-label="RTT percentiles (whole run)"'))!;
    const barColour = (label: string): string | undefined =>
      new RegExp(`>${label.replace('.', '\\.')}</text><rect [^>]*fill="([^"]+)"`).exec(bars)?.[1];
    expect(['p50', 'p90', 'p99', 'p99.9', 'max'].map(barColour)).toEqual(
      ['p50', 'p90', 'p99', 'p99.9', 'max'].map((k) => PERCENTILE_COLORS[k]),
    );

    mkdirSync(ARTIFACTS, { recursive: true });
    const png = join(ARTIFACTS, 'report-html.png');
    const shot = chromium([`--screenshot=${png}`, '--window-size=1400,2600', `file://${page}`], dir);
    expect(shot.status, shot.stderr).toBe(0);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
    // A blank page compresses to a few KB; charts and tables do not.
    expect(statSync(png).size).toBeGreaterThan(30_000);
  }, 90_000);
});
