import { CliError } from '../../cli-error.ts';

/**
 * Minimal reader for the Prometheus text exposition format: enough to sum the samples of a metric
 * whose labels include a given set. Used by probe to check that counters moved.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheusText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

export interface Selector {
  name: string;
  labels: Record<string, string>;
}

/** `wsguard_connections_rejected_total{reason="conn_limit"}` */
export function parseSelector(s: string): Selector {
  const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?$/.exec(s.trim());
  if (!m) throw new CliError('config', `metric selector '${s}': expected name{label="value",…}`);
  const labels: Record<string, string> = {};
  for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!;
  return { name: m[1]!, labels };
}

export function sumMatching(samples: Sample[], sel: Selector): number {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== sel.name) continue;
    if (Object.entries(sel.labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

export async function scrape(url: string): Promise<Sample[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${url}: HTTP ${res.status}`);
  return parsePrometheusText(await res.text());
}
