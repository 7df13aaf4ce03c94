/// <reference lib="dom" />
/**
 * The status page (runs in the browser; bundled with uPlot by bundle.ts, served at /status). It polls
 * the series endpoint once a second and draws the last minutes. The admin token, when one is
 * needed, lives in sessionStorage only (gone when the tab closes) and is sent only to this origin.
 */
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './page.css';
import type { StatusSample } from '../live-stats.ts';
import { MONITORING_PATHS } from '../paths.ts';

const SERIES_PATH = MONITORING_PATHS.series;
const POLL_MS = 1000;
const TOKEN_KEY = 'wsguard.status.token';
const PALETTE = ['#3b82f6', '#f59e0b', '#10b981', '#ef4444', '#a855f7', '#14b8a6', '#f97316', '#64748b', '#ec4899', '#84cc16'];

type Sample = StatusSample;

interface SeriesAnswer {
  now: number;
  history_sec: number;
  masked: boolean;
  info: {
    version: string;
    started_at: string;
    uptime_sec: number;
    ready: boolean;
    checks: Record<string, boolean>;
    draining: boolean;
    limits: Record<string, string | number | boolean>;
  };
  latency: { window_sec: number; count: number; p50_ms: number | null; p99_ms: number | null };
  rejections_total: number;
  top_offenders: Array<{ client: string; count: number; error: number }>;
  samples: Sample[];
}

/** One drawn chart: its series labels and the data uPlot holds (x first), for the page and for tests. */
interface ChartData {
  labels: string[];
  data: Array<Array<number | null>>;
}

interface StatusState {
  polls: number;
  lastError: string | null;
  answer: SeriesAnswer | null;
  samples: Sample[];
  charts: Record<string, ChartData>;
}

declare global {
  interface Window {
    __wsguardStatus: StatusState;
  }
}

const state: StatusState = { polls: 0, lastError: null, answer: null, samples: [], charts: {} };
window.__wsguardStatus = state;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, cls?: string, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

const perSec = (n: number, s: Sample): number => (s.dt_ms > 0 ? (n * 1000) / s.dt_ms : 0);

interface ChartSpec {
  id: string;
  title: string;
  unit: string;
  /** Series labels and how to read each from a sample. */
  series: (samples: Sample[]) => Array<{ label: string; value: (s: Sample) => number | null }>;
}

function keysOf(samples: Sample[], pick: (s: Sample) => Record<string, number>): string[] {
  const keys = new Set<string>();
  for (const s of samples) for (const k of Object.keys(pick(s))) keys.add(k);
  return [...keys].sort();
}

const CHARTS: ChartSpec[] = [
  {
    id: 'active',
    title: 'Active connections',
    unit: '',
    series: (ss) => {
      const routes = keysOf(ss, (s) => s.active);
      return routes.length === 0
        ? [{ label: 'all routes', value: () => 0 }]
        : routes.map((r) => ({ label: r, value: (s: Sample) => s.active[r] ?? 0 }));
    },
  },
  {
    id: 'handshakes',
    title: 'Handshakes and closes',
    unit: '/s',
    series: (ss) => [
      { label: 'accepted', value: (s) => perSec(s.accepted, s) },
      { label: 'closed', value: (s) => perSec(s.closed, s) },
      ...keysOf(ss, (s) => s.rejected).map((r) => ({ label: `rejected: ${r}`, value: (s: Sample) => perSec(s.rejected[r] ?? 0, s) })),
    ],
  },
  {
    id: 'messages',
    title: 'Messages',
    unit: '/s',
    series: () => [
      { label: 'client → upstream', value: (s) => perSec(s.messages_in, s) },
      { label: 'upstream → client', value: (s) => perSec(s.messages_out, s) },
    ],
  },
  {
    id: 'bytes',
    title: 'Payload bytes',
    unit: 'B/s',
    series: () => [
      { label: 'client → upstream', value: (s) => perSec(s.bytes_in, s) },
      { label: 'upstream → client', value: (s) => perSec(s.bytes_out, s) },
    ],
  },
  {
    id: 'violations',
    title: 'Rate limits and upstream errors',
    unit: '/s',
    series: () => [
      { label: 'rate-limited: dropped', value: (s) => perSec(s.rate_limited_drop, s) },
      { label: 'rate-limited: closed', value: (s) => perSec(s.rate_limited_close, s) },
      { label: 'upstream errors', value: (s) => perSec(s.upstream_errors, s) },
    ],
  },
  {
    id: 'latency',
    title: 'Handshake latency (accepted)',
    unit: 'ms',
    series: () => [
      { label: 'p50', value: (s) => s.handshake_p50_ms },
      { label: 'p99', value: (s) => s.handshake_p99_ms },
    ],
  },
];

const charts = new Map<string, { plot: uPlot | undefined; key: string; box: HTMLElement }>();
const PLOT_HEIGHT = 180;
const plotWidth = (box: HTMLElement): number => Math.max(240, box.clientWidth - 16);

function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function fmt(v: number, unit: string): string {
  const a = Math.abs(v);
  const s =
    a >= 1e9
      ? `${(v / 1e9).toFixed(1)}G`
      : a >= 1e6
        ? `${(v / 1e6).toFixed(1)}M`
        : a >= 1e3
          ? `${(v / 1e3).toFixed(1)}k`
          : `${+v.toFixed(2)}`;
  return unit ? `${s} ${unit}` : s;
}

function drawCharts(grid: HTMLElement): void {
  const ss = state.samples;
  const xs = ss.map((s) => s.t / 1000);
  // Every box first, so that each plot is sized in the grid's final layout.
  for (const spec of CHARTS) {
    if (charts.has(spec.id)) continue;
    const box = el('section', 'chart');
    box.dataset.chart = spec.id;
    box.append(el('h2', undefined, spec.unit ? `${spec.title} (${spec.unit})` : spec.title));
    grid.append(box);
    const entry = { plot: undefined as uPlot | undefined, key: '', box };
    charts.set(spec.id, entry);
    new ResizeObserver(() => entry.plot?.setSize({ width: plotWidth(box), height: PLOT_HEIGHT })).observe(box);
  }
  for (const spec of CHARTS) {
    const series = spec.series(ss);
    const data: Array<Array<number | null>> = [xs, ...series.map((c) => ss.map(c.value))];
    state.charts[spec.id] = { labels: series.map((c) => c.label), data };
    const chart = charts.get(spec.id)!;
    const key = `${series.map((c) => c.label).join('|')}#${cssVar('--fg')}`;
    if (chart.key !== key) {
      chart.plot?.destroy();
      const fg = cssVar('--fg');
      const gridStroke = cssVar('--grid');
      const axis = { stroke: fg, grid: { stroke: gridStroke, width: 1 }, ticks: { stroke: gridStroke, width: 1 } };
      chart.plot = new uPlot(
        {
          width: plotWidth(chart.box),
          height: PLOT_HEIGHT,
          scales: { x: { time: true }, y: { range: (_u, min, max) => [Math.min(0, min), Math.max(1, max * 1.1)] } },
          axes: [axis, { ...axis, size: 56, values: (_u, splits) => splits.map((v) => fmt(v, '')) }],
          series: [
            {},
            ...series.map((c, i) => ({
              label: c.label,
              stroke: PALETTE[i % PALETTE.length],
              width: 1.5,
              spanGaps: false,
              value: (_u: uPlot, v: number | null) => (v === null ? '–' : fmt(v, spec.unit)),
            })),
          ],
        },
        data as uPlot.AlignedData,
        chart.box,
      );
      chart.key = key;
    } else {
      chart.plot!.setData(data as uPlot.AlignedData);
    }
  }
}

function duration(sec: number): string {
  const d = Math.floor(sec / 86400);
  const h = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = Math.floor(sec % 60);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : m > 0 ? `${m}m ${s}s` : `${s}s`;
}

function drawHeader(header: HTMLElement, a: SeriesAnswer): void {
  header.replaceChildren();
  const title = el('div', 'title');
  title.append(el('h1', undefined, 'wsguard'), el('span', 'version', a.info.version));
  const failing = Object.entries(a.info.checks)
    .filter(([k, v]) => (k === 'draining' ? v : !v))
    .map(([k]) => k);
  const ready = el('span', a.info.ready ? 'badge ok' : 'badge bad', a.info.ready ? 'ready' : `not ready: ${failing.join(', ')}`);
  ready.dataset.field = 'ready';
  const facts = el('dl', 'facts');
  const fact = (k: string, v: string, field?: string) => {
    const dd = el('dd', undefined, v);
    if (field) dd.dataset.field = field;
    facts.append(el('dt', undefined, k), dd);
  };
  fact('uptime', duration(a.info.uptime_sec), 'uptime');
  fact('drain', a.info.draining ? 'draining' : 'serving', 'draining');
  fact('latency window', `${a.latency.window_sec} s, ${a.latency.count} accepted`);
  const limits = el('dl', 'limits');
  for (const [k, v] of Object.entries(a.info.limits)) limits.append(el('dt', undefined, k), el('dd', undefined, String(v)));
  title.append(ready);
  header.append(title, facts, limits);
}

function drawOffenders(box: HTMLElement, a: SeriesAnswer): void {
  box.replaceChildren(el('h2', undefined, `Top offending clients (${a.rejections_total} rejections since start)`));
  if (a.top_offenders.length === 0) {
    box.append(el('p', 'muted', 'No rejected handshakes yet.'));
    return;
  }
  const table = el('table');
  const head = el('tr');
  head.append(el('th', undefined, 'client'), el('th', 'num', 'rejections'), el('th', 'num', '± error'));
  table.append(head);
  for (const o of a.top_offenders) {
    const tr = el('tr');
    tr.append(el('td', 'mono', o.client), el('td', 'num', String(o.count)), el('td', 'num', String(o.error)));
    table.append(tr);
  }
  box.append(table);
  if (a.masked) box.append(el('p', 'muted', 'Addresses are shortened: open the page with an admin token to see them in full.'));
}

function main(): void {
  const root = document.getElementById('app')!;
  const header = el('header');
  const banner = el('div', 'banner');
  banner.hidden = true;
  const form = el('form', 'token');
  form.hidden = true;
  const input = el('input');
  input.type = 'password';
  input.name = 'token';
  input.autocomplete = 'off';
  input.placeholder = 'admin JWT (aud: the monitoring audience)';
  const submit = el('button', undefined, 'Open');
  submit.type = 'submit';
  form.append(
    el('label', undefined, 'This page needs the monitoring API admin token. It is kept in this tab only (sessionStorage).'),
    input,
    submit,
  );
  const grid = el('div', 'grid');
  const offenders = el('section', 'offenders');
  root.append(header, banner, form, grid, offenders);

  let since = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
  };

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    input.value = '';
    form.hidden = true;
    void poll();
  });

  async function poll(): Promise<void> {
    const token = sessionStorage.getItem(TOKEN_KEY);
    try {
      const res = await fetch(`${SERIES_PATH}?since=${since}`, {
        headers: token ? { authorization: `Bearer ${token}` } : {},
        cache: 'no-store',
        credentials: 'omit',
      });
      if (res.status === 401 || res.status === 403) {
        if (token) sessionStorage.removeItem(TOKEN_KEY);
        form.hidden = false;
        banner.hidden = !token;
        banner.textContent = res.status === 403 ? 'That token is not an admin token.' : 'That token was refused (invalid or expired).';
        state.lastError = `HTTP ${res.status}`;
        return; // wait for a token
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const a = (await res.json()) as SeriesAnswer;
      state.polls++;
      state.answer = a;
      state.lastError = null;
      banner.hidden = true;
      state.samples.push(...a.samples);
      if (a.samples.length > 0) since = a.samples[a.samples.length - 1]!.t;
      const horizon = a.now - a.history_sec * 1000;
      while (state.samples.length > 0 && state.samples[0]!.t <= horizon) state.samples.shift();
      drawHeader(header, a);
      drawCharts(grid);
      drawOffenders(offenders, a);
      document.body.dataset.polls = String(state.polls);
    } catch (err) {
      state.lastError = String(err);
      banner.hidden = false;
      banner.textContent = `Cannot reach wsguard (${state.lastError}); retrying every second.`;
    }
    schedule();
  }

  // Axis colours come from CSS variables: rebuild the charts when the scheme flips.
  window.matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => drawCharts(grid));
  void poll();
}

main();
