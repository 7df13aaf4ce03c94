import type { ProbeReport } from '../engine/probe/suite.ts';

/** `wsguard report probe.json`: the probe's checks as a terminal list or Markdown. */
export function probeVerdict(p: ProbeReport): { status: string; exitCode: number } {
  return p.ok ? { status: 'passed', exitCode: 0 } : { status: 'check_failed', exitCode: 1 };
}

function failedCount(p: ProbeReport): number {
  return p.checks.filter((c) => !c.ok).length + p.metrics.filter((m) => !m.ok).length + (p.metricsError ? 1 : 0);
}

export function renderProbeTerminal(p: ProbeReport): string {
  const out = [`wsguard probe ${p.target}  ${p.startedAt ?? ''}`.trimEnd(), ''];
  for (const c of p.checks)
    out.push(
      `${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: observed ${c.observed}${c.ok ? '' : `, expected one of ${c.expected.join(' | ')}`}${c.detail ? ` (${c.detail})` : ''}`,
    );
  for (const name of p.skipped ?? []) out.push(`SKIP  ${name}`);
  for (const m of p.metrics)
    out.push(`${m.ok ? 'PASS' : 'FAIL'}  metric ${m.metric} moved ${m.after - m.before} (${m.before} → ${m.after}), expected ${m.delta}`);
  if (p.metricsError) out.push(`FAIL  ${p.metricsError}`);
  const v = probeVerdict(p);
  out.push('', `${p.checks.length + p.metrics.length} checks, ${failedCount(p)} failed`, `verdict: ${v.status} (exit ${v.exitCode})`);
  return out.join('\n') + '\n';
}

const cell = (s: string): string => s.replaceAll('|', '\\|').replaceAll('\n', ' ');

export function renderProbeMarkdown(p: ProbeReport): string {
  const v = probeVerdict(p);
  const out = [
    `## wsguard probe: \`${p.target}\``,
    '',
    `${p.startedAt ?? ''}`.trim(),
    '',
    `**Verdict: ${v.status} (exit ${v.exitCode})**: ${p.checks.length + p.metrics.length} checks, ${failedCount(p)} failed.`,
  ];
  out.push('', '### Checks', '', '| check | result | observed | expected | detail |', '|---|---|---|---|---|');
  for (const c of p.checks)
    out.push(
      `| ${cell(c.name)} | ${c.ok ? 'pass' : '**FAIL**'} | \`${cell(c.observed)}\` | ${c.expected.map((e) => `\`${cell(e)}\``).join(' ')} | ${cell(c.detail)} |`,
    );
  for (const name of p.skipped ?? []) out.push(`| ${cell(name)} | skipped | | | --skip |`);
  if (p.metrics.length > 0 || p.metricsError) {
    out.push('', '### Metrics', '', '| metric | result | before | after | expected delta |', '|---|---|---|---|---|');
    for (const m of p.metrics)
      out.push(`| \`${cell(m.metric)}\` | ${m.ok ? 'pass' : '**FAIL**'} | ${m.before} | ${m.after} | \`${cell(m.delta)}\` |`);
    if (p.metricsError) out.push('', `**FAIL**: ${p.metricsError}`);
  }
  return out.join('\n') + '\n';
}
