import type { LatencySummary } from './histogram.ts';
import type { PreflightCheck } from './preflight.ts';
import type { SaturationReport } from './saturation.ts';

/** One second of a run; the NDJSON time series is one of these per line. */
export interface SeriesPoint {
  /** Seconds since the run started (end of the interval). */
  t: number;
  /** Connections open at the sample. */
  open: number;
  /** Handshakes still in progress. */
  opening: number;
  attempts: number;
  opened: number;
  /** Outcomes that happened in this second. */
  outcomes: Record<string, number>;
  sent: number;
  received: number;
  bytesOut: number;
  bytesIn: number;
  rttP50Ms: number;
  rttP99Ms: number;
  /** Round trips measured in this second; 0 means the p50/p99 above are placeholders (no data). */
  rttCount?: number;
  cpuCores: number;
}

export interface ThresholdResult {
  expr: string;
  metric: string;
  op: string;
  target: number;
  actual: number | null;
  ok: boolean;
}

export interface Verdict {
  exitCode: number;
  /** `failed`: the run loaded nothing (no connection opened, or a storm held nothing at the drop). */
  status: 'passed' | 'threshold_failed' | 'failed' | 'invalid_run';
  reasons: string[];
}

export interface RequestedLoad {
  connections?: number;
  arrivalRate?: number;
  stages?: string;
  /** Messages per second per connection. */
  rate?: number;
  sizeBytes?: number;
  durationSec: number;
  workers?: number;
  /** storm: when and how much was dropped, and the reconnect policy. */
  drop?: string;
}

export interface RunResult {
  kind: 'flood' | 'storm' | 'scenario';
  version: 1;
  target: string;
  startedAt: string;
  durationMs: number;
  /** Options the run was made with (tokens redacted). */
  config: Record<string, unknown>;
  /** How many result files/workers were merged into this one. */
  shards: number;
  /**
   * Identifies one run: `wsguard report` merges only results with the same id. The shards of a
   * `--shard i/n` run share it (`--run-id`, or derived from the command line without --shard).
   */
  runId?: string;
  /** `--shard i/n` this result is (1-based); absent for a whole run. */
  shard?: { index: number; count: number };
  /** The load the user asked for, for reports (the config holds this share's part of it). */
  requested?: RequestedLoad;
  connections: { attempts: number; opened: number; peakOpen: number };
  outcomes: Record<string, number>;
  outcomeDetails: Record<string, Record<string, number>>;
  messages: {
    sent: number;
    received: number;
    /** Echoes still missing at the end of the drain period. */
    lost: number;
    /** Received messages without a matching marker. */
    unmatched: number;
    bytesOut: number;
    bytesIn: number;
    ratePerSecOut: number;
    ratePerSecIn: number;
  };
  latency: {
    /** Round trip from the intended send time (corrected for coordinated omission). */
    rtt: LatencySummary;
    /** Round trip from the actual send time, for comparison only. */
    rttUncorrected: LatencySummary;
    connect: LatencySummary;
  };
  saturation: SaturationReport;
  preflight: PreflightCheck[];
  /** Set when the kill switch or the hard limit stopped the run early. */
  aborted?: { reason: string; atSec: number };
  series: SeriesPoint[];
  /** storm only. */
  storm?: import('./storm-types.ts').StormSection;
  /** scenario (`wsguard run`) only. */
  scenario?: import('../scenario/result.ts').ScenarioSection;
  thresholds?: ThresholdResult[];
  verdict?: Verdict;
}
