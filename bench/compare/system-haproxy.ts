import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, killChild, type System } from './base.ts';
import { waitForPort } from './wait-port.ts';

export const HAPROXY = '/usr/sbin/haproxy';

/** HAProxy refuses to start when maxconn needs more descriptors than the soft limit allows (two per proxied connection). */
function maxConn(): number {
  const soft = /Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1];
  return Math.floor((Number(soft ?? 20000) - 100) / 2);
}

/** HAProxy (Debian) in HTTP mode, one thread; it passes the upgrade through and tunnels after 101. */
export const haproxy: System = {
  name: 'haproxy',
  enforcesLimits: false,
  start: async (upstreamPort) => {
    const dir = mkdtempSync(join(tmpdir(), 'wsguard-bench-haproxy-'));
    const port = await freePort();
    writeFileSync(
      join(dir, 'haproxy.cfg'),
      `global
  nbthread 1
  maxconn ${maxConn()}
defaults
  mode http
  timeout connect 5s
  timeout client 1h
  timeout server 1h
  timeout tunnel 1h
frontend fe
  bind 127.0.0.1:${port}
  default_backend app
backend app
  server s1 127.0.0.1:${upstreamPort}
`,
    );
    const child = spawn(HAPROXY, ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'ignore', 'inherit'] });
    await waitForPort(port, child, 'haproxy');
    return {
      url: `ws://127.0.0.1:${port}`,
      pid: child.pid,
      stop: async () => {
        await killChild(child);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};
