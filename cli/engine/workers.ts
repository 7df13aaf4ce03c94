import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { CliError, type CliErrorCode } from '../cli-error.ts';
import { runFlood, type FloodOptions, type RunHooks } from './flood.ts';
import { peakConnections } from './load-models/index.ts';
import { addTotals, type LiveTotals } from './live-totals.ts';
import { mergeResults } from './merge.ts';
import type { RunResult, SeriesPoint } from './result.ts';
import { splitShare } from './shard.ts';

const ENTRY = new URL('./worker-entry.mjs', import.meta.url);
// flood-worker.js in the compiled build (dist/), where worker-entry.mjs is copied beside it.
const MODULE = new URL(`./flood-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;

type WorkerMessage =
  | { type: 'sample'; point: SeriesPoint }
  | { type: 'live'; totals: LiveTotals }
  | { type: 'result'; result: RunResult }
  | { type: 'error'; code?: CliErrorCode; message: string };

export function resolveWorkerCount(requested: number): number {
  return requested <= 0 ? availableParallelism() : requested;
}

/**
 * Runs a flood over `workers` threads, each with an equal share of connections and rates and its
 * own event loop, then merges the shares exactly like `wsguard report` merges shards.
 * One worker runs in-process: no thread, no serialization.
 */
export async function runFloodWorkers(o: FloodOptions, workers: number, hooks: RunHooks = {}): Promise<RunResult> {
  const n = Math.max(1, Math.min(workers, peakConnections(o) || 1));
  if (n === 1) return runFlood(o, hooks);
  const pending = new Map<number, SeriesPoint[]>();
  // Each worker's latest running totals: their sum is the process's, whenever any one of them moves.
  const live: LiveTotals[] = [];
  const running = Array.from(
    { length: n },
    (_, i) =>
      new Promise<RunResult>((resolve, reject) => {
        const share = splitShare(o, i, n);
        const w = new Worker(ENTRY, { workerData: { module: MODULE, options: share, live: hooks.onLive !== undefined } });
        // The worker stops its own share, as a one-thread run does, and still sends its result: the
        // run ends with every share's figures instead of a terminated thread whose result never comes.
        const onAbort = (): void => w.postMessage({ type: 'abort' });
        hooks.signal?.addEventListener('abort', onAbort, { once: true });
        w.on('message', (m: WorkerMessage) => {
          if (m.type === 'sample') {
            // Progress is shown once every worker reported that second.
            const list = pending.get(m.point.t) ?? [];
            list.push(m.point);
            pending.set(m.point.t, list);
            if (list.length === n) {
              pending.delete(m.point.t);
              hooks.onSample?.(
                list.reduce((a, p) => ({
                  ...a,
                  open: a.open + p.open,
                  opening: a.opening + p.opening,
                  opened: a.opened + p.opened,
                  sent: a.sent + p.sent,
                  received: a.received + p.received,
                  rttP99Ms: Math.max(a.rttP99Ms, p.rttP99Ms),
                })),
              );
            }
          } else if (m.type === 'live') {
            live[i] = m.totals;
            hooks.onLive?.(addTotals(live.filter(Boolean)));
          } else if (m.type === 'result') resolve(m.result);
          else reject(new CliError(m.code ?? 'invalid_run', `worker ${i + 1}: ${m.message}`));
        });
        w.on('error', (err) => reject(new CliError('invalid_run', `worker ${i + 1} crashed: ${err.message}`, { cause: err })));
        w.on('exit', (code) => {
          hooks.signal?.removeEventListener('abort', onAbort);
          // Settles nothing once a result or error has arrived; otherwise no run waits on a thread that is gone.
          reject(new CliError('invalid_run', `worker ${i + 1} exited (code ${code}) without a result`));
        });
      }),
  );
  const results = await Promise.all(running);
  const merged = mergeResults(results, { sameProcess: true });
  return { ...merged, config: { ...merged.config, workers: n } };
}
