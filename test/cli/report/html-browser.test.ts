import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runFlood } from '../../../cli/engine/flood.ts';
import { renderHtml } from '../../../cli/report/html.ts';
import { floodOptions } from '../helpers/flood-options.ts';
import { uwsEcho, type TestServer } from '../helpers/servers.ts';

// The HTML report is a web page, so a real browser renders it. .ci/run installs Debian's chromium and
// under CI=true this test runs; on a developer machine without chromium it is skipped.
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = spawnSync(CHROMIUM, ['--version']).status === 0;
const skip = !hasChromium && process.env['CI'] !== 'true';

function chromium(args: string[], dir: string) {
  return spawnSync(
    CHROMIUM,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      `--user-data-dir=${join(dir, 'profile')}`,
      ...args,
    ],
    { encoding: 'utf8', timeout: 60_000 },
  );
}

let echo: TestServer;
const dir = mkdtempSync(join(tmpdir(), 'wsguard-html-'));
const page = join(dir, 'report.html');

beforeAll(async () => {
  echo = await uwsEcho();
  const result = await runFlood(floodOptions(echo.url, { connections: 4, msgRate: 20, durationSec: 1.5 }));
  writeFileSync(page, renderHtml(result));
});
afterAll(async () => {
  await echo.close();
});

describe.skipIf(skip)('HTML report in headless Chromium (skipped only outside CI, where /usr/bin/chromium is missing)', () => {
  it('renders every chart with drawn series, and paints a screenshot', () => {
    const dom = chromium(['--dump-dom', `file://${page}`], dir);
    expect(dom.status, dom.stderr).toBe(0);
    const svgs = dom.stdout.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    expect(svgs.length).toBeGreaterThanOrEqual(5);
    // Every chart but the outcomes one (a clean run has no failures to plot) draws something visible:
    // a path with at least two points, a marker for a lone point, or bars.
    const visible = /<path d="M[^"]*L|<circle |<rect [^>]*height="16"/;
    const drawn = svgs.filter((svg) => visible.test(svg));
    expect(svgs.length - drawn.length).toBeLessThanOrEqual(1);
    expect(svgs.find((svg) => !visible.test(svg)) ?? 'aria-label="Outcomes per second"').toContain('aria-label="Outcomes per second"');
    expect(dom.stdout).toContain('Connections over time');

    const png = join(dir, 'report.png');
    const shot = chromium([`--screenshot=${png}`, '--window-size=1200,2400', `file://${page}`], dir);
    expect(shot.status, shot.stderr).toBe(0);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
    // A blank page compresses to a few KB; charts and tables do not.
    expect(statSync(png).size).toBeGreaterThan(30_000);
  }, 90_000);
});
