import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { CliError } from '../cli-error.ts';
import { EXIT_INVALID_RUN, EXIT_PASSED, EXIT_THRESHOLD_FAILED } from '../exit-codes.ts';
import { asksForRejections, flattenMetrics, isKnownMetric } from './metrics.ts';
import type { RunResult, ThresholdResult, Verdict } from './result.ts';

/** `p99_rtt_ms<50`, `rejected.429>=5`, `error_rate <= 0.01`. */
export interface Threshold {
  expr: string;
  metric: string;
  op: '<' | '<=' | '>' | '>=' | '==' | '!=';
  target: number;
}

const EXPR = /^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)\s*$/i;

export function parseThreshold(expr: string): Threshold {
  const m = EXPR.exec(expr);
  if (!m) throw new CliError('usage', `--threshold '${expr}': expected <metric><op><number>, e.g. 'p99_rtt_ms<50'`);
  const metric = m[1]!;
  if (!isKnownMetric(metric)) {
    throw new CliError('unknown_metric', `--threshold '${expr}': unknown metric ${metric} (see docs/cli.md "Metrics")`);
  }
  return { expr: expr.trim(), metric, op: m[2] as Threshold['op'], target: Number(m[3]) };
}

/** A thresholds file is YAML or JSON: a list of expressions, or `{ thresholds: [...] }`. */
export function loadThresholdFile(path: string): Threshold[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError('config', `--thresholds-file ${path}: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new CliError('config', `--thresholds-file ${path}: ${(err as Error).message}`, { cause: err });
  }
  const list = Array.isArray(doc) ? doc : (doc as { thresholds?: unknown } | null)?.thresholds;
  if (!Array.isArray(list) || !list.every((x) => typeof x === 'string')) {
    throw new CliError('config', `--thresholds-file ${path}: expected a list of strings or { thresholds: [..] }`);
  }
  return list.map(parseThreshold);
}

function compare(actual: number, op: Threshold['op'], target: number): boolean {
  switch (op) {
    case '<':
      return actual < target;
    case '<=':
      return actual <= target;
    case '>':
      return actual > target;
    case '>=':
      return actual >= target;
    case '==':
      return actual === target;
    case '!=':
      return actual !== target;
  }
}

export function evaluateThresholds(r: RunResult, thresholds: Threshold[]): ThresholdResult[] {
  const metrics = flattenMetrics(r);
  return thresholds.map((t) => {
    // Outcome families read 0 when absent; any other absent name had no samples (no data).
    const actual = metrics[t.metric] ?? (t.metric.includes('.') ? 0 : null);
    return { expr: t.expr, metric: t.metric, op: t.op, target: t.target, actual, ok: actual !== null && compare(actual, t.op, t.target) };
  });
}

/**
 * Decides the exit code. An invalid run (generator saturated, hard limit) wins over thresholds,
 * because its numbers say more about the generator than about the target; a kill-switch stop is
 * the target failing and exits 1.
 */
export function decideVerdict(r: RunResult, results: ThresholdResult[]): Verdict {
  const sat = r.saturation;
  if (sat.verdict === 'saturated') {
    return {
      exitCode: EXIT_INVALID_RUN,
      status: 'invalid_run',
      reasons: [...(sat.cause ? [`invalid run: ${sat.cause}`] : []), ...sat.reasons.map((x) => `invalid run: ${x}`)],
    };
  }
  // A busy machine is not the generator's fault: the run stands, with the note on every verdict.
  const notes =
    sat.verdict === 'machine_busy'
      ? [`note: ${sat.cause ?? 'the machine is busy'}; timings include waits for a CPU (${sat.reasons.join('; ')})`]
      : [];
  if (r.aborted && !r.aborted.reason.startsWith('kill switch')) {
    return { exitCode: EXIT_INVALID_RUN, status: 'invalid_run', reasons: [`invalid run: ${r.aborted.reason} at ${r.aborted.atSec}s`] };
  }
  const reasons: string[] = [];
  if (r.aborted) reasons.push(`${r.aborted.reason} at ${r.aborted.atSec}s`);
  for (const t of results) {
    if (!t.ok)
      reasons.push(
        `threshold failed: ${t.expr} (${t.actual === null ? 'no data: nothing was measured' : `actual ${formatNumber(t.actual)}`})`,
      );
  }
  const empty = emptyRunReason(r, results);
  if (empty) return { exitCode: EXIT_THRESHOLD_FAILED, status: 'failed', reasons: [empty, ...reasons, ...notes] };
  if (reasons.length > 0) return { exitCode: EXIT_THRESHOLD_FAILED, status: 'threshold_failed', reasons: [...reasons, ...notes] };
  return {
    exitCode: EXIT_PASSED,
    status: 'passed',
    reasons: [...results.map((t) => `threshold passed: ${t.expr} (actual ${formatNumber(t.actual ?? 0)})`), ...notes],
  };
}

/**
 * A run that loaded nothing tested nothing: no connection opened (a closed port, every attempt
 * refused), or a storm that held nothing when the drop came. That is a failed run, not a pass,
 * unless the user asked for refusals with a threshold on `rejected` / `rejected.<status>`.
 */
export function emptyRunReason(r: RunResult, results: ThresholdResult[]): string | undefined {
  if (results.some((t) => asksForRejections(t.metric))) return undefined;
  const top = Object.entries(r.outcomes)
    .sort(([, a], [, b]) => b - a)
    .slice(0, 3)
    .map(([k, v]) => `${k}×${v}`)
    .join(', ');
  if (r.connections.opened === 0) {
    return `failed run: no connection opened (${r.connections.attempts} attempts${top ? `: ${top}` : ''}); nothing was tested`;
  }
  if (r.storm && r.storm.held === 0) {
    return `failed run: no connection was held when the drop came at ${r.storm.dropAtSec}s (${r.connections.opened} of ${r.connections.attempts} attempts opened${top ? `; ${top}` : ''}); the storm tested nothing`;
  }
  return undefined;
}

export function formatNumber(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Number.isInteger(n) ? String(n) : n.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');
}
