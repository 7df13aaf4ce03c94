/**
 * Shared base of the comparison benchmark (bench/compare.ts): what a system under test and a scenario
 * are, the generator pool they drive, and small process helpers. One module per system
 * (system-*.ts) and per scenario (scenario-*.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export interface Running {
  /** ws:// base URL (no trailing slash); scenarios append a path. */
  url: string;
  /** The proxy's own process (for RSS); absent for direct. */
  pid?: number;
  stop(): Promise<void>;
}

export interface System {
  name: string;
  /** Whether the system enforces per-IP attempt limits and message rate limits (rejection, noisy rows). */
  enforcesLimits: boolean;
  /** A wsguard build: scenarios may run it with settings of their own (Scenario.wsguardSettings). */
  withSettings?(extra: string[]): System;
  start(upstreamPort: number, ctx: Context): Promise<Running>;
}

export interface Figure {
  /** What the cell shows, e.g. "412k/s" or "0.41/1.2/3.1 ms". */
  text: string;
  /** The number ratios are taken of (higher is better unless lowerIsBetter), or null when none applies. */
  value: number | null;
  generatorBound?: boolean;
  note?: string;
}

export interface Scenario {
  /** One or more rows, each with a label; run returns one figure per row. */
  rows: string[];
  lowerIsBetter?: boolean;
  /** Systems this scenario cannot apply to (a cell "n/a", not a missing figure). */
  appliesTo?(system: System): boolean;
  /** Settings a wsguard system (wsguard, baseline) runs this scenario with, for its limits. */
  wsguardSettings?(ctx: Context): string[];
  run(system: System, running: Running, ctx: Context): Promise<Figure[]>;
}

export interface Tokens {
  hs256: string;
  es256: string;
  esPublicKeyPem: string;
  secret: string;
}

export interface Context {
  quick: boolean;
  gens: GeneratorPool;
  tokens: Tokens;
  origin: string;
  log(message: string): void;
}

export const ORIGIN = 'https://app.example';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resident set of a process in bytes (/proc/<pid>/status VmRSS). */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  // A zombie (an exited child not yet reaped) has no VmRSS line: it holds no memory.
  return m ? Number(m[1]) * 1024 : 0;
}

/** Sum of RSS over a process and its children (nginx's master + worker). */
export function treeRssBytes(pid: number): number {
  let total = rssBytes(pid);
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    for (const c of children ? children.split(/\s+/) : []) total += treeRssBytes(Number(c));
  } catch {
    // the process has gone
  }
  return total;
}

/** CPU time (user + system, ms) of a process and its children, from /proc/<pid>/stat (clock ticks of 10 ms). */
export function treeCpuMs(pid: number): number {
  let total = 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the ") " split.
    total = (Number(fields[11]) + Number(fields[12])) * 10;
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    for (const c of children ? children.split(/\s+/) : []) total += treeCpuMs(Number(c));
  } catch {
    // the process has gone
  }
  return total;
}

export function killChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/**
 * The median round's value; with an even number of rounds, the worse of the two middle ones, not their
 * mean: a cell shows one round as it was measured, its text and its ratios alike.
 */
export function medianRound(values: number[], lowerIsBetter: boolean): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = (s.length - 1) / 2;
  return s[lowerIsBetter ? Math.ceil(mid) : Math.floor(mid)]!;
}

export const fmtRate = (n: number) =>
  n >= 1e5 ? `${Math.round(n / 1000)}k/s` : n >= 1e4 ? `${(n / 1000).toFixed(1)}k/s` : `${Math.round(n)}/s`;

// ---- generator pool -------------------------------------------------------------------------

export interface GenTaskResult {
  cpuMs: number;
  wallMs: number;
  [key: string]: unknown;
}

const GENERATOR = fileURLToPath(new URL('./generator.ts', import.meta.url));

/**
 * Generator processes, each dialling from its own 127.0.<i+1>.x source range, so that the per-IP
 * limits see many clients and no one process's event loop is the ceiling.
 */
export class GeneratorPool {
  readonly #children: ChildProcess[] = [];
  #seq = 0;

  /**
   * `file`: another generator speaking the same protocol (an older generator.ts, for before/after);
   * `nodeArgs`: extra Node flags for each process (--cpu-prof, say: stop with `graceful`).
   */
  static async start(n: number, o: { file?: string; nodeArgs?: string[] } = {}): Promise<GeneratorPool> {
    const pool = new GeneratorPool();
    for (let i = 0; i < n; i++) {
      const child = fork(o.file ?? GENERATOR, [String(i + 1)], {
        execArgv: ['--import', 'tsx', ...(o.nodeArgs ?? [])],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      await new Promise<void>((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('exit', (code) => reject(new Error(`generator ${i} exited with ${code}`)));
      });
      pool.#children.push(child);
    }
    return pool;
  }

  get size(): number {
    return this.#children.length;
  }

  /** Runs one task per generator (task(i) builds generator i's share; null: none for it) and waits for all. */
  async run(task: (i: number) => Record<string, unknown> | null): Promise<GenTaskResult[]> {
    const results = await Promise.all(
      this.#children.map((child, i) => {
        const t = task(i);
        return t ? this.#send(child, t) : null;
      }),
    );
    return results.filter((r): r is GenTaskResult => r !== null);
  }

  #send(child: ChildProcess, task: Record<string, unknown>): Promise<GenTaskResult> {
    const id = ++this.#seq;
    return new Promise((resolve, reject) => {
      const onMessage = (m: { id: number; ok: boolean; result?: GenTaskResult; error?: string }) => {
        if (m.id !== id) return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (m.ok) resolve(m.result!);
        else reject(new Error(m.error));
      };
      const onExit = (code: number | null) => reject(new Error(`generator exited with ${code} during ${String(task.kind)}`));
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send({ id, ...task });
    });
  }

  /** `graceful`: disconnect, so that each exits by itself (and --cpu-prof writes its profile); killed after 5 s. */
  async stop(graceful = false): Promise<void> {
    await Promise.all(
      this.#children.map((child) =>
        graceful && child.connected
          ? Promise.race([new Promise<void>((ok) => child.once('exit', () => ok()).disconnect()), sleep(5000)]).then(() => killChild(child))
          : killChild(child),
      ),
    );
  }
}

/** A generator is the bottleneck when it spent ≥ 90% of the wall time on CPU (one core each). */
export const generatorBound = (results: GenTaskResult[]) => results.some((r) => r.cpuMs / r.wallMs >= 0.9);
