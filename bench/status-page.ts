/**
 * The status page's cost to the relay (issue 14): the same relay load through `wsguard serve` with
 * the page off (telemetry.monitoring.statusPage: off: no bundle, no sampler) and with it on and a
 * viewer polling once a second, in alternating rounds so that machine noise hits both alike. Prints
 * each round, the median paired ratio page/off, and a JSON summary. Target: within 1 %.
 *
 *   npx tsx bench/status-page.ts [--rounds 6] [--seconds 5] [--connections 50] [--window 100]
 *
 * The viewer is an HTTP client in this process doing what the page does: load /status and its two
 * assets once, then GET the series endpoint with the admin JWT every second, asking only for the
 * samples after the last one it has (so the browser's own rendering, which runs on the viewer's
 * machine, is not charged to the sidecar). Processes: the uWS echo upstream and wsguard each in
 * their own process, the load generator and the viewer in this one; the machine has 2 cores.
 *
 * Throughput on a shared 2-core machine swings by tens of percent between rounds, far more than the
 * effect sought, so the bench also measures the page's cost directly: the sidecar's own CPU time
 * (utime + stime from /proc) over `--idle-seconds` after each round's load, page on vs off. That
 * difference, in CPU ms per second, is the share of one core the page takes whatever the load.
 * A round whose load fails (a relay connection closed early) is retried once and counted.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { startEchoChild } from './lib/echo-server.ts';
import { runLoad, type LoadSettings } from './lib/load.ts';

const BIN = fileURLToPath(new URL('../bin/wsguard.js', import.meta.url));
const SECRET = 'bench-status-page-secret-at-least-32-bytes';
const SERIES = '/api/monitoring/websocket/series/';

interface Child {
  pid: number;
  port: number;
  admin: string;
  stop(): Promise<void>;
}

/** `wsguard serve` as an operator runs it; limits that would get in the way of a throughput run raised. */
async function startServe(upstreamPort: number, statusPage: 'off' | 'token'): Promise<Child> {
  const sets = [
    'routes.0.allowAnonymous=true',
    'limits.concurrent.max=100000',
    'limits.attempts.max=1000000',
    'messages.rate.perMinute=1e12',
    'messages.rate.burst=1000000000',
    'telemetry.admin.port=0',
    `auth.secret=${SECRET}`,
    `telemetry.monitoring.statusPage=${statusPage}`,
  ];
  const args = [BIN, 'serve', '--port', '0', '--route', `/=ws://127.0.0.1:${upstreamPort}/`, ...sets.flatMap((s) => ['--set', s])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  const found = await new Promise<{ port: number; admin: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`wsguard did not start: ${out}`)), 20_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const port = /wsguard listening on ws:\/\/127\.0\.0\.1:(\d+)/.exec(out);
      const admin = /"admin":"(http:\/\/[^"]+)"/.exec(out);
      if (port && admin) {
        clearTimeout(timer);
        resolve({ port: Number(port[1]), admin: admin[1]! });
      }
    });
    child.once('exit', (code) => reject(new Error(`wsguard exited with ${code}: ${out}`)));
  });
  return {
    ...found,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

/** What an open status page asks of wsguard: the page once, then the series every second. */
function startViewer(admin: string, token: string): { stop(): Promise<{ polls: number; bytes: number }> } {
  let since = 0;
  let polls = 0;
  let bytes = 0;
  let stopped = false;
  const headers = { authorization: `Bearer ${token}` };
  const loop = (async () => {
    for (const path of ['/status', '/status/app.js', '/status/app.css'])
      bytes += (await (await fetch(`${admin}${path}`)).arrayBuffer()).byteLength;
    while (!stopped) {
      const started = Date.now();
      const res = await fetch(`${admin}${SERIES}?since=${since}`, { headers });
      if (res.status !== 200) throw new Error(`series answered ${res.status}`);
      const text = await res.text();
      bytes += text.length;
      const body = JSON.parse(text) as { samples: Array<{ t: number }> };
      if (body.samples.length > 0) since = body.samples[body.samples.length - 1]!.t;
      polls++;
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { polls, bytes };
    },
  };
}

/** CPU time (ms) a process has used, from /proc/<pid>/stat (Linux; utime + stime in clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function main(): Promise<void> {
  const opt = (name: string, dflt: number) => {
    const i = process.argv.indexOf(`--${name}`);
    return i === -1 ? dflt : Number(process.argv[i + 1]);
  };
  const rounds = opt('rounds', 6);
  const idleSeconds = opt('idle-seconds', 10);
  const s: LoadSettings = {
    connections: opt('connections', 50),
    bytes: 64,
    window: opt('window', 100),
    seconds: opt('seconds', 5),
    warmupSeconds: 1,
    // A short, light latency phase: this benchmark is about throughput.
    ratePerSecond: 2000,
    latencySeconds: 1,
  };
  const token = await new SignJWT({ role: 'admin' })
    .setProtectedHeader({ alg: 'HS256' })
    .setAudience('wsguard-monitoring')
    .setIssuedAt()
    .setExpirationTime('2h')
    .sign(new TextEncoder().encode(SECRET));
  const echo = await startEchoChild();
  const ratios: number[] = [];
  const rates: Record<'off' | 'page', number[]> = { off: [], page: [] };
  const idleCpu: Record<'off' | 'page', number[]> = { off: [], page: [] };
  let viewerPolls = 0;
  let retried = 0;
  try {
    for (let round = 1; round <= rounds; round++) {
      // Alternate which goes first, so that neither always runs on a warmer machine.
      const order: Array<'off' | 'page'> = round % 2 ? ['off', 'page'] : ['page', 'off'];
      const got: Partial<Record<'off' | 'page', number>> = {};
      for (const variant of order) {
        const gw = await startServe(echo.port, variant === 'off' ? 'off' : 'token');
        const viewer = variant === 'page' ? startViewer(gw.admin, token) : undefined;
        try {
          const url = `ws://127.0.0.1:${gw.port}/bench`;
          const r = await runLoad(url, s).catch(async (err: Error) => {
            retried++;
            console.log(`round ${round} ${variant}: ${err.message.slice(0, 120)}; retrying once`);
            return runLoad(url, s);
          });
          got[variant] = r.messagesPerSecond;
          rates[variant].push(r.messagesPerSecond);
          // The page's own cost: the sidecar's CPU while nothing but the sampler (and the viewer) runs.
          const before = cpuMs(gw.pid);
          await new Promise((res) => setTimeout(res, idleSeconds * 1000));
          idleCpu[variant].push((cpuMs(gw.pid) - before) / idleSeconds);
        } finally {
          const v = await viewer?.stop();
          if (v) viewerPolls += v.polls;
          await gw.stop();
        }
      }
      const ratio = got.page! / got.off!;
      ratios.push(ratio);
      console.log(
        `round ${round}  off ${got.off!.toLocaleString('en-US').padStart(9)} msg/s   page ${got.page!.toLocaleString('en-US').padStart(9)} msg/s   ratio ${ratio.toFixed(3)}`,
      );
    }
  } finally {
    echo.child.disconnect();
  }
  const m = median(ratios);
  const idleOff = median(idleCpu.off);
  const idlePage = median(idleCpu.page);
  console.log(
    `\nmedian paired ratio page/off ${m.toFixed(3)} (${((m - 1) * 100).toFixed(1)} %); median off ${median(rates.off).toFixed(0)} msg/s, ` +
      `page ${median(rates.page).toFixed(0)} msg/s; ${viewerPolls} series polls; ${retried} load runs retried`,
  );
  console.log(
    `sidecar CPU after load, no traffic: off ${idleOff.toFixed(1)} ms/s, page ${idlePage.toFixed(1)} ms/s (median over rounds): ` +
      `the page costs ${(idlePage - idleOff).toFixed(1)} ms of CPU a second, ${((idlePage - idleOff) / 10).toFixed(2)} % of one core`,
  );
  console.log(
    JSON.stringify({
      bench: 'status-page',
      node: process.version,
      rounds,
      secondsPerRound: s.seconds,
      connections: s.connections,
      window: s.window,
      ratio_page_over_off: Number(m.toFixed(3)),
      ratios: ratios.map((r) => Number(r.toFixed(3))),
      idle_cpu_ms_per_s: { off: idleCpu.off, page: idleCpu.page },
      page_cpu_share_of_one_core: Number(((idlePage - idleOff) / 1000).toFixed(4)),
      retried,
    }),
  );
}

await main();
