import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';

/**
 * The process's file-descriptor budget: how many fds are open and how many the soft RLIMIT_NOFILE
 * allows. Every client socket costs one fd and every admitted connection a second (the upstream
 * dial), and uWS keeps a socket whose request head is incomplete for up to ~12 s (measured on the
 * 20.30 build: idle or trickling a header every 2 s, it closed at 11,995 ms) without telling us it
 * exists. So sockets that wsguard cannot see can still exhaust the fd table and starve every
 * client; the budget is what the gateway sheds new handshakes on (503 `overloaded`), readiness
 * reports, and /metrics exports (process_open_fds, process_max_fds).
 *
 * The count is the size `stat` reports for /proc/<pid>/fd (Linux 6.2 and later; 0 on older kernels,
 * where the budget is unknown and never sheds), read once a second by a small watcher child process,
 * not by the gateway itself: any synchronous fs call in the gateway process while connections open
 * made uWS drop one right after its 101 now and then. `bench/upgrade-race.ts` lost a connection in 0
 * of 100 runs before the budget existed, in 2 of 16 with a /proc/self/fd listing once a second, in 9
 * of 41 with a stat per handshake, and in 5 of 25 with a stat of /tmp per handshake instead. The
 * calls only changed what reused memory that uWS's `res.cork` read after an async upgrade (fixed by
 * src/gateway/cork-anchor.ts); the watcher stays until the in-process read is measured again. One
 * watcher serves the whole process (tests run many gateways).
 */
export interface FdSample {
  /** Open file descriptors, or null where /proc is not available (non-Linux). */
  open: number | null;
  /** Soft limit on open files, or null when unknown (or unlimited). */
  limit: number | null;
}

export interface FdBudget {
  /** The latest count the watcher sent (at most about `minIntervalMs` old). */
  sample(): FdSample;
  /** Fds to keep free; new handshakes are shed below this headroom. */
  readonly reserve: number;
  /** True when the last sample leaves fewer than `reserve` free fds (false when unknown). */
  exhausted(): boolean;
  stop(): void;
}

/** Parses the soft "Max open files" limit out of /proc/<pid>/limits text; null when unlimited or absent. */
export function parseSoftFdLimit(limitsText: string): number | null {
  const line = limitsText.split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  if (!soft || !/^\d+$/.test(soft)) return null;
  return Number(soft);
}

/** The reserve for a limit: `configured`, but never more than a quarter of the limit. */
export function reserveFor(limit: number | null, configured: number): number {
  if (limit === null) return configured;
  return Math.min(configured, Math.floor(limit / 4));
}

export interface FdBudgetOptions {
  /** server.minFreeFds */
  minFree: number;
  /** How often the watcher child reads the count (default 1000 ms). */
  minIntervalMs?: number;
  /** Tests inject readings. */
  readOpen?: () => number | null;
  readLimit?: () => number | null;
}

/** Open fds of process `pid` from the size of /proc/<pid>/fd; null where that is not reported (non-Linux, kernel < 6.2). */
export function readOpenFds(pid: number = process.pid): number | null {
  try {
    const size = statSync(`/proc/${pid}/fd`).size;
    // Every process holds at least stdin/stdout/stderr: 0 means the kernel does not report a count.
    return size > 0 ? size : null;
  } catch {
    // Not Linux (or /proc not mounted): the budget is unknown and never sheds.
    return null;
  }
}

/** The watcher child: stats the parent's fd directory every `intervalMs` and sends the count. */
const WATCHER_SOURCE = `
const { statSync } = require('node:fs');
const pid = Number(process.argv[1]);
const every = Number(process.argv[2]);
const read = () => { try { const n = statSync('/proc/' + pid + '/fd').size; return n > 0 ? n : null; } catch { return null; } };
const tick = () => process.send({ open: read() }, () => {});
tick();
const timer = setInterval(tick, every);
process.on('disconnect', () => { clearInterval(timer); process.exit(0); });
`;

let watcher: { child: ChildProcess; latest: number | null; users: number } | null = null;

/** Starts (or joins) the process-wide watcher; returns a reader of its latest count and a release. */
function watchOwnFds(intervalMs: number): { read: () => number | null; release: () => void } {
  if (!watcher) {
    const child = spawn(process.execPath, ['-e', WATCHER_SOURCE, String(process.pid), String(intervalMs)], {
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    const w = { child, latest: null as number | null, users: 0 };
    child.on('message', (m: { open?: number | null }) => {
      if (typeof m?.open === 'number' || m?.open === null) w.latest = m.open ?? null;
    });
    // A watcher that cannot start or dies leaves the budget unknown (never sheds); it is not fatal.
    child.on('error', () => {});
    child.on('exit', () => {
      if (watcher === w) watcher = null;
    });
    child.unref();
    (child.channel as unknown as { unref?: () => void } | undefined)?.unref?.();
    watcher = w;
  }
  const w = watcher;
  w.users++;
  let released = false;
  return {
    read: () => w.latest,
    release: () => {
      if (released) return;
      released = true;
      if (--w.users === 0 && watcher === w) {
        watcher = null;
        w.child.disconnect();
      }
    },
  };
}

function readFdLimit(): number | null {
  try {
    return parseSoftFdLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return null;
  }
}

export function startFdBudget(options: FdBudgetOptions): FdBudget {
  const readLimit = options.readLimit ?? readFdLimit;
  const limit = readLimit();
  const reserve = reserveFor(limit, options.minFree);
  // The first count is taken here, before any connection exists; later ones come from the watcher.
  const initial = options.readOpen ? options.readOpen() : readOpenFds();
  const own = options.readOpen ? null : watchOwnFds(options.minIntervalMs ?? 1000);
  const readOpen = options.readOpen ?? (() => own!.read() ?? initial);
  const sample = (): FdSample => ({ open: readOpen(), limit });

  return {
    sample,
    reserve,
    exhausted() {
      const { open } = sample();
      return open !== null && limit !== null && limit - open < reserve;
    },
    stop() {
      own?.release();
    },
  };
}
