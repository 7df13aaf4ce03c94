import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, killChild, type System } from './base.ts';
import { waitForPort } from './wait-port.ts';

export const NGINX = '/usr/sbin/nginx';

/** nginx (Debian nginx-light) as a WebSocket reverse proxy, one worker: a per-core comparison. */
export const nginx: System = {
  name: 'nginx',
  enforcesLimits: false,
  start: async (upstreamPort) => {
    const dir = mkdtempSync(join(tmpdir(), 'wsguard-bench-nginx-'));
    const port = await freePort();
    const conf = `worker_processes 1;
worker_rlimit_nofile 200000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 100000; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream app { server 127.0.0.1:${upstreamPort}; }
  server {
    listen 127.0.0.1:${port} backlog=65535;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
      proxy_buffering off;
    }
  }
}
`;
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const child = spawn(NGINX, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    await waitForPort(port, child, 'nginx');
    return {
      url: `ws://127.0.0.1:${port}`,
      pid: child.pid,
      stop: async () => {
        // SIGKILL on the master leaves the worker: SIGTERM is nginx's fast shutdown of both.
        await new Promise<void>((resolve) => {
          if (child.exitCode !== null) return resolve();
          const t = setTimeout(() => void killChild(child).then(resolve), 5000);
          child.once('exit', () => {
            clearTimeout(t);
            resolve();
          });
          child.kill('SIGTERM');
        });
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};
