import { spawn, type ChildProcess } from 'node:child_process';

const BIN = new URL('../../bin/wsguard.js', import.meta.url).pathname;

export interface Replica {
  child: ChildProcess;
  /** ws://127.0.0.1:PORT */
  ws: string;
  /** http://127.0.0.1:ADMIN_PORT */
  admin: string;
  exited: Promise<void>;
  stop(): Promise<void>;
}

/** `wsguard serve` as a separate process on port 0 (and admin port 0); resolves once its banner names both. */
export function startReplica(args: string[]): Promise<Replica> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--set', 'telemetry.admin.port=0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`no banner within 45 s\nstdout: ${out}\nstderr: ${err}`));
      // A bound for a hang: a run on a heavily loaded 2-core machine had replicas take over 30 s to start.
    }, 45_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const ws = out.match(/wsguard listening on (ws:\/\/127\.0\.0\.1:\d+)/);
      const admin = out.match(/metrics: +(http:\/\/\S+?)\/metrics/);
      if (ws && admin) {
        clearTimeout(timer);
        resolve({ child, ws: ws[1]!, admin: admin[1]!, exited, stop });
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`exited ${child.exitCode}: ${err}`));
    });
  });
}

export async function readyz(r: Replica): Promise<{ status: number; body: { ready: boolean; checks: Record<string, boolean> } }> {
  const res = await fetch(`${r.admin}/readyz`);
  return { status: res.status, body: (await res.json()) as { ready: boolean; checks: Record<string, boolean> } };
}

/** wsguard_limit_store_degraded{store="redis"} from /metrics, or null when not exported yet. */
export async function degradedGauge(r: Replica): Promise<number | null> {
  const text = await (await fetch(`${r.admin}/metrics`)).text();
  const m = text.match(/^wsguard_limit_store_degraded\{[^}]*store="redis"[^}]*\} (\d+)/m);
  return m ? Number(m[1]) : null;
}

export async function until<T>(read: () => Promise<T> | T, ok: (v: T) => boolean, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`${what} not met within ${timeoutMs} ms (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
