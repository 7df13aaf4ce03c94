import type { RunResult } from '../engine/result.ts';
import { isFailure } from '../engine/outcomes.ts';
import { renderMarkdown } from './markdown.ts';
import { barChart, escapeXml, lineChart, PALETTE, type Line } from './svg-chart.ts';

/** Turns the Markdown summary into simple HTML: tables, headings, lists, bold, code. */
function markdownToHtml(md: string): string {
  const out: string[] = [];
  const lines = md.split('\n');
  const inline = (s: string): string => escapeXml(s).replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>').replace(/`(.+?)`/g, '<code>$1</code>');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('|')) {
      const rows: string[][] = [];
      for (; i < lines.length && lines[i]!.startsWith('|'); i++) rows.push(lines[i]!.slice(1, -1).split('|').map((c) => c.trim()));
      i--;
      const [head, , ...body] = rows;
      out.push(`<table><tr>${head!.map((c) => `<th>${inline(c)}</th>`).join('')}</tr>${body.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`).join('')}</table>`);
    } else if (l.startsWith('### ')) out.push(`<h3>${inline(l.slice(4))}</h3>`);
    else if (l.startsWith('## ')) out.push(`<h2>${inline(l.slice(3))}</h2>`);
    else if (l.startsWith('- ')) out.push(`<li>${inline(l.slice(2))}</li>`);
    else if (l.trim() !== '') out.push(`<p>${inline(l)}</p>`);
  }
  return out.join('\n');
}

/** A self-contained HTML report: summary tables plus inline SVG charts, no scripts or external assets. */
export function renderHtml(r: RunResult): string {
  const s = r.series;
  const connections: Line[] = [
    { name: 'open', color: PALETTE[0]!, points: s.map((p) => [p.t, p.open]) },
    { name: 'opening', color: PALETTE[3]!, points: s.map((p) => [p.t, p.opening]) },
    { name: 'opened /s', color: PALETTE[2]!, points: s.map((p) => [p.t, p.opened]) },
  ];
  const keys = [...new Set(s.flatMap((p) => Object.keys(p.outcomes)))].sort((a, b) => Number(isFailure(b)) - Number(isFailure(a)) || a.localeCompare(b)).slice(0, 8);
  const outcomes: Line[] = keys.map((k, i) => ({ name: k, color: PALETTE[i % PALETTE.length]!, points: s.map((p) => [p.t, p.outcomes[k] ?? 0]) }));
  const charts = [
    lineChart('Connections over time', connections, { xLabel: 'seconds', yLabel: 'connections' }),
    lineChart('Outcomes per second', outcomes, { xLabel: 'seconds', yLabel: 'per second' }),
  ];
  if (r.kind === 'flood') {
    charts.push(lineChart('Round trip per second (CO-corrected)', [
      { name: 'p50', color: PALETTE[0]!, points: s.map((p) => [p.t, p.rttP50Ms]) },
      { name: 'p99', color: PALETTE[1]!, points: s.map((p) => [p.t, p.rttP99Ms]) },
    ], { xLabel: 'seconds', yLabel: 'ms' }));
    charts.push(lineChart('Messages per second', [
      { name: 'sent', color: PALETTE[0]!, points: s.map((p) => [p.t, p.sent]) },
      { name: 'received', color: PALETTE[2]!, points: s.map((p) => [p.t, p.received]) },
    ], { xLabel: 'seconds', yLabel: 'messages/s' }));
    const l = r.latency.rtt;
    charts.push(barChart('RTT percentiles (whole run)', [{ label: 'p50', value: l.p50 }, { label: 'p90', value: l.p90 }, { label: 'p99', value: l.p99 }, { label: 'p99.9', value: l.p999 }, { label: 'max', value: l.max }], 'ms'));
  }
  const c = r.latency.connect;
  charts.push(barChart('Connect time percentiles', [{ label: 'p50', value: c.p50 }, { label: 'p90', value: c.p90 }, { label: 'p99', value: c.p99 }, { label: 'max', value: c.max }], 'ms'));
  if (r.storm) {
    const st = r.storm;
    charts.push(barChart('Time until share of dropped clients reconnected', Object.entries(st.timeToPercentMs).map(([p, v]) => ({ label: `${p}%${v === null ? ' (not reached)' : ''}`, value: v ?? 0 })), 'ms'));
  }
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wsguard ${escapeXml(r.kind)} report</title>
<style>body{font:14px/1.45 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#111}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #d1d5db;padding:3px 8px;text-align:right}th{background:#f3f4f6}
td:first-child,th:first-child{text-align:left}code{background:#f3f4f6;padding:0 3px}svg{display:block;margin:1.2em 0}</style></head>
<body>
${markdownToHtml(renderMarkdown(r))}
<h3>Charts</h3>
${charts.join('\n')}
</body></html>
`;
}
