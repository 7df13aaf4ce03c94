import { parentPort, workerData } from 'node:worker_threads';
import { isCliError } from '../cli-error.ts';
import { runFlood, type FloodOptions } from './flood.ts';

/**
 * One worker thread's share of a flood. Progress samples and the final result go back to the
 * parent as messages; a typed failure travels as its code so the parent can exit with it.
 */
const { options, live } = workerData as { module: string; options: FloodOptions; live: boolean };
const port = parentPort!;
const stop = new AbortController();
port.on('message', (m: { type?: string }) => {
  if (m.type === 'abort') stop.abort();
});

try {
  const result = await runFlood(options, {
    signal: stop.signal,
    onSample: (p) => port.postMessage({ type: 'sample', point: p }),
    onLive: live ? (totals) => port.postMessage({ type: 'live', totals }) : undefined,
  });
  port.postMessage({ type: 'result', result });
} catch (err) {
  port.postMessage({ type: 'error', code: isCliError(err) ? err.code : undefined, message: (err as Error).message });
} finally {
  // The message listener would keep this thread alive after its result.
  port.close();
}
