import type { ProbeReport } from '../engine/probe/suite.ts';
import type { RunResult, SeriesPoint } from '../engine/result.ts';
import { isFailure } from '../engine/outcomes.ts';
import { renderMarkdown } from './markdown.ts';
import { probeVerdict, renderProbeMarkdown } from './probe.ts';
import { barChart, escapeXml, lineChart, PALETTE, PERCENTILE_COLORS, type Line } from './svg-chart.ts';

/** Turns the Markdown summary into simple HTML: tables, headings, lists, bold, code. */
function markdownToHtml(md: string): string {
  const out: string[] = [];
  const lines = md.split('\n');
  const inline = (s: string): string =>
    escapeXml(s)
      .replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>')
      .replace(/`(.+?)`/g, '<code>$1</code>');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.startsWith('|')) {
      const rows: string[][] = [];
      for (; i < lines.length && lines[i]!.startsWith('|'); i++)
        rows.push(
          lines[i]!.slice(1, -1)
            .split('|')
            .map((c) => c.trim()),
        );
      i--;
      const [head, , ...body] = rows;
      out.push(
        `<table><tr>${head!.map((c) => `<th>${inline(c)}</th>`).join('')}</tr>${body.map((r) => `<tr>${r.map((c) => `<td>${inline(c)}</td>`).join('')}</tr>`).join('')}</table>`,
      );
    } else if (l.startsWith('### ')) out.push(`<h3>${inline(l.slice(4))}</h3>`);
    else if (l.startsWith('## ')) out.push(`<h2>${inline(l.slice(3))}</h2>`);
    else if (l.startsWith('- ')) out.push(`<li>${inline(l.slice(2))}</li>`);
    else if (l.trim() !== '') out.push(`<p>${inline(l)}</p>`);
  }
  return out.join('\n');
}

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:1.5em 2em;color:#111}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #d1d5db;padding:3px 8px;text-align:right}th{background:#f3f4f6}
td:first-child,th:first-child{text-align:left}code{background:#f3f4f6;padding:0 3px}svg{display:block;width:100%;height:auto;margin:1.2em 0}
.verdict{padding:.6em 1em;border-radius:6px;font-weight:600;border:1px solid}
.verdict-passed{background:#dcfce7;color:#166534;border-color:#86efac}
.verdict-failed{background:#fee2e2;color:#991b1b;border-color:#fca5a5}
.verdict-invalid{background:#fef3c7;color:#92400e;border-color:#fcd34d}
.verdict ul{margin:.3em 0 0;font-weight:400}`;

/** passed: green; a failed check, threshold or empty run: red; an invalid run: amber. */
function verdictBanner(status: string, exitCode: number, reasons: string[]): string {
  const cls = exitCode === 0 ? 'verdict-passed' : exitCode === 2 ? 'verdict-invalid' : 'verdict-failed';
  const list = reasons.length > 0 ? `<ul>${reasons.map((r) => `<li>${escapeXml(r)}</li>`).join('')}</ul>` : '';
  return `<div class="verdict ${cls}" data-exit="${exitCode}">Verdict: ${escapeXml(status)} (exit ${exitCode})${list}</div>`;
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${escapeXml(title)}</title>
<style>${STYLE}</style></head>
<body>
${body}
</body></html>
`;
}

/** Markdown without its verdict lines: the HTML shows the verdict as a coloured banner instead. */
function withoutVerdict(md: string): string {
  const lines = md.split('\n');
  const i = lines.findIndex((l) => l.startsWith('**Verdict:'));
  if (i < 0) return md;
  let j = i + 1;
  while (j < lines.length && lines[j]!.startsWith('- ')) j++;
  return [...lines.slice(0, i), ...lines.slice(j)].join('\n');
}

/** A probe result as a page: the check table and the verdict banner. */
export function renderProbeHtml(p: ProbeReport): string {
  const v = probeVerdict(p);
  const failed = p.checks.filter((c) => !c.ok).map((c) => `${c.name}: observed ${c.observed}`);
  return page(
    `wsguard probe report`,
    `${verdictBanner(v.status, v.exitCode, failed)}\n${markdownToHtml(withoutVerdict(renderProbeMarkdown(p)))}`,
  );
}

/** A self-contained HTML report: summary tables plus inline SVG charts, no scripts or external assets. */
export function renderHtml(r: RunResult): string {
  const s = r.series;
  // Seconds are sampled one apart; a wider jump is a stretch without samples (a gap, not a line).
  const gap = { gapOver: 1.5 };
  const connections: Line[] = [
    { name: 'open', color: PALETTE[0]!, points: s.map((p) => [p.t, p.open]) },
    { name: 'opening', color: PALETTE[3]!, points: s.map((p) => [p.t, p.opening]) },
    { name: 'opened /s', color: PALETTE[2]!, points: s.map((p) => [p.t, p.opened]) },
  ];
  const keys = [...new Set(s.flatMap((p) => Object.keys(p.outcomes)))]
    .sort((a, b) => Number(isFailure(b)) - Number(isFailure(a)) || a.localeCompare(b))
    .slice(0, 8);
  const outcomes: Line[] = keys.map((k, i) => ({
    name: k,
    color: PALETTE[i % PALETTE.length]!,
    points: s.map((p) => [p.t, p.outcomes[k] ?? 0]),
  }));
  const charts = [
    lineChart('Connections over time', connections, { xLabel: 'seconds', yLabel: 'connections', ...gap }),
    lineChart('Outcomes per second', outcomes, { xLabel: 'seconds', yLabel: 'per second', ...gap }),
  ];
  if (r.kind === 'flood') {
    // A second without echoes has no RTT: a gap, not a drop to 0 ms.
    const rtt = (p: SeriesPoint, v: number): number | null => (p.rttCount === 0 ? null : v);
    charts.push(
      lineChart(
        'Round trip per second (CO-corrected)',
        [
          { name: 'p50', color: PERCENTILE_COLORS.p50!, points: s.map((p) => [p.t, rtt(p, p.rttP50Ms)]) },
          { name: 'p99', color: PERCENTILE_COLORS.p99!, points: s.map((p) => [p.t, rtt(p, p.rttP99Ms)]) },
        ],
        { xLabel: 'seconds', yLabel: 'ms', ...gap },
      ),
    );
    charts.push(
      lineChart(
        'Messages per second',
        [
          { name: 'sent', color: PALETTE[0]!, points: s.map((p) => [p.t, p.sent]) },
          { name: 'received', color: PALETTE[2]!, points: s.map((p) => [p.t, p.received]) },
        ],
        { xLabel: 'seconds', yLabel: 'messages/s', ...gap },
      ),
    );
    const l = r.latency.rtt;
    charts.push(
      barChart(
        'RTT percentiles (whole run)',
        percentileBars([
          ['p50', l.p50],
          ['p90', l.p90],
          ['p99', l.p99],
          ['p99.9', l.p999],
          ['max', l.max],
        ]),
        'ms',
      ),
    );
  }
  const c = r.latency.connect;
  charts.push(
    barChart(
      'Connect time percentiles (connections that opened)',
      percentileBars([
        ['p50', c.p50],
        ['p90', c.p90],
        ['p99', c.p99],
        ['max', c.max],
      ]),
      'ms',
    ),
  );
  if (r.storm) {
    const st = r.storm;
    charts.push(
      barChart(
        'Time until share of dropped clients reconnected',
        Object.entries(st.timeToPercentMs).map(([p, v]) => ({ label: `${p}%${v === null ? ' (not reached)' : ''}`, value: v ?? 0 })),
        'ms',
      ),
    );
  }
  const banner = r.verdict ? verdictBanner(r.verdict.status, r.verdict.exitCode, r.verdict.reasons) : '';
  return page(
    `wsguard ${r.kind} report`,
    `${banner}\n${markdownToHtml(withoutVerdict(renderMarkdown(r)))}\n<h3>Charts</h3>\n${charts.join('\n')}`,
  );
}

function percentileBars(list: [string, number][]): { label: string; value: number; color: string }[] {
  return list.map(([label, value]) => ({ label, value, color: PERCENTILE_COLORS[label]! }));
}
