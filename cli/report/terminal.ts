import type { RunResult } from '../engine/result.ts';
import { checkRows, fanoutRows, usersLine } from './scenario.ts';
import { fmtBytes, fmtNum, outcomeRows, recoveryTable, requestedLine, table } from './format.ts';

/** The end-of-run summary printed to the terminal (and by `wsguard report --format text`). */
export function renderTerminal(r: RunResult): string {
  const out: string[] = [];
  const secs = (r.durationMs / 1000).toFixed(1);
  const workers = typeof r.config.workers === 'number' ? r.config.workers : 0;
  out.push(
    `wsguard ${r.kind} ${r.target}  ${secs}s${workers > 1 ? `  (${workers} worker threads)` : r.shards > 1 ? `  (${r.shards} shards merged)` : ''}`,
  );
  if (r.requested) out.push(requestedLine(r));
  out.push('');
  out.push(
    table([
      ['connections', 'attempts', 'opened', 'peak open'],
      ['', fmtNum(r.connections.attempts), fmtNum(r.connections.opened), fmtNum(r.connections.peakOpen)],
    ]),
  );
  out.push('');
  const rows = outcomeRows(r);
  if (rows.length > 0) {
    out.push(table([['outcome', 'count', 'meaning'], ...rows.map((o) => [o.key, fmtNum(o.count), o.meaning])]));
    out.push('');
  }
  const m = r.messages;
  out.push(
    table([
      ['messages', 'sent', 'received', 'lost', 'unmatched', 'out/s', 'in/s', 'bytes out', 'bytes in'],
      [
        '',
        fmtNum(m.sent),
        fmtNum(m.received),
        fmtNum(m.lost),
        fmtNum(m.unmatched),
        fmtNum(m.ratePerSecOut),
        fmtNum(m.ratePerSecIn),
        fmtBytes(m.bytesOut),
        fmtBytes(m.bytesIn),
      ],
    ]),
  );
  out.push('');
  const lat = (name: string, s: RunResult['latency']['rtt']): string[] => [
    name,
    fmtNum(s.count),
    fmtNum(s.p50),
    fmtNum(s.p90),
    fmtNum(s.p99),
    fmtNum(s.p999),
    fmtNum(s.max),
  ];
  out.push(
    table([
      ['latency (ms)', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max'],
      lat('rtt (CO-corrected)', r.latency.rtt),
      lat('rtt (from actual send)', r.latency.rttUncorrected),
      lat('connect', r.latency.connect),
    ]),
  );
  if (r.storm) {
    const s = r.storm;
    out.push('');
    out.push(`storm: held ${s.held}, dropped ${s.dropped} (${s.dropMode}) at ${s.dropAtSec}s, policy ${s.policy}`);
    out.push(table(recoveryTable(s, (p) => `${p}% back ms`).map((row, i) => [i === 0 ? 'recovery' : '', ...row])));
    out.push(
      `attempts per client: mean ${fmtNum(s.attemptsPerClient.mean)}, max ${s.attemptsPerClient.max}; Retry-After/close hints honoured ${s.retryAfterHonoured}`,
    );
    const rej = Object.entries(s.rejectionsDuringRecovery);
    if (rej.length > 0) out.push(`rejections during recovery: ${rej.map(([k, v]) => `${k}×${v}`).join(', ')}`);
  }
  if (r.scenario) {
    out.push('', usersLine(r)!);
    if (Object.keys(r.scenario.checks).length > 0) out.push(table(checkRows(r)));
    if (Object.keys(r.scenario.fanout).length > 0) out.push('', table(fanoutRows(r)));
  }
  out.push('');
  const sat = r.saturation;
  out.push(
    `generator: ${sat.verdict}; event-loop p99 ${sat.eventLoopP99Ms} ms, send lag p99 ${sat.sendLagP99Ms} ms, CPU ${sat.cpuCores} cores (peak ${sat.cpuCoresPeak}), fds peak ${sat.fdPeak ?? 'n/a'}/${sat.fdLimit ?? 'n/a'}`,
  );
  if (sat.cause) out.push(`  ! ${sat.cause}`);
  for (const reason of sat.reasons) out.push(`  ! ${reason}`);
  for (const c of r.preflight.filter((p) => !p.ok)) out.push(`  ! pre-flight ${c.name}: ${c.message}`);
  if (r.aborted) out.push(`  ! stopped early at ${r.aborted.atSec}s: ${r.aborted.reason}`);
  if (r.thresholds && r.thresholds.length > 0) {
    out.push('');
    out.push(table([['threshold', 'actual', 'result'], ...r.thresholds.map((t) => [t.expr, fmtNum(t.actual), t.ok ? 'pass' : 'FAIL'])]));
  }
  if (r.verdict) {
    out.push('');
    out.push(`verdict: ${r.verdict.status} (exit ${r.verdict.exitCode})`);
    for (const reason of r.verdict.reasons) out.push(`  - ${reason}`);
  }
  return out.join('\n') + '\n';
}

/** One compact progress line per second for a TTY. */
export function progressLine(p: import('../engine/result.ts').SeriesPoint): string {
  const fails = Object.entries(p.outcomes)
    .filter(([k]) => k !== 'completed')
    .map(([k, v]) => `${k}:${v}`)
    .join(' ');
  return `t=${p.t}s open=${p.open} opening=${p.opening} +${p.opened} out=${p.sent}/s in=${p.received}/s rtt p50=${p.rttP50Ms}ms p99=${p.rttP99Ms}ms cpu=${p.cpuCores}${fails ? ` ${fails}` : ''}`;
}
