import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ALERT_ANNOTATION_EXPR, buildDashboard, DS_VAR, ROWS, RUN_ID_VAR } from '../../ops/dashboard.ts';
import { LOADGEN_DIRECTIONS } from '../../cli/engine/live-metrics-names.ts';
import { drift, renderAll, ROOT } from '../../ops/generate.ts';
import { JOB } from '../../ops/promql.ts';
import { COVERED } from '../../ops/rule-tests.ts';
import { alertRules, PRODUCTION, recordingRules } from '../../ops/rules.ts';
import {
  BACKPRESSURE_ACTIONS,
  CLOSE_CODES,
  CONNECTION_DURATION_BUCKETS_SEC,
  DECISIONS,
  DIRECTIONS,
  LIMIT_STORES,
  OUTCOMES,
  RATE_LIMIT_ACTIONS,
  REASONS,
  UPSTREAM_ERROR_KINDS,
} from '../../src/telemetry/names.ts';

interface Panel {
  id: number;
  type: string;
  title: string;
  description?: string;
  datasource?: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Array<{ refId: string; expr: string; datasource?: { type: string; uid: string } }>;
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown; datasource?: { uid: string } }> };
  annotations: { list: Array<{ expr?: string; datasource?: { uid: string } }> };
}

const dash = JSON.parse(readFileSync(join(ROOT, 'grafana/wsguard.json'), 'utf8')) as Dashboard;
const alerts = alertRules(PRODUCTION);

describe('generated files', () => {
  it('are in step with ops/*.ts (run npm run ops:generate after changing the source)', () => {
    expect(drift()).toEqual([]);
  });

  it('the committed dashboard is what the builder makes', () => {
    expect(dash).toEqual(buildDashboard());
    expect(renderAll().get('grafana/wsguard.json')).toBe(readFileSync(join(ROOT, 'grafana/wsguard.json'), 'utf8'));
  });
});

describe('the dashboard JSON meets what Grafana expects', () => {
  it('panel ids are unique', () => {
    const ids = dash.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('gridPos stays within 24 columns and no two panels overlap', () => {
    const cells = new Map<string, string>();
    for (const p of dash.panels) {
      const g = p.gridPos;
      expect(g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0, p.title).toBe(true);
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          const key = `${x},${y}`;
          expect(cells.get(key), `${p.title} overlaps ${cells.get(key)}`).toBeUndefined();
          cells.set(key, p.title);
        }
    }
  });

  it('every panel and target has a Prometheus datasource ref to the datasource variable, and a description', () => {
    const graphs = dash.panels.filter((p) => p.type !== 'row');
    expect(graphs.length).toBe(ROWS.flatMap((r) => r.panels).length);
    for (const p of graphs) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: `\${${DS_VAR}}` });
      expect(p.description, p.title).toMatch(/^Healthy: .+ Unhealthy: .+/);
      expect(p.targets!.length, p.title).toBeGreaterThan(0);
      expect(new Set(p.targets!.map((t) => t.refId)).size).toBe(p.targets!.length);
      for (const t of p.targets!) expect(t.datasource, `${p.title}: ${t.expr}`).toEqual(p.datasource);
    }
  });

  it('every variable a query or ref uses is defined (or is a Grafana built-in)', () => {
    const defined = new Set(dash.templating.list.map((v) => v.name));
    expect([...defined]).toEqual([DS_VAR, 'instance', 'route', RUN_ID_VAR]);
    const builtIn = new Set(['__rate_interval', '__interval', '__range']);
    const text = JSON.stringify({ panels: dash.panels, templating: dash.templating, annotations: dash.annotations });
    for (const m of text.matchAll(/\$\{?(\w+)\}?/g)) {
      if (m[1] === '__all') continue;
      expect(defined.has(m[1]!) || builtIn.has(m[1]!), `undefined variable $${m[1]}`).toBe(true);
    }
  });

  it('draws firing wsguard alerts as annotations', () => {
    expect(dash.annotations.list.some((a) => a.expr === ALERT_ANNOTATION_EXPR && a.datasource?.uid === `\${${DS_VAR}}`)).toBe(true);
  });
});

/** Every `label="v"` / `label=~"a|b"` in an expression, checked against the values names.ts allows. */
const ALLOWED: Record<string, ReadonlySet<string>> = {
  reason: new Set(REASONS),
  decision: new Set(DECISIONS),
  direction: new Set([...DIRECTIONS, ...Object.values(LOADGEN_DIRECTIONS)]),
  action: new Set([...RATE_LIMIT_ACTIONS, ...BACKPRESSURE_ACTIONS]),
  code: new Set([...CLOSE_CODES.map(String), '4...']),
  outcome: new Set(OUTCOMES),
  kind: new Set(UPSTREAM_ERROR_KINDS),
  store: new Set(LIMIT_STORES),
  le: new Set(CONNECTION_DURATION_BUCKETS_SEC.map(String)),
  job: new Set([JOB]),
  alertname: new Set(['Wsguard.*']),
  alertstate: new Set(['firing']),
  instance: new Set(['$instance']),
  route: new Set(['$route']),
  run_id: new Set(['$run_id']),
};

describe('label values in every query', () => {
  const exprs = [
    ...alerts.map((a) => a.expr),
    ...recordingRules(PRODUCTION).map((r) => r.expr),
    ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)),
    ALERT_ANNOTATION_EXPR,
  ];
  it('are ones wsguard emits (a typo would match nothing, silently)', () => {
    let checked = 0;
    for (const e of exprs)
      for (const m of e.matchAll(/(\w+)\s*(=~|!~|=|!=)\s*"([^"]*)"/g)) {
        const allowed = ALLOWED[m[1]!];
        expect(allowed, `label ${m[1]} in ${e}`).toBeDefined();
        for (const v of m[2]!.includes('~') ? m[3]!.split('|') : [m[3]!]) expect(allowed!.has(v), `${m[1]}="${v}" in ${e}`).toBe(true);
        checked++;
      }
    expect(checked).toBeGreaterThan(50);
  });
});

describe('alert rules', () => {
  it('the required alerts exist, each with severity, summary, a description quoting the value and a runbook', () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual(
      [
        'WsguardConnectionSpike',
        'WsguardRateLimitViolationsHigh',
        'WsguardReconnectStorm',
        'WsguardAuthFailureSpike',
        'WsguardOriginRejectionsSpike',
        'WsguardUpstreamUnavailable',
        'WsguardBackpressureCloses',
        'WsguardDown',
        'WsguardNotReady',
        'WsguardEventLoopLagHigh',
        'WsguardLimitStoreDegraded',
        'WsguardCertificateExpiresSoon',
      ].sort(),
    );
    for (const a of alerts) {
      expect(['critical', 'warning']).toContain(a.severity);
      expect(a.summary.length).toBeGreaterThan(10);
      expect(a.description).toContain('$value');
    }
  });

  it('recording rules follow level:metric:operations', () => {
    for (const r of recordingRules(PRODUCTION)) expect(r.record).toMatch(/^[a-z_]+:wsguard_[a-z_]+:[a-z0-9_]+$/);
  });

  it('every alert has a promtool firing case, a quiet or under-threshold case and a blip case', () => {
    for (const a of alerts) {
      const c = COVERED[a.alert];
      expect(c, a.alert).toBeDefined();
      expect(c!.firing, a.alert).toBeGreaterThan(0);
      expect(c!.quiet, a.alert).toBeGreaterThan(0);
      expect(c!.blip, a.alert).toBeGreaterThan(0);
    }
  });
});

describe('runbooks', () => {
  const panelTitles = new Set(ROWS.flatMap((r) => r.panels.map((p) => p.title)));
  for (const a of alertRules(PRODUCTION)) {
    it(`docs/runbooks/${a.alert}.md covers meaning, confirmation, causes, first actions and escalation`, () => {
      const path = join(ROOT, 'docs/runbooks', `${a.alert}.md`);
      expect(existsSync(path), path).toBe(true);
      const text = readFileSync(path, 'utf8');
      expect(text).toMatch(new RegExp(`^# ${a.alert}\\b`, 'm'));
      for (const h of ['What it means for users', 'Confirm it on the dashboard', 'Likely causes', 'First actions', 'When to escalate']) {
        expect(text, `${a.alert}: section "${h}"`).toContain(`## ${h}`);
      }
      expect(panelTitles.has(a.panel), a.panel).toBe(true);
      expect(text, `${a.alert} names its panel`).toContain(`"${a.panel}"`);
      expect(text, `${a.alert} suggests a wsguard command`).toMatch(/wsguard (probe|flood|storm|config|report|serve)/);
    });
  }
});
