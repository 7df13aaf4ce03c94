import { describeOutcome } from '../engine/outcomes.ts';
import type { RunResult } from '../engine/result.ts';

/** Small formatting helpers shared by the renderers. */
export function fmtNum(n: number | null | undefined): string {
  if (n === null || n === undefined) return 'n/a';
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  return n.toFixed(n < 10 ? 3 : 1).replace(/\.?0+$/, '');
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

/** A plain aligned table; the first row is the header. */
export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Outcome rows (key, count, meaning), most frequent first; rejections split by the server's reason. */
export function outcomeRows(r: RunResult): { key: string; count: number; meaning: string; sub?: boolean }[] {
  const rows: { key: string; count: number; meaning: string; sub?: boolean }[] = [];
  for (const [k, v] of Object.entries(r.outcomes).sort(([, a], [, b]) => b - a)) {
    rows.push({ key: k, count: v, meaning: describeOutcome(k) });
    if (!k.startsWith('rejected.')) continue;
    const reasons = Object.entries(r.outcomeDetails[k] ?? {}).sort(([, a], [, b]) => b - a);
    for (const [reason, n] of reasons) rows.push({ key: `  ${k} ${reason}`, count: n, meaning: 'reason given by the server', sub: true });
  }
  return rows;
}

/** The load the user asked for, in one line: connections, rate, size, duration. */
/** The storm's recovery figures as a header and a value row (one per renderer would drift). */
export function recoveryTable(s: NonNullable<RunResult['storm']>, backLabel: (p: string) => string): [string[], string[]] {
  return [
    ['recovered', 'gave up', 'p50 ms', 'p99 ms', 'max ms', ...Object.keys(s.timeToPercentMs).map(backLabel)],
    [
      fmtNum(s.recovered),
      fmtNum(s.gaveUp),
      fmtNum(s.recover.p50),
      fmtNum(s.recover.p99),
      fmtNum(s.recover.max),
      ...Object.values(s.timeToPercentMs).map(fmtNum),
    ],
  ];
}

export function requestedLine(r: RunResult): string {
  const q = r.requested;
  if (!q) return '';
  const parts: string[] = [];
  if (q.connections !== undefined) parts.push(`${q.connections} connections`);
  if (q.arrivalRate !== undefined) parts.push(`${q.arrivalRate} new connections/s`);
  if (q.stages !== undefined) parts.push(`stages ${q.stages}`);
  if (q.rate !== undefined) parts.push(q.rate > 0 ? `${q.rate} msg/s each` : 'no messages');
  if (q.sizeBytes !== undefined && (q.rate ?? 0) > 0) parts.push(`${q.sizeBytes} B messages`);
  parts.push(`${q.durationSec} s`);
  if (q.drop) parts.push(`drop ${q.drop}`);
  if (q.workers !== undefined && q.workers > 1) parts.push(`${q.workers} workers`);
  return `requested: ${parts.join(', ')}${r.shard ? ` (this is shard ${r.shard.index}/${r.shard.count})` : ''}`;
}
