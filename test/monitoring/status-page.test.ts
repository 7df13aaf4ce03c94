import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from '../helpers/browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { handshakeStatus } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signToken } from '../helpers/tokens.ts';
import { startEchoUpstream, type TestUpstream } from '../helpers/upstream.ts';

/**
 * The status page end to end (issue 14): a real gateway, a bounded loopback flood through the CLI
 * (`wsguard flood … --json`, its stable interface) and a burst of rejected handshakes, watched by
 * the page in Debian's Chromium. The page's drawn series (window.__wsguardStatus.charts, the arrays
 * uPlot draws) must add up to the flood's own counts and to the monitoring API.
 */
const ARTIFACTS = join(process.cwd(), 'test-artifacts');
const FLOOD_CONNECTIONS = 12;
const REJECTED = 15;

interface ChartData {
  labels: string[];
  data: Array<Array<number | null>>;
}

/** Count over the whole series: the page draws per-second rates, each over its sample's interval. */
function total(chart: ChartData, label: string, dtMs: number[]): number {
  const i = chart.labels.indexOf(label);
  expect(i, `series ${label} in ${chart.labels.join(', ')}`).toBeGreaterThanOrEqual(0);
  return Math.round(chart.data[i + 1]!.reduce<number>((acc, v, k) => acc + ((v ?? 0) * dtMs[k]!) / 1000, 0));
}

function runFlood(url: string, jsonPath: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        'bin/wsguard.js',
        'flood',
        url,
        '-c',
        String(FLOOD_CONNECTIONS),
        '-r',
        '5',
        '-d',
        '8s',
        '--source-ip',
        '127.0.0.2-127.0.0.7',
        '--json',
        jsonPath,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stderr }));
  });
}

describe('the status page in headless Chromium (Debian package chromium)', () => {
  let browser: Browser;
  let upstream: TestUpstream;
  let gw: TestGateway;
  let tmp: string;

  beforeAll(async () => {
    browser = await launchChromium();
    upstream = await startEchoUpstream();
    gw = await startTestGateway(upstream.url, {
      routes: [
        { path: '/ws/', upstream: `${upstream.url}/ws/`, allowAnonymous: true },
        { path: '/private/', upstream: `${upstream.url}/ws/` },
      ],
      // The burst comes from 127.0.0.1 alone: let every attempt reach the token check.
      limits: { attempts: { max: 1000 } },
    });
    tmp = mkdtempSync(join(tmpdir(), 'wsguard-status-'));
    mkdirSync(ARTIFACTS, { recursive: true });
  }, 30_000);

  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    await upstream?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  async function api(path: string, token: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${gw.server.telemetry!.admin!.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  }

  const lastSampleT = (page: Page) => page.evaluate(() => window.__wsguardStatus.samples.at(-1)?.t ?? 0);

  it('draws what the flood and the rejected burst did, equal to the flood report and the monitoring API', async () => {
    const admin = gw.server.telemetry!.admin!.url;
    const adminToken = await signToken({ aud: 'wsguard-monitoring', role: 'admin' });
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(`${admin}/status`);

    // Token mode: the page asks, keeps the token in sessionStorage only, and never shows it.
    await page.locator('form.token input').fill(adminToken);
    await page.locator('form.token button').click();
    await page.waitForFunction(() => window.__wsguardStatus.polls >= 2, null, { timeout: 10_000 });
    expect(await page.evaluate(() => [sessionStorage.length, localStorage.length, document.cookie])).toEqual([1, 0, '']);
    expect(await page.content()).not.toContain(adminToken);

    const baseline = (await api('/api/monitoring/websocket/metrics/', adminToken)) as {
      connections_today: number;
      messages_received: number;
    };
    const pollsBefore = await page.evaluate(() => window.__wsguardStatus.polls);
    const floodJson = join(tmp, 'flood.json');
    const flood = runFlood(`ws://127.0.0.1:${gw.port}/ws/echo/`, floodJson);

    // Live, within one polling interval: once the page shows the flood's connections open, the API agrees.
    // (Bounded generously: on a loaded 2-core machine the CLI alone can take seconds to start.)
    await page.waitForFunction((n) => window.__wsguardStatus.samples.at(-1)?.active['/ws/'] === n, FLOOD_CONNECTIONS, {
      timeout: 40_000,
      polling: 100,
    });
    const live = (await api('/api/monitoring/websocket/active-connections/', adminToken)) as { active_connections: number };
    expect(live.active_connections).toBe(FLOOD_CONNECTIONS);

    const statuses = await Promise.all(Array.from({ length: REJECTED }, () => handshakeStatus(`ws://127.0.0.1:${gw.port}/private/x`)));
    expect(statuses).toEqual(Array(REJECTED).fill(401));

    const { code, stderr } = await flood;
    expect(code, stderr).toBe(0);
    const report = JSON.parse(readFileSync(floodJson, 'utf8')) as {
      connections: { opened: number; peakOpen: number };
      messages: { sent: number; received: number };
    };
    expect(report.connections.opened).toBe(FLOOD_CONNECTIONS);

    // Wait until the page has drawn a sample taken after everything ended (at most a sample and a poll later).
    const done = Date.now();
    await page.waitForFunction((t) => (window.__wsguardStatus.samples.at(-1)?.t ?? 0) > t, done, { timeout: 20_000 });
    expect(await lastSampleT(page)).toBeGreaterThan(done);
    await page.screenshot({ path: join(ARTIFACTS, 'status-page.png'), fullPage: true });

    const view = await page.evaluate(() => {
      const s = window.__wsguardStatus;
      return { charts: s.charts, dt: s.samples.map((x) => x.dt_ms), answer: s.answer, polls: s.polls };
    });
    expect(view.polls).toBeGreaterThan(pollsBefore);
    const c = view.charts as Record<string, ChartData>;
    const after = (await api('/api/monitoring/websocket/metrics/', adminToken)) as { connections_today: number; messages_received: number };
    const rejections = (await api('/api/monitoring/websocket/rejections/', adminToken)) as {
      by_reason: Record<string, { enforced: number }>;
      top_offenders: Array<{ client: string; count: number }>;
    };

    // Handshakes: the page's accepted and rejected series against the flood and the API.
    expect(total(c.handshakes!, 'accepted', view.dt)).toBe(report.connections.opened);
    expect(total(c.handshakes!, 'accepted', view.dt)).toBe(after.connections_today - baseline.connections_today);
    expect(total(c.handshakes!, 'rejected: auth', view.dt)).toBe(REJECTED);
    expect(rejections.by_reason.auth!.enforced).toBe(REJECTED);
    expect(total(c.handshakes!, 'closed', view.dt)).toBe(FLOOD_CONNECTIONS);
    // Messages: what the flood sent is what the gateway received from clients, and what it echoed back.
    expect(total(c.messages!, 'client → upstream', view.dt)).toBe(report.messages.sent);
    expect(total(c.messages!, 'client → upstream', view.dt)).toBe(after.messages_received - baseline.messages_received);
    expect(total(c.messages!, 'upstream → client', view.dt)).toBe(report.messages.received);
    // Active connections: the peak the page drew is the flood's peak, and it is back to 0.
    const active = c.active!.data[c.active!.labels.indexOf('/ws/') + 1]!;
    expect(Math.max(...active.map((v) => v ?? 0))).toBe(report.connections.peakOpen);
    expect(active.at(-1)).toBe(0);
    // Handshake latency was drawn while connections were accepted.
    expect(c.latency!.data[2]!.some((v) => v !== null && v > 0)).toBe(true);
    // The offenders table is the API's, with the full address behind the token.
    expect(view.answer!.top_offenders[0]).toMatchObject({ client: '127.0.0.1', count: REJECTED });
    expect(rejections.top_offenders[0]).toMatchObject({ client: '127.0.0.1', count: REJECTED });
    expect(await page.locator('.offenders td.mono').first().textContent()).toBe('127.0.0.1');
    expect(pageErrors).toEqual([]);
    await page.close();
  }, 120_000);
});
