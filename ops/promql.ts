/**
 * PromQL pieces built from src/telemetry/names.ts, so a renamed metric, label or reason breaks the
 * build (and the drift test) instead of leaving a dead query in a dashboard or an alert.
 */
import {
  ATTR,
  type DECISIONS,
  type DIRECTIONS,
  PROMETHEUS_NAMES,
  REASONS,
  RUNTIME_PROMETHEUS_NAMES,
  type Reason,
} from '../src/telemetry/names.ts';

export const M = PROMETHEUS_NAMES;
export const R = RUNTIME_PROMETHEUS_NAMES;
export const L = ATTR;

/** The scrape job the rules and docs/metrics.md's scrape configuration use. */
export const JOB = 'wsguard';

export const ENFORCED: (typeof DECISIONS)[number] = 'enforced';
export const DRY_RUN: (typeof DECISIONS)[number] = 'dry_run';
export const CLIENT_TO_UPSTREAM: (typeof DIRECTIONS)[number] = 'client_to_upstream';

/** A reason, checked against REASONS at compile time. */
export function reason<T extends Reason>(r: T): T {
  return r;
}

/** `reason=~"a|b"` from reasons that must exist. */
export function reasonsRe(...rs: Reason[]): string {
  for (const r of rs) if (!(REASONS as readonly string[]).includes(r)) throw new Error(`unknown reason ${r}`);
  return `${L.reason}=~"${rs.join('|')}"`;
}

/** `metric{a="b",…}`; matcher strings are passed through (`label=~"…"`). */
export function sel(metric: string, ...matchers: Array<string | undefined>): string {
  const m = matchers.filter((x): x is string => !!x);
  return m.length ? `${metric}{${m.join(',')}}` : metric;
}

export function eq(label: string, value: string | number): string {
  return `${label}="${value}"`;
}

export function histogramBucket(metric: string): string {
  return `${metric}_bucket`;
}
export function histogramCount(metric: string): string {
  return `${metric}_count`;
}
