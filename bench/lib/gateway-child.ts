/**
 * `wsguard serve` as a child process, exactly as an operator runs it, on port 0 in front of `upstreamPort`.
 * Limits that would get in the way of a throughput run are raised; everything else is the default.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/wsguard.js', import.meta.url));

export async function startGatewayChild(
  upstreamPort: number,
  settings: string[] = [],
  /** Further command-line arguments, e.g. another `--route`. */
  extraArgs: string[] = [],
  /** Node flags, e.g. `--cpu-prof` (not allowed in NODE_OPTIONS). */
  nodeArgs: string[] = [],
  /** The wsguard binary: this checkout's unless another is given (a baseline build). */
  bin: string = BIN,
): Promise<{ child: ChildProcess; port: number; stop(): Promise<void> }> {
  const args = [
    bin,
    'serve',
    '--port',
    '0',
    '--route',
    `/=ws://127.0.0.1:${upstreamPort}/`,
    '--set',
    'routes.0.allowAnonymous=true',
    '--set',
    'limits.concurrent.max=100000',
    '--set',
    'limits.attempts.max=1000000',
    '--set',
    'messages.rate.perMinute=1e12',
    '--set',
    'messages.rate.burst=1000000000',
    '--set',
    'telemetry.admin.port=0',
    ...settings.flatMap((s) => ['--set', s]),
    ...extraArgs,
  ];
  const child = spawn(process.execPath, [...nodeArgs, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env } });
  let out = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`wsguard did not start: ${out}`)), 30_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = out.match(/wsguard listening on wss?:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.once('exit', (code) => reject(new Error(`wsguard exited with ${code}: ${out}`)));
  });
  return {
    child,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}
