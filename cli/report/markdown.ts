import type { RunResult } from '../engine/result.ts';
import { checkRows, fanoutRows, usersLine } from './scenario.ts';
import { fmtBytes, fmtNum, outcomeRows, recoveryTable, requestedLine } from './format.ts';

function mdTable(rows: string[][]): string {
  const [head, ...body] = rows;
  return [`| ${head!.join(' | ')} |`, `|${head!.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** Markdown summary, for CI job summaries and pull-request comments. */
export function renderMarkdown(r: RunResult): string {
  const out: string[] = [];
  out.push(`## wsguard ${r.kind}: \`${r.target}\``);
  out.push('');
  out.push(`${r.startedAt}, ${(r.durationMs / 1000).toFixed(1)} s${r.shards > 1 ? `, ${r.shards} shards merged` : ''}.`);
  if (r.requested) out.push('', requestedLine(r).replace(/^requested:/, '**Requested:**'));
  if (r.verdict) out.push('', `**Verdict: ${r.verdict.status} (exit ${r.verdict.exitCode})**`, ...r.verdict.reasons.map((x) => `- ${x}`));
  out.push(
    '',
    '### Connections',
    '',
    mdTable([
      ['attempts', 'opened', 'peak open'],
      [fmtNum(r.connections.attempts), fmtNum(r.connections.opened), fmtNum(r.connections.peakOpen)],
    ]),
  );
  const outcomes = outcomeRows(r);
  if (outcomes.length > 0)
    out.push(
      '',
      '### Outcomes',
      '',
      mdTable([
        ['outcome', 'count', 'meaning'],
        ...outcomes.map((o) => [o.sub ? `↳ ${o.key.trim()}` : `\`${o.key}\``, fmtNum(o.count), o.meaning]),
      ]),
    );
  const m = r.messages;
  if (r.kind === 'flood') {
    out.push(
      '',
      '### Messages',
      '',
      mdTable([
        ['sent', 'received', 'lost', 'unmatched', 'out/s', 'in/s', 'bytes out', 'bytes in'],
        [m.sent, m.received, m.lost, m.unmatched, m.ratePerSecOut, m.ratePerSecIn]
          .map(fmtNum)
          .concat([fmtBytes(m.bytesOut), fmtBytes(m.bytesIn)]),
      ]),
    );
  }
  const lat = (n: string, s: RunResult['latency']['rtt']): string[] => [n, ...[s.count, s.p50, s.p90, s.p99, s.p999, s.max].map(fmtNum)];
  out.push(
    '',
    '### Latency (ms)',
    '',
    mdTable([
      ['', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max'],
      ...(r.kind === 'flood' ? [lat('RTT (CO-corrected)', r.latency.rtt), lat('RTT (from actual send)', r.latency.rttUncorrected)] : []),
      lat('connect', r.latency.connect),
    ]),
  );
  if (r.storm) {
    const s = r.storm;
    out.push(
      '',
      '### Reconnect storm',
      '',
      `Held ${s.held}, dropped ${s.dropped} (${s.dropMode}) at ${s.dropAtSec} s; policy: ${s.policy}.`,
      '',
    );
    out.push(mdTable(recoveryTable(s, (p) => `${p}% back (ms)`)));
    out.push(
      '',
      `Attempts per client: mean ${fmtNum(s.attemptsPerClient.mean)}, max ${s.attemptsPerClient.max}. Rejections during recovery: ${
        Object.entries(s.rejectionsDuringRecovery)
          .map(([k, v]) => `\`${k}\`×${v}`)
          .join(', ') || 'none'
      }.`,
    );
  }
  if (r.scenario) {
    out.push('', '### Scenario', '', usersLine(r)!);
    if (Object.keys(r.scenario.checks).length > 0) out.push('', mdTable(checkRows(r)));
    if (Object.keys(r.scenario.fanout).length > 0) out.push('', mdTable(fanoutRows(r)));
  }
  const sat = r.saturation;
  out.push(
    '',
    '### Generator',
    '',
    `${sat.verdict}: event-loop p99 ${sat.eventLoopP99Ms} ms, send lag p99 ${sat.sendLagP99Ms} ms, CPU ${sat.cpuCores} cores (peak ${sat.cpuCoresPeak}).`,
  );
  if (sat.cause) out.push(`- ${sat.cause}`);
  for (const x of sat.reasons) out.push(`- ${x}`);
  if (r.thresholds && r.thresholds.length > 0)
    out.push(
      '',
      '### Thresholds',
      '',
      mdTable([
        ['threshold', 'actual', 'result'],
        ...r.thresholds.map((t) => [`\`${t.expr}\``, fmtNum(t.actual), t.ok ? 'pass' : '**FAIL**']),
      ]),
    );
  return out.join('\n') + '\n';
}
