import { isFailure } from './outcomes.ts';
import type { SeriesPoint } from './result.ts';

/** Stop a run whose target is failing, so a flood does not keep hammering a broken service. */
export interface KillSwitch {
  /** Failure share (0..1) over the window that stops the run. */
  errorRate: number;
  windowSec: number;
  /** Events needed in the window before the rate counts, so three early failures do not abort. */
  minAttempts: number;
}

/**
 * Judges the last `windowSec` seconds of the series. Events are connection outcomes plus opens,
 * so a second in which 100 connections opened and 2 were refused reads as 2 %, not 100 %.
 * Returns the reason to stop, or undefined.
 */
export function killSwitchReason(series: SeriesPoint[], k: KillSwitch): string | undefined {
  const window = series.slice(-k.windowSec);
  let events = 0;
  let failures = 0;
  for (const p of window) {
    for (const [key, n] of Object.entries(p.outcomes)) {
      events += n;
      if (isFailure(key)) failures += n;
    }
    events += p.opened;
  }
  if (events < k.minAttempts || failures / events <= k.errorRate) return undefined;
  return `kill switch: ${failures} failures in ${events} connection events over ${window.length}s (${((failures / events) * 100).toFixed(1)}% > ${(k.errorRate * 100).toFixed(1)}%)`;
}
