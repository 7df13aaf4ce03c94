/**
 * Regenerates the README's two images: docs/img/status.png (the live status page during a flood,
 * a burst of refused handshakes and a few rate-limited clients) and docs/img/flood-report.png (the
 * HTML report of that flood). Real parts throughout: `serve --demo` in this process, the CLI's
 * `flood` and `report` as child processes, Debian's Chromium through playwright-core.
 *
 *   npx tsx scripts/status-images.ts [--out docs/img]
 *
 * The page runs with telemetry.monitoring.statusPage: local, so no token is involved and client
 * addresses appear shortened, as an unauthenticated viewer sees them.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { chromium } from 'playwright-core';
import WebSocket from 'ws';
import { parseConfig } from '../src/config/load.ts';
import { startServer } from '../src/main.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = join(ROOT, 'bin/wsguard.js');

function cli(args: string[]): Promise<number | null> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('exit', (code) => done(code));
  });
}

function refusedHandshake(url: string): Promise<void> {
  return new Promise((done) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', () => {
      ws.terminate();
      done();
    });
    ws.on('open', () => {
      ws.close();
      done();
    });
    ws.on('error', () => done());
  });
}

async function main(): Promise<void> {
  const outIdx = process.argv.indexOf('--out');
  const out = resolve(outIdx === -1 ? join(ROOT, 'docs/img') : process.argv[outIdx + 1]!);
  mkdirSync(out, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'wsguard-images-'));
  const server = await startServer(
    parseConfig({ server: { port: 0 }, telemetry: { admin: { port: 0 }, monitoring: { statusPage: 'local' } } }),
    { demo: true, logger: pino({ level: 'silent' }) },
  );
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const base = `ws://127.0.0.1:${server.gateway.port}`;
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    await page.goto(`${server.telemetry!.admin!.url}/status`);
    const runJson = join(tmp, 'run.json');
    const flood = cli([
      'flood',
      `${base}/ws/echo/`,
      '-c',
      '40',
      '-r',
      '2',
      '-d',
      '25s',
      '--source-ip',
      '127.0.0.2-127.0.0.21',
      '--json',
      runJson,
    ]);
    // Two messages a second stay within the default limit (60 a minute, burst 60) for 25 s; three clients over it get 4129.
    await new Promise((r) => setTimeout(r, 6000));
    const greedy = cli(['flood', `${base}/ws/echo/`, '-c', '3', '-r', '30', '-d', '8s', '--source-ip', '127.0.0.30-127.0.0.32']);
    // Refused handshakes (no token on the private route), in three bursts.
    for (let burst = 0; burst < 3; burst++) {
      await new Promise((r) => setTimeout(r, 4000));
      await Promise.all(Array.from({ length: 15 + burst * 10 }, () => refusedHandshake(`${base}/ws/private/echo/`)));
    }
    await Promise.all([flood, greedy]);
    await new Promise((r) => setTimeout(r, 3000));
    await page.screenshot({ path: join(out, 'status.png'), fullPage: true });

    const reportHtml = join(tmp, 'run.html');
    const code = await cli(['report', runJson, '-f', 'html', '-o', reportHtml]);
    if (code !== 0) throw new Error(`wsguard report exited with ${code}`);
    const report = await browser.newPage({ viewport: { width: 1280, height: 1400 }, deviceScaleFactor: 1 });
    await report.goto(`file://${reportHtml}`);
    await report.waitForLoadState('networkidle');
    await report.screenshot({ path: join(out, 'flood-report.png'), fullPage: false });
    console.log(`wrote ${join(out, 'status.png')} and ${join(out, 'flood-report.png')}`);
  } finally {
    await browser.close();
    await server.close();
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
