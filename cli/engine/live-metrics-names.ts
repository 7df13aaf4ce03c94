/**
 * Every metric and attribute name the load generator exports while it runs (`--metrics-port`,
 * `--otlp-endpoint`), like src/telemetry/names.ts for the sidecar: the dashboard's "Load generator"
 * row, docs/cli.md and the tests follow this module. All names start `wsguard_loadgen_` so a flood
 * never mixes with the sidecar's own series in one Prometheus.
 *
 * The Prometheus exporter turns `.` into `_` and appends `_total` to monotonic sums, and adds no unit
 * suffix, so histogram instruments carry the unit in their own name.
 */
import { HANDSHAKE_DURATION_BUCKETS_SEC } from '../../src/telemetry/names.ts';

export const LOADGEN_INSTRUMENTS = {
  attempts: 'wsguard.loadgen.connection.attempts',
  opened: 'wsguard.loadgen.connections.opened',
  outcomes: 'wsguard.loadgen.outcomes',
  open: 'wsguard.loadgen.connections.open',
  messages: 'wsguard.loadgen.messages',
  messagesLost: 'wsguard.loadgen.messages.lost',
  bytes: 'wsguard.loadgen.bytes',
  roundTrip: 'wsguard.loadgen.round_trip_seconds',
  connectDuration: 'wsguard.loadgen.connect.duration_seconds',
} as const;

export type LoadgenInstrument = keyof typeof LOADGEN_INSTRUMENTS;

/** What a scrape shows, keyed like LOADGEN_INSTRUMENTS (histograms add _bucket/_sum/_count). */
export const LOADGEN_PROMETHEUS_NAMES: Readonly<Record<LoadgenInstrument, string>> = {
  attempts: 'wsguard_loadgen_connection_attempts_total',
  opened: 'wsguard_loadgen_connections_opened_total',
  outcomes: 'wsguard_loadgen_outcomes_total',
  open: 'wsguard_loadgen_connections_open',
  messages: 'wsguard_loadgen_messages_total',
  messagesLost: 'wsguard_loadgen_messages_lost_total',
  bytes: 'wsguard_loadgen_bytes_total',
  roundTrip: 'wsguard_loadgen_round_trip_seconds',
  connectDuration: 'wsguard_loadgen_connect_duration_seconds',
};

export const LOADGEN_DESCRIPTIONS: Readonly<Record<LoadgenInstrument, string>> = {
  attempts: 'Connection attempts (handshakes started)',
  opened: 'Connections that opened (101)',
  outcomes: 'Attempts and connections by how they ended (outcome: rejected.429, closed.1006, completed, …)',
  open: 'Connections open now',
  messages: 'Messages sent and received (direction)',
  messagesLost: 'Echoes never received; counted once the drain at the end of the run is over',
  bytes: 'Payload bytes sent and received (direction)',
  roundTrip: 'Round trip of a matched echo from its intended send time (coordinated-omission corrected)',
  connectDuration: 'Handshake time of connections that opened',
};

/**
 * Attribute keys. Every series carries the run id and the shard (`2/4`; `1/1` for a whole run), so
 * the shards of one distributed run add up with `sum by (run_id)`; nothing per IP, per user or per
 * worker thread (the threads of one process export their total).
 */
export const LOADGEN_ATTR = {
  runId: 'run_id',
  shard: 'shard',
  outcome: 'outcome',
  direction: 'direction',
} as const;

export const LOADGEN_DIRECTIONS = { sent: 'sent', received: 'received' } as const;

export const LOADGEN_SCOPE = 'wsguard-loadgen';

/**
 * Round-trip buckets (seconds), the OTel HTTP-duration style extended downwards: an echo on
 * loopback or in one zone takes 0.1–2 ms, which the semantic-convention buckets (from 5 ms) would
 * put in one bucket.
 */
export const ROUND_TRIP_BUCKETS_SEC: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
/** Handshake buckets (seconds): the sidecar's handshake histogram's, so the two rows compare bucket for bucket. */
export const CONNECT_BUCKETS_SEC: readonly number[] = HANDSHAKE_DURATION_BUCKETS_SEC;
