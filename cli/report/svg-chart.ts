/**
 * Dependency-free SVG line charts for the HTML report, so the file is self-contained (no script,
 * no CDN) and renders offline, in CI artefact viewers and in mail.
 */
export interface Line {
  name: string;
  color: string;
  /** A null value is a gap: no samples there, so no line is drawn through it. */
  points: [number, number | null][];
}

export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

/** One colour per percentile in every chart, so p99 is the same red in the lines and the bars. */
export const PERCENTILE_COLORS: Readonly<Record<string, string>> = Object.freeze({
  p50: '#2563eb',
  p90: '#16a34a',
  p99: '#dc2626',
  'p99.9': '#7c3aed',
  max: '#4b5563',
});

/** 1, 2 or 5 × 10^k: a tick step giving at most `maxTicks` intervals up to `span`. */
function niceStep(span: number, maxTicks: number): number {
  const raw = span / maxTicks;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (raw <= m * p) return m * p;
  return 10 * p;
}

export function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Round axis maximum to 1, 2 or 5 × 10^k so tick labels are readable. */
function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

export function lineChart(
  title: string,
  lines: Line[],
  o: { xLabel: string; yLabel: string; width?: number; height?: number; gapOver?: number },
): string {
  const W = o.width ?? 960;
  const H = o.height ?? 280;
  const m = { l: 60, r: 150, t: 28, b: 40 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const xs = lines.flatMap((l) => l.points.map((p) => p[0]));
  const ys = lines.flatMap((l) => l.points.flatMap((p) => (p[1] === null ? [] : [p[1]])));
  const xStep = niceStep(Math.max(1, ...xs), 10);
  const xMax = Math.max(xStep, Math.ceil(Math.max(1, ...xs) / xStep) * xStep);
  const yMax = niceMax(Math.max(0, ...ys));
  const X = (x: number): number => m.l + (x / xMax) * pw;
  const Y = (y: number): number => m.t + ph - (y / yMax) * ph;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" preserveAspectRatio="xMinYMin meet" role="img" aria-label="${escapeXml(title)}">`,
  );
  parts.push(`<text x="${m.l}" y="18" font-size="14" font-weight="600">${escapeXml(title)}</text>`);
  // Every label sits on its gridline: y at quarters of a round maximum, x at a round step.
  for (let i = 0; i <= 4; i++) {
    const y = (yMax * i) / 4;
    parts.push(`<line class="grid-y" x1="${m.l}" x2="${m.l + pw}" y1="${Y(y).toFixed(1)}" y2="${Y(y).toFixed(1)}" stroke="#e5e7eb"/>`);
    parts.push(`<text class="tick-y" x="${m.l - 6}" y="${(Y(y) + 4).toFixed(1)}" font-size="11" text-anchor="end">${fmt(y)}</text>`);
  }
  for (let x = 0; x <= xMax + 1e-9; x += xStep) {
    parts.push(`<line class="grid-x" x1="${X(x).toFixed(1)}" x2="${X(x).toFixed(1)}" y1="${m.t}" y2="${m.t + ph}" stroke="#e5e7eb"/>`);
    parts.push(`<text class="tick-x" x="${X(x).toFixed(1)}" y="${m.t + ph + 16}" font-size="11" text-anchor="middle">${fmt(x)}</text>`);
  }
  parts.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#6b7280"/>`);
  parts.push(`<text x="${m.l + pw / 2}" y="${H - 6}" font-size="11" text-anchor="middle">${escapeXml(o.xLabel)}</text>`);
  parts.push(
    `<text x="14" y="${m.t + ph / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 14 ${m.t + ph / 2})">${escapeXml(o.yLabel)}</text>`,
  );
  lines.forEach((l, i) => {
    // Runs of consecutive samples; a null value, or a jump in x wider than gapOver, starts a new run.
    const runs: [number, number][][] = [];
    let run: [number, number][] = [];
    let prevX: number | undefined;
    for (const [x, y] of l.points) {
      const jump = o.gapOver !== undefined && prevX !== undefined && x - prevX > o.gapOver;
      if (y === null || jump) {
        if (run.length > 0) runs.push(run);
        run = [];
      }
      if (y !== null) run.push([x, y]);
      prevX = x;
    }
    if (run.length > 0) runs.push(run);
    const d = runs.map((r) => r.map((p, j) => `${j === 0 ? 'M' : 'L'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('')).join('');
    if (d)
      parts.push(`<path class="series" data-series="${escapeXml(l.name)}" d="${d}" fill="none" stroke="${l.color}" stroke-width="2"/>`);
    // A path of one point draws nothing (seen in Chromium on a 1-second run): mark lone points.
    for (const r of runs.filter((r) => r.length === 1)) {
      parts.push(`<circle cx="${X(r[0]![0]).toFixed(1)}" cy="${Y(r[0]![1]).toFixed(1)}" r="3" fill="${l.color}"/>`);
    }
    parts.push(`<rect x="${m.l + pw + 12}" y="${m.t + i * 18}" width="10" height="10" fill="${l.color}"/>`);
    parts.push(`<text x="${m.l + pw + 27}" y="${m.t + i * 18 + 9}" font-size="11">${escapeXml(l.name)}</text>`);
  });
  if (ys.length === 0)
    parts.push(`<text x="${m.l + pw / 2}" y="${m.t + ph / 2}" font-size="12" text-anchor="middle" fill="#6b7280">no data</text>`);
  parts.push('</svg>');
  return parts.join('');
}

function fmt(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)}k`;
  // Two decimals: a gridline at 1.25 is labelled 1.25, not a rounded 1.3 beside it.
  return Number.isInteger(n) ? String(n) : String(Number(n.toFixed(2)));
}

/** Horizontal bars, e.g. latency percentiles. */
export function barChart(title: string, bars: { label: string; value: number; color?: string }[], unit: string): string {
  const W = 960;
  const row = 22;
  const H = 36 + bars.length * row;
  const max = niceMax(Math.max(0, ...bars.map((b) => b.value)));
  const l = 140;
  const pw = W - l - 90;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="100%" preserveAspectRatio="xMinYMin meet" role="img" aria-label="${escapeXml(title)}">`,
  ];
  parts.push(`<text x="${l}" y="18" font-size="14" font-weight="600">${escapeXml(title)}</text>`);
  bars.forEach((b, i) => {
    const y = 30 + i * row;
    const w = max === 0 ? 0 : (b.value / max) * pw;
    parts.push(`<text x="${l - 8}" y="${y + 13}" font-size="11" text-anchor="end">${escapeXml(b.label)}</text>`);
    parts.push(`<rect x="${l}" y="${y}" width="${w.toFixed(1)}" height="16" fill="${b.color ?? PALETTE[i % PALETTE.length]}"/>`);
    parts.push(`<text x="${l + w + 6}" y="${y + 13}" font-size="11">${fmt(b.value)} ${escapeXml(unit)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
