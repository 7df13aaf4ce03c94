import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Cluster } from 'ioredis';
import { Redis } from 'ioredis';

export const REDIS_SERVER = '/usr/bin/redis-server';

export interface TestRedis {
  port: number;
  url: string;
  /** A client for assertions and for pauseClients; closed by stop(). */
  admin: Redis;
  /** SIGKILL the server (no save: it comes back empty). */
  kill(): Promise<void>;
  /** Start it again on the same port, empty. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function launch(port: number, dir: string, extra: string[] = []): Promise<ChildProcess> {
  const child = spawn(
    REDIS_SERVER,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--enable-debug-command',
      'local',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server not ready within 10 s: ${out}`)), 10_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited ${code}: ${out}`));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

/** A private redis-server on a free loopback port with a temp dir; the test owns and stops it. */
export async function startRedis(): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'wsguard-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  for (let i = 0; !child; i++) {
    port = await freePort();
    try {
      child = await launch(port, dir);
    } catch (err) {
      // Another process took the port between the probe and redis binding it.
      if (i >= 4) throw err;
    }
  }
  const admin = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: (n) => Math.min(n * 50, 500) });
  admin.on('error', () => {});
  await admin.connect();
  let current: ChildProcess = child;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    admin,
    async kill() {
      current.kill('SIGKILL');
      await exited(current);
    },
    async restart() {
      current = await launch(port, dir);
    },
    async stop() {
      admin.disconnect();
      current.kill('SIGKILL');
      await exited(current);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Makes Redis stop answering every client for `ms`, counted from the moment this resolves: CLIENT
 * PAUSE replies once the pause is in force. (DEBUG SLEEP on a second connection gives no such event, so
 * the tests slept a guessed 20–50 ms for it to arrive; on a loaded machine the probe could get there first
 * and be answered.) `ended` resolves when Redis answers again; commands sent meanwhile, the admin's
 * included, are held and then served, as after a stall.
 */
export async function pauseClients(admin: Redis, ms: number): Promise<{ ended: Promise<void> }> {
  await admin.call('CLIENT', 'PAUSE', String(ms), 'ALL');
  return { ended: admin.ping().then(() => undefined) };
}

/** Redis's own clock in ms: the one lease scores are written in (redis-scripts.ts reads TIME). */
export async function redisNowMs(client: Redis | Cluster): Promise<number> {
  const [sec, usec] = (await client.time()) as [string | number, string | number];
  return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
}

export interface TestRedisCluster {
  ports: number[];
  urls: string[];
  stop(): Promise<void>;
}

/** Three masters on free loopback ports, joined with `redis-cli --cluster create`; the test owns them. */
export async function startRedisCluster(): Promise<TestRedisCluster> {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map(exited));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < 3; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'wsguard-redis-cluster-'));
      dirs.push(dir);
      // The bus port (port + 10000) is not probed, and another process can take either port between
      // the probe and the bind (a loaded run lost a cluster this way): try fresh ports a few times.
      let port = 0;
      let child: ChildProcess | undefined;
      for (let attempt = 0; !child; attempt++) {
        port = await freePort();
        try {
          child = await launch(port, dir, [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, 'nodes.conf'),
            '--cluster-node-timeout',
            '2000',
          ]);
        } catch (err) {
          if (attempt >= 4) throw err;
          rmSync(join(dir, 'nodes.conf'), { force: true });
        }
      }
      children.push(child);
      ports.push(port);
    }
    const created = spawnSync(
      '/usr/bin/redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    // Every node must agree before clients use it.
    const end = Date.now() + 15_000;
    for (const port of ports) {
      const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
      probe.on('error', () => {});
      await probe.connect();
      try {
        while (!(await probe.cluster('INFO')).includes('cluster_state:ok')) {
          if (Date.now() > end) throw new Error(`cluster not ok on ${port}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        probe.disconnect();
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { ports, urls: ports.map((p) => `redis://127.0.0.1:${p}`), stop };
}

/** A Redis Sentinel (redis-server --sentinel) monitoring `masterPort` as `name`, quorum 1. */
export async function startSentinel(masterPort: number, name = 'mymaster'): Promise<{ port: number; url: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'wsguard-sentinel-'));
  const port = await freePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(conf, `port ${port}\nbind 127.0.0.1\ndir ${dir}\nsentinel monitor ${name} 127.0.0.1 ${masterPort} 1\n`);
  const child = spawn(REDIS_SERVER, [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sentinel not up within 10 s: ${out}`)), 10_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('+monitor master')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`sentinel exited ${code}: ${out}`)));
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      child.kill('SIGKILL');
      await exited(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
