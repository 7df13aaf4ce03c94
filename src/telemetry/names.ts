/**
 * Every metric, attribute, span and span-event name wsguard emits, and the values attributes may
 * take. This is the only module that spells these strings (docs/metrics.md): dashboards,
 * alerts, the CLI's metric checks and docs/metrics.md follow it, and test/telemetry/names.test.ts
 * scrapes /metrics to prove the Prometheus names below are exactly what a scrape shows.
 *
 * The Prometheus exporter on the 0.2xx line turns `.` into `_`, appends `_total` to monotonic sums
 * and adds no unit suffix, so instruments carry the unit in their own name
 * (`wsguard.connection.duration_seconds`, unit `s`).
 */
import { ERROR_CODES } from '../errors.ts';
import { CLOSE, STANDARD_CLOSE_CODES } from '../relay/close-codes.ts';

/** OpenTelemetry instrument names (what the code creates). */
export const INSTRUMENTS = {
  connectionsActive: 'wsguard.connections.active',
  connectionsAccepted: 'wsguard.connections.accepted',
  connectionsRejected: 'wsguard.connections.rejected',
  connectionsClosed: 'wsguard.connections.closed',
  connectionDuration: 'wsguard.connection.duration_seconds',
  handshakeDuration: 'wsguard.handshake.duration_seconds',
  messages: 'wsguard.messages',
  messageBytes: 'wsguard.message.bytes',
  messagesRateLimited: 'wsguard.messages.rate_limited',
  controlFramesLimited: 'wsguard.control_frames.rate_limited',
  backpressure: 'wsguard.backpressure',
  upstreamErrors: 'wsguard.upstream.errors',
  jwksRefresh: 'wsguard.jwks.refresh',
  limitStoreErrors: 'wsguard.limit_store.errors',
  limitStoreDegraded: 'wsguard.limit_store.degraded',
  trackedClients: 'wsguard.tracked_clients',
  handshakesPending: 'wsguard.handshakes.pending',
  tlsReload: 'wsguard.tls.reload',
  tlsCertificateExpiry: 'wsguard.tls.certificate.expiry_timestamp_seconds',
  /**
   * The Prometheus process collector's names, which SREs already alert on (the semantic-convention
   * process.open_file_descriptor.count would scrape as a `_count` gauge, which promtool rejects).
   */
  openFds: 'process.open_fds',
  fdLimit: 'process.max_fds',
} as const;

export type InstrumentKey = keyof typeof INSTRUMENTS;

/** The Prometheus names a scrape must show (docs/metrics.md), keyed like INSTRUMENTS. */
export const PROMETHEUS_NAMES: Readonly<Record<InstrumentKey, string>> = {
  connectionsActive: 'wsguard_connections_active',
  connectionsAccepted: 'wsguard_connections_accepted_total',
  connectionsRejected: 'wsguard_connections_rejected_total',
  connectionsClosed: 'wsguard_connections_closed_total',
  connectionDuration: 'wsguard_connection_duration_seconds',
  handshakeDuration: 'wsguard_handshake_duration_seconds',
  messages: 'wsguard_messages_total',
  messageBytes: 'wsguard_message_bytes_total',
  messagesRateLimited: 'wsguard_messages_rate_limited_total',
  controlFramesLimited: 'wsguard_control_frames_rate_limited_total',
  backpressure: 'wsguard_backpressure_total',
  upstreamErrors: 'wsguard_upstream_errors_total',
  jwksRefresh: 'wsguard_jwks_refresh_total',
  limitStoreErrors: 'wsguard_limit_store_errors_total',
  limitStoreDegraded: 'wsguard_limit_store_degraded',
  trackedClients: 'wsguard_tracked_clients',
  handshakesPending: 'wsguard_handshakes_pending',
  tlsReload: 'wsguard_tls_reload_total',
  tlsCertificateExpiry: 'wsguard_tls_certificate_expiry_timestamp_seconds',
  openFds: 'process_open_fds',
  fdLimit: 'process_max_fds',
};

/** Attribute keys (OTel form; identical in Prometheus form since none contains a dot). */
export const ATTR = {
  route: 'route',
  reason: 'reason',
  decision: 'decision',
  code: 'code',
  initiator: 'initiator',
  outcome: 'outcome',
  direction: 'direction',
  action: 'action',
  kind: 'kind',
  store: 'store',
  /** `default` or an SNI name from the config: bounded by the config, never by clients. */
  serverName: 'server_name',
} as const;

/** Which attributes each contract metric carries (docs/metrics.md; checked against a scrape). */
export const METRIC_ATTRIBUTES: Readonly<Record<InstrumentKey, readonly string[]>> = {
  connectionsActive: [ATTR.route],
  connectionsAccepted: [ATTR.route],
  connectionsRejected: [ATTR.route, ATTR.reason, ATTR.decision],
  connectionsClosed: [ATTR.route, ATTR.code, ATTR.initiator],
  connectionDuration: [ATTR.route],
  handshakeDuration: [ATTR.route, ATTR.outcome],
  messages: [ATTR.route, ATTR.direction],
  messageBytes: [ATTR.route, ATTR.direction],
  messagesRateLimited: [ATTR.route, ATTR.action],
  controlFramesLimited: [ATTR.route, ATTR.direction],
  backpressure: [ATTR.route, ATTR.direction, ATTR.action],
  upstreamErrors: [ATTR.route, ATTR.kind],
  jwksRefresh: [ATTR.outcome],
  limitStoreErrors: [ATTR.store],
  limitStoreDegraded: [ATTR.store],
  trackedClients: [],
  handshakesPending: [],
  tlsReload: [ATTR.outcome],
  tlsCertificateExpiry: [ATTR.serverName],
  openFds: [],
  fdLimit: [],
};

/** Handshake rejection reasons (docs/metrics.md); anything else is reported as `other`. */
export const REASONS = [
  'origin',
  'auth',
  'conn_limit',
  'attempt_limit',
  'bad_request',
  'not_found',
  'unsupported_version',
  'upstream_unavailable',
  'upstream_timeout',
  'handshake_timeout',
  'draining',
  'store_unavailable',
  'pending_limit',
  'overloaded',
  // the limit store is at limits.maxTrackedKeys and the client is new.
  'store_full',
  // no JWKS could be loaded, so tokens cannot be checked (a gateway fault).
  'auth_unavailable',
  // A policy or the gateway failed unexpectedly (GatewayError 'internal').
  'internal',
] as const;
export type Reason = (typeof REASONS)[number];

export const OTHER = 'other';
/** The route label of a request no route matched (404): one value, whatever path a scanner tries. */
export const UNROUTED = 'unrouted';
export const ACCEPTED = 'accepted';
/** The client went away before the handshake finished (uWS onAborted): neither accepted nor rejected. */
export const CLIENT_ABORT = 'client_abort';
/** Handshake outcomes: accepted, client_abort or one of the reasons. */
export const OUTCOMES = [ACCEPTED, CLIENT_ABORT, ...REASONS, OTHER] as const;
export type HandshakeOutcome = (typeof OUTCOMES)[number];
/** How a handshake ends without a connection: a rejection's reason or the client's abort. */
export type EndOutcome = Exclude<HandshakeOutcome, typeof ACCEPTED>;
export const DECISIONS = ['enforced', 'dry_run'] as const;
export type Decision = (typeof DECISIONS)[number];
export const INITIATORS = ['client', 'upstream', 'gateway'] as const;
export type Initiator = (typeof INITIATORS)[number];
export const DIRECTIONS = ['client_to_upstream', 'upstream_to_client'] as const;
export type Direction = (typeof DIRECTIONS)[number];
export const RATE_LIMIT_ACTIONS = ['drop', 'close'] as const;
export type RateLimitAction = (typeof RATE_LIMIT_ACTIONS)[number];
export const BACKPRESSURE_ACTIONS = ['pause', 'close'] as const;
export type BackpressureAction = (typeof BACKPRESSURE_ACTIONS)[number];
/**
 * Upstream failure kinds (docs/metrics.md). A dial: `refused` (nothing listens), `timeout`,
 * `handshake` (anything but a valid 101). An open leg: `protocol` (the gateway failed it: a frame
 * that breaks RFC 6455, a message too big, invalid UTF-8), `control_flood` (pings/pongs over
 * messages.controlFramesPerSec), `abnormal_close` (TCP ended without a close frame, 1006).
 */
export const UPSTREAM_ERROR_KINDS = ['refused', 'timeout', 'handshake', 'protocol', 'control_flood', 'abnormal_close'] as const;
export type UpstreamErrorKind = (typeof UPSTREAM_ERROR_KINDS)[number];
export const JWKS_OUTCOMES = ['success', 'failure'] as const;
export const LIMIT_STORES = ['memory', 'redis'] as const;
/** A certificate reload: swapped in, refused (the old pairs keep serving), or the files had not changed. */
export const TLS_RELOAD_OUTCOMES = ['success', 'error', 'unchanged'] as const;
export type TlsReloadOutcome = (typeof TLS_RELOAD_OUTCOMES)[number];

/**
 * Close codes kept as their own label value: the standard ones (RFC 6455 §7.4.1), the ones the
 * error catalogue sends and wsguard's own (docs/contracts.md). A client may send any code in
 * 3000–4999, so any other code is folded into `other` to keep the label set bounded.
 */
export const CLOSE_CODES: readonly number[] = [
  ...new Set([...STANDARD_CLOSE_CODES, ...Object.values(CLOSE), ...Object.values(ERROR_CODES).map((info) => info.closeCode)]),
].sort((a, b) => a - b);

/** At most this many distinct route values; later ones are reported as `other`. */
export const MAX_ROUTES = 64;

/**
 * Every label name a scrape may show, contract metrics, runtime metrics and target_info included.
 * test/telemetry/names.test.ts fails if a scrape shows any other.
 */
export const RUNTIME_ATTR = {
  cpuMode: 'cpu.mode',
  heapSpace: 'v8js.heap.space.name',
} as const;

export const RESOURCE_ATTR = {
  serviceName: 'service.name',
  serviceVersion: 'service.version',
  serviceInstanceId: 'service.instance.id',
} as const;

/** Node runtime health under OpenTelemetry semantic-convention names (nodejs.*, v8js.*, process.*). */
export const RUNTIME_INSTRUMENTS = {
  eventLoopDelayMin: 'nodejs.eventloop.delay.min',
  eventLoopDelayMax: 'nodejs.eventloop.delay.max',
  eventLoopDelayMean: 'nodejs.eventloop.delay.mean',
  eventLoopDelayStddev: 'nodejs.eventloop.delay.stddev',
  eventLoopDelayP50: 'nodejs.eventloop.delay.p50',
  eventLoopDelayP90: 'nodejs.eventloop.delay.p90',
  eventLoopDelayP99: 'nodejs.eventloop.delay.p99',
  eventLoopUtilization: 'nodejs.eventloop.utilization',
  heapUsed: 'v8js.memory.heap.used',
  heapLimit: 'v8js.memory.heap.limit',
  memoryUsage: 'process.memory.usage',
  cpuTime: 'process.cpu.time',
} as const;

export const RUNTIME_PROMETHEUS_NAMES: Readonly<Record<keyof typeof RUNTIME_INSTRUMENTS, string>> = {
  eventLoopDelayMin: 'nodejs_eventloop_delay_min',
  eventLoopDelayMax: 'nodejs_eventloop_delay_max',
  eventLoopDelayMean: 'nodejs_eventloop_delay_mean',
  eventLoopDelayStddev: 'nodejs_eventloop_delay_stddev',
  eventLoopDelayP50: 'nodejs_eventloop_delay_p50',
  eventLoopDelayP90: 'nodejs_eventloop_delay_p90',
  eventLoopDelayP99: 'nodejs_eventloop_delay_p99',
  eventLoopUtilization: 'nodejs_eventloop_utilization',
  heapUsed: 'v8js_memory_heap_used',
  heapLimit: 'v8js_memory_heap_limit',
  memoryUsage: 'process_memory_usage',
  cpuTime: 'process_cpu_time_total',
};

export const CPU_MODES = ['user', 'system'] as const;

/** The series the exporter adds for the resource (service name, version, instance). */
export const TARGET_INFO = 'target_info';

/** Label names (Prometheus form) allowed on any series of a scrape. */
export const ALLOWED_LABELS: readonly string[] = [
  ...Object.values(ATTR),
  'le', // histogram bucket bound
  ...Object.values(RUNTIME_ATTR).map((a) => a.replace(/\./g, '_')),
];

/** Labels target_info alone may carry (resource attributes, never per-connection data). */
export const TARGET_INFO_LABELS: readonly string[] = [
  ...Object.values(RESOURCE_ATTR).map((a) => a.replace(/\./g, '_')),
  'telemetry_sdk_language',
  'telemetry_sdk_name',
  'telemetry_sdk_version',
  'job',
  'instance',
];

/** Connection duration buckets (seconds): sub-second flaps up to sessions of a working day. */
export const CONNECTION_DURATION_BUCKETS_SEC: readonly number[] = [
  0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400,
];
/** Handshake duration buckets (seconds): includes the upstream dial. */
export const HANDSHAKE_DURATION_BUCKETS_SEC: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Span and span-event names and attributes (traces). */
export const SPANS = {
  handshake: 'wsguard.handshake',
  upstreamDial: 'wsguard.upstream.dial',
  connection: 'wsguard.connection',
  rateLimitedEvent: 'wsguard.message.rate_limited',
  backpressureEvent: 'wsguard.backpressure',
} as const;

export const SPAN_ATTR = {
  route: 'wsguard.route',
  outcome: 'wsguard.handshake.outcome',
  policy: 'wsguard.handshake.policy',
  decision: 'wsguard.handshake.decision',
  dialError: 'wsguard.upstream.error',
  closeCode: 'websocket.close.code',
  initiator: 'wsguard.close.initiator',
  durationSec: 'wsguard.connection.duration_seconds',
  messagesIn: 'wsguard.messages.client_to_upstream',
  messagesOut: 'wsguard.messages.upstream_to_client',
  action: 'wsguard.action',
  eventsDropped: 'wsguard.rate_limited.events_dropped',
  /** OTel semantic conventions (server.*): the upstream a dial span went to. */
  serverAddress: 'server.address',
  serverPort: 'server.port',
} as const;

/** Instrumentation scope (meter and tracer name). */
export const SCOPE = 'wsguard';
