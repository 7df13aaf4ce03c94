/**
 * The Grafana dashboard, from a small typed builder: panels are declared with their queries and what
 * healthy/unhealthy looks like, the builder lays them out and writes Grafana's JSON model
 * (schemaVersion 39) and docs/dashboards.md from the same list.
 */
import { LOADGEN_ATTR as LA, LOADGEN_PROMETHEUS_NAMES as LG } from '../cli/engine/live-metrics-names.ts';
import { CPU_MODES, RUNTIME_ATTR } from '../src/telemetry/names.ts';
import { DRY_RUN, ENFORCED, eq, histogramBucket, histogramCount, L, M, R, reasonsRe, sel } from './promql.ts';

export interface Target {
  expr: string;
  legend: string;
}

export interface PanelSpec {
  title: string;
  /** What healthy looks like (Grafana shows it as the panel description). */
  healthy: string;
  unhealthy: string;
  unit: string;
  targets: Target[];
  stack?: boolean;
  /** grid columns out of 24 */
  width?: number;
}

export interface RowSpec {
  title: string;
  panels: PanelSpec[];
}

export const DS_VAR = 'datasource';
const DS = { type: 'prometheus', uid: `\${${DS_VAR}}` };
const RATE = '$__rate_interval';
const INSTANCE = `instance=~"$instance"`;
const ROUTE = `${L.route}=~"$route"`;
const CPU_MODE = RUNTIME_ATTR.cpuMode.replace(/\./g, '_');
/** The load generator's runs (`wsguard flood|storm --metrics-port/--otlp-endpoint`), by run id. */
export const RUN_ID_VAR = 'run_id';
const RUN = `${LA.runId}=~"$${RUN_ID_VAR}"`;

const sumRate = (by: string, s: string) => `sum${by ? ` by (${by})` : ''} (rate(${s}[${RATE}]))`;
const quantiles = (metric: string, ...matchers: string[]): Target[] =>
  [0.5, 0.9, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (le) (rate(${sel(histogramBucket(metric), ...matchers)}[${RATE}])))`,
    legend: `p${q * 100}`,
  }));

export const ROWS: RowSpec[] = [
  {
    title: 'Connections',
    panels: [
      {
        title: 'Active connections',
        healthy: 'A smooth daily curve; the instances carry similar shares and the sum follows your users.',
        unhealthy:
          'A cliff to zero (a replica or the app went away; see WsguardDown), one instance far above the others (sticky load balancing), or a sawtooth (clients reconnecting in a loop).',
        unit: 'short',
        targets: [
          { expr: `sum by (instance) (${sel(M.connectionsActive, INSTANCE, ROUTE)})`, legend: '{{instance}}' },
          { expr: `sum (${sel(M.connectionsActive, INSTANCE, ROUTE)})`, legend: 'total' },
        ],
      },
      {
        title: 'Accepts, rejects and closes per second',
        healthy: 'Accepts and closes track each other; enforced rejections are a small fraction of accepts.',
        unhealthy:
          'Accepts several times their usual level (WsguardConnectionSpike), rejects above accepts (an attack or a misconfigured client fleet), closes far above accepts (mass disconnect).',
        unit: 'ops',
        targets: [
          { expr: sumRate('', sel(M.connectionsAccepted, INSTANCE, ROUTE)), legend: 'accepted' },
          { expr: sumRate('', sel(M.connectionsRejected, INSTANCE, ROUTE, eq(L.decision, ENFORCED))), legend: 'rejected' },
          { expr: sumRate('', sel(M.connectionsClosed, INSTANCE, ROUTE)), legend: 'closed' },
        ],
      },
    ],
  },
  {
    title: 'Admission',
    panels: [
      {
        title: 'Rejections by reason (enforced)',
        healthy: 'Near zero, with a trickle of auth (expired tokens) and not_found (scanners).',
        unhealthy:
          'One reason dominating: auth (WsguardAuthFailureSpike), origin (WsguardOriginRejectionsSpike), conn_limit/attempt_limit (WsguardRateLimitViolationsHigh, WsguardReconnectStorm), upstream_* (WsguardUpstreamUnavailable), overloaded/auth_unavailable/store_unavailable (WsguardNotReady).',
        unit: 'ops',
        stack: true,
        targets: [{ expr: sumRate(L.reason, sel(M.connectionsRejected, INSTANCE, ROUTE, eq(L.decision, ENFORCED))), legend: '{{reason}}' }],
      },
      {
        title: 'Rejections by reason (dry run)',
        healthy: 'Empty unless a policy runs with dryRun: true; then it shows what enforcing would refuse.',
        unhealthy: 'A dry-run reason at a level you would not accept from the enforced panel: do not switch that policy to enforced yet.',
        unit: 'ops',
        stack: true,
        targets: [{ expr: sumRate(L.reason, sel(M.connectionsRejected, INSTANCE, ROUTE, eq(L.decision, DRY_RUN))), legend: '{{reason}}' }],
      },
      {
        title: 'Rate-limit violations',
        healthy: 'Zero or a few per minute: a well-behaved client stays under messages.rate and limits.*.',
        unhealthy:
          'A steady stream of messages over the limit (drop or close with 4129) or of 429s (conn_limit, attempt_limit): an abusive or buggy client, or limits set below real usage.',
        unit: 'ops',
        stack: true,
        targets: [
          { expr: sumRate(L.action, sel(M.messagesRateLimited, INSTANCE, ROUTE)), legend: 'messages {{action}}' },
          {
            expr: sumRate(
              L.reason,
              sel(M.connectionsRejected, INSTANCE, ROUTE, reasonsRe('conn_limit', 'attempt_limit'), eq(L.decision, ENFORCED)),
            ),
            legend: '429 {{reason}}',
          },
        ],
      },
      {
        title: 'Handshake latency',
        healthy: 'p99 of accepted handshakes in tens of milliseconds (it includes the upstream dial).',
        unhealthy: 'p99 near server.handshakeTimeoutMs (504s follow), or a step up after a deploy of the app or of the identity provider.',
        unit: 's',
        targets: quantiles(M.handshakeDuration, INSTANCE, ROUTE, eq(L.outcome, 'accepted')),
      },
    ],
  },
  {
    title: 'Traffic',
    panels: [
      {
        title: 'Messages per second',
        healthy: 'Both directions follow the active connections; the ratio between them is stable for your protocol.',
        unhealthy:
          'One direction flat while the other moves (a stuck upstream or client side), or a jump with no matching rise in connections (a chatty client).',
        unit: 'ops',
        targets: [{ expr: sumRate(L.direction, sel(M.messages, INSTANCE, ROUTE)), legend: '{{direction}}' }],
      },
      {
        title: 'Bytes per second',
        healthy: 'Proportional to the messages panel: the average message size stays put.',
        unhealthy: 'Bytes rising faster than messages (large payloads: check messages.maxBytes and backpressure).',
        unit: 'Bps',
        targets: [{ expr: sumRate(L.direction, sel(M.messageBytes, INSTANCE, ROUTE)), legend: '{{direction}}' }],
      },
      {
        title: 'Connection duration percentiles',
        healthy: 'p50 in minutes or hours, as long as your clients stay.',
        unhealthy:
          'p50 under a few seconds: clients connect and drop in a loop (WsguardReconnectStorm), or connections are closed by a policy right after open.',
        unit: 's',
        targets: [
          ...quantiles(M.connectionDuration, INSTANCE, ROUTE),
          { expr: sumRate('', sel(histogramCount(M.connectionDuration), INSTANCE, ROUTE)), legend: 'closed/s' },
        ],
      },
      {
        title: 'Close codes by range',
        healthy: 'Mostly normal closes (1000, 1001 during deploys).',
        unhealthy:
          'Failures (1006 abnormal, 1011 internal, 1014 bad gateway) or policy closes (4xxx: 4100/4101 limits, 4129 message rate, 4102 backpressure, 4200 token expired) rising.',
        unit: 'ops',
        stack: true,
        targets: [
          { expr: sumRate('', sel(M.connectionsClosed, INSTANCE, ROUTE, `${L.code}=~"1000|1001"`)), legend: 'normal (1000, 1001)' },
          {
            expr: sumRate('', sel(M.connectionsClosed, INSTANCE, ROUTE, `${L.code}=~"1006|1011|1014"`)),
            legend: 'failure (1006, 1011, 1014)',
          },
          { expr: sumRate('', sel(M.connectionsClosed, INSTANCE, ROUTE, `${L.code}=~"4..."`)), legend: 'policy (4xxx)' },
          { expr: sumRate('', sel(M.connectionsClosed, INSTANCE, ROUTE, `${L.code}!~"1000|1001|1006|1011|1014|4..."`)), legend: 'other' },
        ],
      },
    ],
  },
  {
    title: 'Dependencies',
    panels: [
      {
        title: 'Upstream errors by kind',
        healthy: 'Empty.',
        unhealthy:
          'refused/upstream_unavailable (the app is down), timeout/upstream_timeout (slow), protocol/closed (the app or the gateway broke the leg): WsguardUpstreamUnavailable.',
        unit: 'ops',
        stack: true,
        targets: [{ expr: sumRate(L.kind, sel(M.upstreamErrors, INSTANCE, ROUTE)), legend: '{{kind}}' }],
      },
      {
        title: 'Backpressure episodes',
        healthy: 'Occasional pauses; no closes.',
        unhealthy:
          'Closes (4102) at a steady rate: clients on bad networks or an upstream that cannot keep up (WsguardBackpressureCloses).',
        unit: 'ops',
        targets: [
          { expr: sumRate(`${L.direction}, ${L.action}`, sel(M.backpressure, INSTANCE, ROUTE)), legend: '{{direction}} {{action}}' },
        ],
      },
      {
        title: 'JWKS refreshes',
        healthy: 'A success every auth.jwksRefreshSec; no failures (or no series at all with a static secret or keys).',
        unhealthy: 'Failures with no success for longer than the refresh interval: keys go stale and new kids are refused.',
        unit: 'short',
        targets: [{ expr: `sum by (${L.outcome}) (increase(${sel(M.jwksRefresh, INSTANCE)}[${RATE}]))`, legend: '{{outcome}}' }],
      },
      {
        title: 'Limit-store health',
        healthy: 'degraded 0, no errors; tracked clients well below limits.maxTrackedKeys.',
        unhealthy:
          'degraded 1 (WsguardLimitStoreDegraded), errors per second above zero, or tracked clients near the cap (store_full 503s follow).',
        unit: 'short',
        targets: [
          { expr: `max by (${L.store}) (${sel(M.limitStoreDegraded, INSTANCE)})`, legend: 'degraded {{store}}' },
          { expr: sumRate(L.store, sel(M.limitStoreErrors, INSTANCE)), legend: 'errors/s {{store}}' },
          { expr: `sum (${sel(M.trackedClients, INSTANCE)})`, legend: 'tracked clients' },
        ],
      },
      {
        title: 'TLS certificates',
        healthy: 'Days left well above two weeks for every server name; reloads are successes (or no series: server.tls is off).',
        unhealthy:
          'Days left under 14 (WsguardCertificateExpiresSoon), or reload errors: a new pair was refused and the old one still serves.',
        unit: 'short',
        targets: [
          {
            expr: `min by (${L.serverName}) (${sel(M.tlsCertificateExpiry, INSTANCE)} - time()) / 86400`,
            legend: 'days left {{server_name}}',
          },
          { expr: `sum by (${L.outcome}) (increase(${sel(M.tlsReload, INSTANCE)}[${RATE}]))`, legend: 'reloads {{outcome}}' },
        ],
      },
    ],
  },
  {
    title: 'Process',
    panels: [
      {
        title: 'CPU',
        healthy: `Well under one core per instance (Node runs the relay on one thread); ${CPU_MODES.join(' and ')} time in a stable ratio.`,
        unhealthy: 'One instance pinned near 1 core: latency rises for every connection on it (see the event-loop panel).',
        unit: 'percentunit',
        stack: true,
        targets: [{ expr: sumRate(`instance, ${CPU_MODE}`, sel(R.cpuTime, INSTANCE)), legend: `{{instance}} {{${CPU_MODE}}}` }],
      },
      {
        title: 'Memory',
        healthy: 'Resident memory flat over hours at a given connection count; heap used saw-toothing with GC.',
        unhealthy: 'Steady growth at a flat connection count (a leak), or heap used near the heap limit.',
        unit: 'bytes',
        targets: [
          { expr: `sum by (instance) (${sel(R.memoryUsage, INSTANCE)})`, legend: '{{instance}} rss' },
          { expr: `sum by (instance) (${sel(R.heapUsed, INSTANCE)})`, legend: '{{instance}} heap used' },
        ],
      },
      {
        title: 'Event-loop delay',
        healthy: 'p99 of a few to tens of milliseconds.',
        unhealthy: 'p99 above 100 ms for minutes (WsguardEventLoopLagHigh): the process is CPU-bound.',
        unit: 's',
        targets: [
          { expr: `max by (instance) (${sel(R.eventLoopDelayP99, INSTANCE)})`, legend: '{{instance}} p99' },
          { expr: `max by (instance) (${sel(R.eventLoopDelayMax, INSTANCE)})`, legend: '{{instance}} max' },
        ],
      },
      {
        title: 'File descriptors and pending handshakes',
        healthy: 'Open fds well below the limit (each connection costs two: client and upstream); pending handshakes near zero.',
        unhealthy:
          'Open fds within server.minFreeFds of the limit (503 overloaded, /readyz not ready: WsguardNotReady), or pending handshakes piling up (slow upstream dial or a slowloris).',
        unit: 'short',
        targets: [
          { expr: `max by (instance) (${sel(M.openFds, INSTANCE)})`, legend: '{{instance}} open fds' },
          { expr: `max by (instance) (${sel(M.fdLimit, INSTANCE)})`, legend: '{{instance}} fd limit' },
          { expr: `sum by (instance) (${sel(M.handshakesPending, INSTANCE)})`, legend: '{{instance}} pending handshakes' },
        ],
      },
    ],
  },
  {
    // The CLI's own view of a run, beside the sidecar's rows: the shards of one run add up by run_id.
    title: 'Load generator',
    panels: [
      {
        title: 'Load generator: connections',
        healthy: 'Open connections at the level the run asked for; attempts and opens per second equal while it ramps.',
        unhealthy:
          'Attempts well above opens (the target refuses: see the outcomes panel and the Admission row), or open connections falling during the hold (the target closes them).',
        unit: 'short',
        targets: [
          { expr: `sum by (${LA.runId}) (${sel(LG.open, RUN)})`, legend: '{{run_id}} open' },
          { expr: sumRate(LA.runId, sel(LG.attempts, RUN)), legend: '{{run_id}} attempts/s' },
          { expr: sumRate(LA.runId, sel(LG.opened, RUN)), legend: '{{run_id}} opened/s' },
        ],
      },
      {
        title: 'Load generator: outcomes per second',
        healthy: 'Only `completed` at the end of the run, or the refusals the test set out to provoke (e.g. rejected.429).',
        unhealthy:
          'error.* (the generator or the network), closed.1006 (connections dropped without a close frame), or refusals the test did not expect.',
        unit: 'ops',
        stack: true,
        targets: [{ expr: sumRate(LA.outcome, sel(LG.outcomes, RUN)), legend: '{{outcome}}' }],
      },
      {
        title: 'Load generator: messages per second',
        healthy: 'Received follows sent (an echo target), at the rate the run asked for.',
        unhealthy:
          'Received below sent (the target drops or rate-limits: compare the Traffic row), or sent below the asked rate (a saturated generator: the run report says so).',
        unit: 'ops',
        targets: [{ expr: sumRate(`${LA.runId}, ${LA.direction}`, sel(LG.messages, RUN)), legend: '{{run_id}} {{direction}}' }],
      },
      {
        title: 'Load generator: round trip and connect time',
        healthy: "Round-trip p99 within the run's threshold; connect time p99 a few milliseconds in one zone.",
        unhealthy:
          'Round-trip p99 climbing while the rate is flat (the target or the sidecar queues), or connect time in hundreds of ms (slow admission or upstream dial).',
        unit: 's',
        targets: [
          ...quantiles(LG.roundTrip, RUN).map((t) => ({ ...t, legend: `round trip ${t.legend}` })),
          ...quantiles(LG.connectDuration, RUN)
            .filter((t) => t.legend !== 'p90')
            .map((t) => ({ ...t, legend: `connect ${t.legend}` })),
        ],
      },
    ],
  },
];

export const ALERT_ANNOTATION_EXPR = 'ALERTS{alertname=~"Wsguard.*", alertstate="firing"}';

interface GridPos {
  x: number;
  y: number;
  w: number;
  h: number;
}

const PANEL_HEIGHT = 8;

export function buildDashboard(rows: RowSpec[] = ROWS): Record<string, unknown> {
  let id = 0;
  let y = 0;
  const panels: unknown[] = [];
  for (const row of rows) {
    panels.push({ id: ++id, type: 'row', title: row.title, collapsed: false, gridPos: { x: 0, y, w: 24, h: 1 }, panels: [] });
    y += 1;
    let x = 0;
    for (const p of row.panels) {
      const w = p.width ?? 12;
      if (x + w > 24) {
        x = 0;
        y += PANEL_HEIGHT;
      }
      const gridPos: GridPos = { x, y, w, h: PANEL_HEIGHT };
      x += w;
      panels.push({
        id: ++id,
        type: 'timeseries',
        title: p.title,
        description: `Healthy: ${p.healthy} Unhealthy: ${p.unhealthy}`,
        datasource: DS,
        gridPos,
        fieldConfig: {
          defaults: {
            unit: p.unit,
            custom: { fillOpacity: p.stack ? 30 : 10, stacking: { mode: p.stack ? 'normal' : 'none', group: 'A' } },
          },
          overrides: [],
        },
        options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
        targets: p.targets.map((t, i) => ({
          refId: String.fromCharCode(65 + i),
          datasource: DS,
          expr: t.expr,
          legendFormat: t.legend,
          range: true,
        })),
      });
    }
    if (x > 0) y += PANEL_HEIGHT;
  }
  const labelVar = (name: string, query: string) => ({
    name,
    label: name,
    type: 'query',
    datasource: DS,
    query: { query, refId: `${name}-var` },
    definition: query,
    refresh: 2,
    includeAll: true,
    multi: true,
    allValue: '.*',
    current: { text: 'All', value: '$__all' },
    sort: 1,
  });
  return {
    uid: 'wsguard',
    title: 'wsguard',
    description:
      'wsguard WebSocket sidecar: connections, admission, traffic, dependencies, process (generated by ops/generate.ts; see docs/dashboards.md).',
    tags: ['wsguard', 'websocket'],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-1h', to: 'now' },
    annotations: {
      list: [
        {
          builtIn: 1,
          name: 'Annotations & Alerts',
          type: 'dashboard',
          datasource: { type: 'grafana', uid: '-- Grafana --' },
          enable: true,
          hide: true,
          iconColor: 'rgba(0, 211, 255, 1)',
        },
        {
          name: 'wsguard alerts',
          datasource: DS,
          enable: true,
          iconColor: 'red',
          expr: ALERT_ANNOTATION_EXPR,
          step: '30s',
          titleFormat: '{{alertname}}',
          textFormat: '{{severity}} on {{instance}}{{job}}',
          useValueForTime: false,
        },
      ],
    },
    templating: {
      list: [
        { name: DS_VAR, label: 'Prometheus', type: 'datasource', query: 'prometheus', refresh: 1, current: {} },
        labelVar('instance', `label_values(${M.connectionsAccepted}, instance)`),
        labelVar('route', `label_values(${sel(M.connectionsAccepted, INSTANCE)}, ${L.route})`),
        labelVar(RUN_ID_VAR, `label_values(${LG.attempts}, ${LA.runId})`),
      ],
    },
    panels,
  };
}

/** docs/dashboards.md, from the same panel list. */
export function dashboardsMarkdown(rows: RowSpec[] = ROWS): string {
  const out: string[] = [
    '# The Grafana dashboard',
    '',
    '<!-- Generated by `npm run ops:generate` from ops/dashboard.ts; edit that file, not this one. -->',
    '',
    '`grafana/wsguard.json` is one provisionable dashboard (uid `wsguard`). Variables: `datasource` (any',
    'Prometheus), `instance` and `route` (multi-value, "All" by default; read from',
    `\`${M.connectionsAccepted}\`, which every route has from its start), and \`${RUN_ID_VAR}\` for the "Load generator" row`,
    `(the CLI's own metrics while a run exports them, docs/cli.md "Live metrics"; read from \`${LG.attempts}\`). Firing wsguard alerts are drawn as`,
    `annotations over every panel (\`${ALERT_ANNOTATION_EXPR}\`). Load it with the provisioning example in`,
    '`grafana/provisioning/` (see the README, "Operate it"). Queries use `$__rate_interval`; the e2e test',
    '(test/ops/prometheus-e2e.test.ts) runs every query below against a real Prometheus.',
    '',
  ];
  for (const row of rows) {
    out.push(`## ${row.title}`, '');
    for (const p of row.panels) {
      out.push(
        `### ${p.title}`,
        '',
        `**Healthy:** ${p.healthy}`,
        '',
        `**Unhealthy:** ${p.unhealthy}`,
        '',
        '| legend | query |',
        '|---|---|',
      );
      for (const t of p.targets) out.push(`| ${t.legend.replace(/\|/g, '\\|')} | \`${t.expr.replace(/\|/g, '\\|')}\` |`);
      out.push('');
    }
  }
  return out.join('\n');
}
