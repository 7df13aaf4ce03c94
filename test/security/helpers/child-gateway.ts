/**
 * `wsguard serve` in a child process, started from a JSON config file as an operator would, so that a
 * fuzzer or a soak run can watch it crash, count its fds and read its RSS from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../../bin/wsguard.js', import.meta.url));

export interface ChildGateway {
  child: ChildProcess;
  pid: number;
  port: number;
  /** http://127.0.0.1:PORT/metrics from the banner. */
  metricsUrl: string;
  /** Everything the child wrote to stderr (logs, crash traces). */
  stderr(): string;
  /** Resolves with the exit code (or signal name) once the child has exited. */
  exited: Promise<number | string | null>;
  stop(): Promise<void>;
}

/** `timeoutMs` bounds a hang: node + tsx can take many seconds to start on a loaded 2-core machine. */
export async function startChildGateway(config: Record<string, unknown>, timeoutMs = 40_000): Promise<ChildGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'wsguard-sec-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [BIN, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => {
    err += c.toString();
    if (err.length > 1_000_000) err = err.slice(-500_000);
  });
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => {
      rmSync(dir, { recursive: true, force: true });
      resolve(code ?? signal);
    }),
  );
  const banner = await new Promise<{ port: number; metricsUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`wsguard did not start within ${timeoutMs} ms\n${out}\n${err}`)), timeoutMs);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const port = out.match(/wsguard listening on ws:\/\/127\.0\.0\.1:(\d+)/);
      const metrics = out.match(/metrics:\s+(http:\/\/\S+\/metrics)/);
      if (port && metrics) {
        clearTimeout(timer);
        resolve({ port: Number(port[1]), metricsUrl: metrics[1]! });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`wsguard exited with ${code}\n${out}\n${err}`));
    });
  });
  return {
    child,
    pid: child.pid!,
    ...banner,
    stderr: () => err,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Open file descriptors of `pid` (Linux /proc). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident set size of `pid` in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Polls `read` every 100 ms until `ok` holds or `timeoutMs` passes; returns the last value. */
export async function settle<T>(read: () => T, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const until = Date.now() + timeoutMs;
  let v = read();
  while (!ok(v) && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    v = read();
  }
  return v;
}
