import type { LatencySummary } from './histogram.ts';

/** Storm-specific part of a result. */
export interface StormSection {
  /** Connections open at the moment of the drop (at most --connections). */
  held: number;
  dropped: number;
  dropMode: 'reset' | 'close' | 'server';
  dropAtSec: number;
  policy: string;
  /** Time from drop to the client's next successful open. */
  recover: LatencySummary;
  /** Milliseconds after the drop until this share of dropped clients were open again. */
  timeToPercentMs: Record<string, number | null>;
  recovered: number;
  gaveUp: number;
  attemptsPerClient: { mean: number; max: number; histogram: Record<string, number> };
  /** Rejections (handshake statuses, close codes) seen while clients were reconnecting. */
  rejectionsDuringRecovery: Record<string, number>;
  /** Delays actually waited before each reconnect attempt (ms), for checking the policy. */
  delaysMs: LatencySummary;
  retryAfterHonoured: number;
}
