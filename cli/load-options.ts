import type { Argv } from 'yargs';
import { CliError } from './cli-error.ts';
import { authFromArgs, parseDurationSec, parseShard, type AuthArgs } from './common-options.ts';
import { liveMetricsFromArgs, startLiveMetrics, withLiveMetricsOptions, type LiveMetricsArgs } from './live-metrics.ts';
import { runIdFromArgs } from './run-identity.ts';
import type { RunHooks } from './engine/flood.ts';
import type { Stage } from './engine/load-models/index.ts';
import { DEFAULT_CAPS, type TargetOptions } from './engine/target.ts';
import type { RequestedLoad, RunResult, SeriesPoint } from './engine/result.ts';
import { decideVerdict, evaluateThresholds } from './engine/thresholds.ts';
import { writeJsonResult, writeNdjson } from './report/output.ts';
import { progressLine, renderTerminal } from './report/terminal.ts';
import { DEFAULT_SATURATION_LIMITS } from './engine/saturation.ts';
import { loadThresholdFile, parseThreshold, type Threshold } from './engine/thresholds.ts';

/** Safety caps, output and threshold options shared by flood and storm. */
export function withRunOptions<T>(y: Argv<T>) {
  return withLiveMetricsOptions(y)
    .option('threshold', {
      type: 'string',
      array: true,
      description: "Pass/fail rule, e.g. 'p99_rtt_ms<50' (repeatable)",
      group: 'Verdict:',
    })
    .option('thresholds-file', { type: 'string', description: 'YAML/JSON list of threshold expressions', group: 'Verdict:' })
    .option('max-event-loop-p99', {
      type: 'number',
      default: DEFAULT_SATURATION_LIMITS.maxEventLoopP99Ms,
      description: 'Generator event-loop delay p99 (ms) above which the run is invalid',
      group: 'Verdict:',
    })
    .option('max-send-lag', {
      type: 'number',
      default: DEFAULT_SATURATION_LIMITS.maxSendLagP99Ms,
      description: 'Generator send lag p99 (ms) above which the run is invalid',
      group: 'Verdict:',
    })
    .option('ignore-preflight', { type: 'boolean', default: false, description: 'Run even if pre-flight checks fail', group: 'Verdict:' })
    .option('max-connections', {
      type: 'number',
      default: DEFAULT_CAPS.maxConnections,
      description: 'Safety cap on open connections',
      group: 'Safety caps:',
    })
    .option('max-conn-rate', {
      type: 'number',
      default: DEFAULT_CAPS.maxConnRate,
      description: 'Safety cap on new connections/s',
      group: 'Safety caps:',
    })
    .option('max-msg-rate', {
      type: 'number',
      default: DEFAULT_CAPS.maxMsgRate,
      description: 'Safety cap on total messages/s',
      group: 'Safety caps:',
    })
    .option('max-duration', {
      type: 'number',
      default: DEFAULT_CAPS.maxDurationSec,
      description: 'Safety cap on --duration (s)',
      group: 'Safety caps:',
    })
    .option('kill-error-rate', {
      type: 'number',
      description: 'Stop when this share (0..1) of connection events fail over --kill-window',
      group: 'Safety caps:',
    })
    .option('kill-window', { type: 'number', default: 5, description: 'Kill-switch window (s)', group: 'Safety caps:' })
    .option('kill-min-events', {
      type: 'number',
      default: 20,
      description: 'Events needed in the window before the kill switch can fire',
      group: 'Safety caps:',
    })
    .option('json', { type: 'string', description: 'Write the full result JSON here', group: 'Output:' })
    .option('ndjson', { type: 'string', description: 'Write the per-second time series (NDJSON) here', group: 'Output:' })
    .option('quiet', { type: 'boolean', default: false, description: 'No summary on stdout', group: 'Output:' })
    .option('progress-interval', {
      type: 'string',
      default: '10s',
      description: 'When stderr is not a terminal (CI logs), print a progress line this often (0: never)',
      group: 'Output:',
    })
    .option('run-id', {
      type: 'string',
      description:
        'Run id written into the result; give every shard the same one (default: derived from the flags for --shard, else random)',
      group: 'Scale:',
    })
    .option('shard', { type: 'string', description: "Run share i of n ('2/4'); merge the results with wsguard report", group: 'Scale:' })
    .option('source-ip', {
      type: 'string',
      array: true,
      description: "Bind to these local addresses in turn ('127.0.0.2-127.0.0.20')",
      group: 'Scale:',
    });
}

export interface RunArgs extends LiveMetricsArgs {
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
  progressInterval: string;
  runId?: string;
  shard?: string;
  sourceIp?: string[];
}

/** The target and guard options every run takes from the same flags (flood and storm alike). */
export function targetOptionsFromArgs(
  a: RunArgs & AuthArgs,
): Pick<TargetOptions, 'auth' | 'origin' | 'insecure' | 'caps' | 'saturation' | 'ignorePreflight'> {
  return {
    auth: authFromArgs(a),
    origin: a.origin,
    insecure: a.insecure,
    caps: { maxConnections: a.maxConnections, maxConnRate: a.maxConnRate, maxMsgRate: a.maxMsgRate, maxDurationSec: a.maxDuration },
    saturation: { maxEventLoopP99Ms: a.maxEventLoopP99, maxSendLagP99Ms: a.maxSendLag, minSentRatio: 0.97, maxFdShare: 0.9 },
    ignorePreflight: a.ignorePreflight,
  };
}

/**
 * Runs one load (flood or storm) the way every command does: live progress only on a terminal (piped
 * output stays clean for CI logs and jq), Ctrl-C ends the run early but still reports, then the
 * thresholds, the verdict, the requested files and the summary. Returns the exit code.
 */
export async function runAndReport(a: RunArgs, requested: RequestedLoad, run: (hooks: RunHooks) => Promise<RunResult>): Promise<number> {
  const thresholds = thresholdsFromArgs(a);
  const shard = parseShard(a.shard);
  const live = process.stderr.isTTY === true;
  const onSample = progressPrinter(live, parseDurationSec(a.progressInterval, 'progress-interval'), (s) => process.stderr.write(s));
  // Known before the run, so the live metrics carry the id the result will.
  const runId = runIdFromArgs(a as unknown as Record<string, unknown>, shard !== undefined);
  const metrics = await startLiveMetrics(liveMetricsFromArgs(a, { runId, shard }));
  if (metrics?.url) process.stderr.write(`wsguard: live metrics at ${metrics.url} (run_id ${runId})\n`);
  const ac = new AbortController();
  const onSigint = (): void => ac.abort();
  process.once('SIGINT', onSigint);
  let result: RunResult;
  try {
    result = await run({ signal: ac.signal, onSample, onLive: metrics?.onLive });
  } finally {
    process.off('SIGINT', onSigint);
    if (live) process.stderr.write('\r\x1b[K');
    await metrics?.close();
  }
  result.runId = runId;
  result.shard = shard;
  result.requested = requested;
  result.thresholds = evaluateThresholds(result, thresholds);
  result.verdict = decideVerdict(result, result.thresholds);
  if (a.json) writeJsonResult(a.json, result);
  if (a.ndjson) writeNdjson(a.ndjson, result);
  if (!a.quiet) process.stdout.write(renderTerminal(result));
  else if (result.verdict.exitCode !== 0) for (const r of result.verdict.reasons) process.stderr.write(`${r}\n`);
  return result.verdict.exitCode;
}

/**
 * What a run prints while it goes: on a terminal, the progress line redrawn each second; off one
 * (CI logs), one line every `everySec` of run time (0: none), so a long run shows it is alive
 * without flooding the log. Counted on the samples' own run-second clock, so it needs no timer.
 */
export function progressPrinter(tty: boolean, everySec: number, write: (s: string) => void): ((p: SeriesPoint) => void) | undefined {
  if (tty) return (p) => write(`\r\x1b[K${progressLine(p)}`);
  if (!(everySec > 0)) return undefined;
  let lastLogged = 0;
  return (p) => {
    if (p.t - lastLogged < everySec) return;
    lastLogged = p.t;
    write(`${progressLine(p)}\n`);
  };
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
