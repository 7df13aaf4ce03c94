import type { RunResult } from '../engine/result.ts';
import { fmtNum } from './format.ts';

/** Rows of the checks table (header first), shared by the terminal and markdown summaries. */
export function checkRows(r: RunResult): string[][] {
  const checks = Object.entries(r.scenario?.checks ?? {});
  return [
    ['check', 'passes', 'fails', 'first failure'],
    ...checks.map(([name, c]) => [
      name,
      fmtNum(c.passes),
      fmtNum(c.fails),
      c.firstFailure
        ? `user ${c.firstFailure.user} at ${c.firstFailure.stepName ?? c.firstFailure.step}: ${c.firstFailure.reason}; received: ${c.firstFailure.received ?? '(nothing)'}`
        : '',
    ]),
  ];
}

/** Rows of the fan-out table: per fanout step, send-to-first and send-to-last receiver percentiles (ms). */
export function fanoutRows(r: RunResult): string[][] {
  const rows: string[][] = [['fanout (ms, from intended send)', 'messages', 'missing', 'p50', 'p99', 'p99.9', 'max']];
  for (const [id, f] of Object.entries(r.scenario?.fanout ?? {})) {
    for (const which of ['first', 'last'] as const) {
      const s = f[which];
      rows.push([
        `${id} to ${which} receiver`,
        fmtNum(f.messages),
        fmtNum(f.missing),
        fmtNum(s.p50),
        fmtNum(s.p99),
        fmtNum(s.p999),
        fmtNum(s.max),
      ]);
    }
  }
  return rows;
}

/** One line on users and step errors. */
export function usersLine(r: RunResult): string | undefined {
  const sc = r.scenario;
  if (!sc) return undefined;
  const u = sc.users;
  const errors = Object.entries(sc.errors).map(([k, v]) => `${k}×${v}`);
  return `users: ${u.started} started, ${u.finished} finished, ${u.stopped} stopped, ${u.failed} failed${errors.length ? `; step errors: ${errors.join(', ')}` : ''}`;
}
