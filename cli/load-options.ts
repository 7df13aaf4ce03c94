import type { Argv } from 'yargs';
import { CliError } from './cli-error.ts';
import { parseDurationSec } from './common-options.ts';
import type { Stage } from './engine/flood.ts';
import { DEFAULT_CAPS } from './engine/flood.ts';
import { DEFAULT_SATURATION_LIMITS } from './engine/saturation.ts';
import { loadThresholdFile, parseThreshold, type Threshold } from './engine/thresholds.ts';

/** Safety caps, output and threshold options shared by flood and storm. */
export function withRunOptions<T>(y: Argv<T>) {
  return y
    .option('threshold', { type: 'string', array: true, description: "Pass/fail rule, e.g. 'p99_rtt_ms<50' (repeatable)", group: 'Verdict:' })
    .option('thresholds-file', { type: 'string', description: 'YAML/JSON list of threshold expressions', group: 'Verdict:' })
    .option('max-event-loop-p99', { type: 'number', default: DEFAULT_SATURATION_LIMITS.maxEventLoopP99Ms, description: 'Generator event-loop delay p99 (ms) above which the run is invalid', group: 'Verdict:' })
    .option('max-send-lag', { type: 'number', default: DEFAULT_SATURATION_LIMITS.maxSendLagP99Ms, description: 'Generator send lag p99 (ms) above which the run is invalid', group: 'Verdict:' })
    .option('ignore-preflight', { type: 'boolean', default: false, description: 'Run even if pre-flight checks fail', group: 'Verdict:' })
    .option('max-connections', { type: 'number', default: DEFAULT_CAPS.maxConnections, description: 'Safety cap on open connections', group: 'Safety caps:' })
    .option('max-conn-rate', { type: 'number', default: DEFAULT_CAPS.maxConnRate, description: 'Safety cap on new connections/s', group: 'Safety caps:' })
    .option('max-msg-rate', { type: 'number', default: DEFAULT_CAPS.maxMsgRate, description: 'Safety cap on total messages/s', group: 'Safety caps:' })
    .option('max-duration', { type: 'number', default: DEFAULT_CAPS.maxDurationSec, description: 'Safety cap on --duration (s)', group: 'Safety caps:' })
    .option('kill-error-rate', { type: 'number', description: 'Stop when this share (0..1) of connection events fail over --kill-window', group: 'Safety caps:' })
    .option('kill-window', { type: 'number', default: 5, description: 'Kill-switch window (s)', group: 'Safety caps:' })
    .option('kill-min-events', { type: 'number', default: 20, description: 'Events needed in the window before the kill switch can fire', group: 'Safety caps:' })
    .option('json', { type: 'string', description: 'Write the full result JSON here', group: 'Output:' })
    .option('ndjson', { type: 'string', description: 'Write the per-second time series (NDJSON) here', group: 'Output:' })
    .option('quiet', { type: 'boolean', default: false, description: 'No summary on stdout', group: 'Output:' })
    .option('shard', { type: 'string', description: "Run share i of n ('2/4'); merge the results with wsguard report", group: 'Scale:' })
    .option('source-ip', { type: 'string', array: true, description: "Bind to these local addresses in turn ('127.0.0.2-127.0.0.20')", group: 'Scale:' });
}

export interface RunArgs {
  threshold?: string[];
  thresholdsFile?: string;
  maxEventLoopP99: number;
  maxSendLag: number;
  ignorePreflight: boolean;
  maxConnections: number;
  maxConnRate: number;
  maxMsgRate: number;
  maxDuration: number;
  killErrorRate?: number;
  killWindow: number;
  killMinEvents: number;
  json?: string;
  ndjson?: string;
  quiet: boolean;
  shard?: string;
  sourceIp?: string[];
}

export function thresholdsFromArgs(a: RunArgs): Threshold[] {
  return [...(a.threshold ?? []).map(parseThreshold), ...(a.thresholdsFile ? loadThresholdFile(a.thresholdsFile) : [])];
}

/** `10s:100,30s:100,10s:0`: ramp to 100 over 10 s, hold 30 s, ramp down over 10 s. */
export function parseStages(v: string): Stage[] {
  return v.split(',').map((part) => {
    const m = /^\s*([^:]+):(\d+)\s*$/.exec(part);
    if (!m) throw new CliError('usage', `--stages '${v}': expected duration:target[,…] e.g. 10s:100,30s:100`);
    return { durationSec: parseDurationSec(m[1]!, 'stages'), target: Number(m[2]) };
  });
}
