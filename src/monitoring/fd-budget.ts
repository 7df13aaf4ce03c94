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
 * The count is the size `stat` reports for /proc/self/fd (Linux 6.2 and later), which opens no file
 * descriptor. Listing the directory instead (readdir, which opens and closes one) once a second made
 * uWS drop a freshly opened connection right after its 101 now and then: `bench/upgrade-race.ts` lost
 * a connection in 2 of 16 runs with the listing, in 0 of 100 with the listing switched off, and in 0
 * of 100 before the fd budget existed. Why uWS minds is not understood; the stat needs no fd at all. A listing also cost about 3 µs per open fd (19.7 ms at 6,756 fds). On an
 * older kernel the size is 0: the budget is then unknown and never sheds. The sampler re-reads at
 * most every `minIntervalMs`, and backs off so that sampling never takes more than about 2% of a core.
 */
export interface FdSample {
  /** Open file descriptors, or null where /proc is not available (non-Linux). */
  open: number | null;
  /** Soft limit on open files, or null when unknown (or unlimited). */
  limit: number | null;
}

export interface FdBudget {
  /** The last sample (refreshed in the background). */
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
  minIntervalMs?: number;
  /** Tests inject readings. */
  readOpen?: () => number | null;
  readLimit?: () => number | null;
}

/** Open fds from the size of /proc/self/fd; null where that is not reported (non-Linux, kernel < 6.2). */
export function readOpenFds(): number | null {
  try {
    const size = statSync('/proc/self/fd').size;
    // Every process holds at least stdin/stdout/stderr: 0 means the kernel does not report a count.
    return size > 0 ? size : null;
  } catch {
    // Not Linux (or /proc not mounted): the budget is unknown and never sheds.
    return null;
  }
}

function readFdLimit(): number | null {
  try {
    return parseSoftFdLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return null;
  }
}

export function startFdBudget(options: FdBudgetOptions): FdBudget {
  const readOpen = options.readOpen ?? readOpenFds;
  const readLimit = options.readLimit ?? readFdLimit;
  const minIntervalMs = options.minIntervalMs ?? 1000;
  const limit = readLimit();
  const reserve = reserveFor(limit, options.minFree);
  let current: FdSample = { open: readOpen(), limit };
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;

  const schedule = (costMs: number) => {
    if (stopped) return;
    // Keep sampling under ~2% of a core: a 60 ms listing (20k fds) is taken every 3 s.
    timer = setTimeout(tick, Math.max(minIntervalMs, costMs * 50)).unref();
  };
  const tick = () => {
    const t0 = performance.now();
    current = { open: readOpen(), limit };
    schedule(performance.now() - t0);
  };
  schedule(0);

  return {
    sample: () => current,
    reserve,
    exhausted() {
      const { open } = current;
      return open !== null && limit !== null && limit - open < reserve;
    },
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
