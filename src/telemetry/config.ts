import { hostname } from 'node:os';
import { z } from 'zod';

/**
 * The `telemetry` section of wsguard's one config schema (the lead composes it as
 * `telemetry: telemetrySchema`). Units are in the names; every field has a default so that an
 * empty section is valid. Nested objects use `prefault` so that their inner defaults apply when the
 * whole object is omitted (zod 4 `default` returns the default as-is without parsing it). Every
 * leaf has a `.describe()`: docs/configuration.md is generated from them.
 */

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch (err) {
    // RangeError "Invalid time zone specified" is the only signal Intl gives.
    return !(err instanceof RangeError);
  }
}

/** Loopback names and addresses: 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** One rule a token's claims must satisfy to use the monitoring API. */
const adminClaimRule = z
  .object({
    claim: z.string().min(1).describe('Claim name, e.g. role, roles, is_staff, scope.'),
    value: z
      .union([z.string(), z.number(), z.boolean()])
      .describe(
        "Required value, matched exactly. An array claim matches when it contains it. Only the OAuth 'scope' claim is split on spaces (RFC 8693 §4.2): there one word must equal it.",
      ),
  })
  .strict();
export type AdminClaimRule = z.infer<typeof adminClaimRule>;

export const telemetrySchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('Off: the gateway gets the no-op observer and no admin listener (metrics, health, monitoring API) is opened.'),
    serviceName: z.string().min(1).default('wsguard').describe('service.name resource attribute (traces, target_info).'),
    // No default here: a default computed from hostname/pid would make the generated docs machine-specific.
    instanceId: z
      .string()
      .min(1)
      .optional()
      .describe('service.instance.id, telling replicas apart in traces and target_info. Default: <hostname>-<pid>.'),
    admin: z
      .object({
        host: z
          .string()
          .min(1)
          .default('127.0.0.1')
          .describe('Admin listener address: /metrics, /healthz, /readyz, /api/monitoring/…. Expose it to the scraper, never to clients.'),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .default(9464)
          .describe("Admin listener port (9464 is Prometheus' registered exporter port; 0 picks a free port)."),
      })
      .strict()
      .prefault({}),
    traces: z
      .object({
        otlpEndpoint: z
          .url()
          .optional()
          .describe(
            'OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces. Unset: traces are exported only if OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set.',
          ),
        sampleRatio: z
          .number()
          .min(0)
          .max(1)
          .default(1)
          .describe("Share of handshakes without a client traceparent that are traced; a client's sampling decision is always followed."),
        violationEventsPerSec: z
          .number()
          .int()
          .min(0)
          .default(10)
          .describe('Cap on rate-limit and backpressure span events per second, across all connections; the rest are only counted.'),
      })
      .strict()
      .prefault({}),
    monitoring: z
      .object({
        audience: z
          .string()
          .min(1)
          .default('wsguard-monitoring')
          .describe(
            'aud a monitoring API token must carry (same keys and issuer as client tokens). Client routes refuse tokens carrying it, ' +
              'so neither kind of token opens the other door; it must differ from auth.audience.',
          ),
        adminClaims: z
          .union([adminClaimRule, z.array(adminClaimRule).min(1)])
          .default([{ claim: 'role', value: 'admin' }])
          .transform((v) => (Array.isArray(v) ? v : [v]))
          .describe(
            'Claims that make a token an admin token for the monitoring API (any rule matches), e.g. [{claim: is_staff, value: true}].',
          ),
        timeZone: z
          .string()
          .default('UTC')
          .refine(isTimeZone, { message: 'must be an IANA time zone, e.g. Europe/Berlin' })
          .describe('IANA time zone whose midnight starts "today" for connections_today and the daily message counts.'),
        messagesPerMinuteWindowSec: z
          .number()
          .int()
          .min(1)
          .max(3600)
          .default(60)
          .describe('Trailing window of messages_per_minute, sampled once a second; the count is scaled to one minute.'),
        topOffendersCapacity: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(100)
          .describe('Client keys the in-memory top-offenders table keeps (space-saving); never exported as metric labels.'),
        statusPage: z
          .enum(['off', 'token', 'local'])
          .default('token')
          .describe(
            "The live status page at /status on the admin listener (docs/status-page.md). 'token': its data needs the admin JWT " +
              "(asked for by the page, kept in sessionStorage); 'local': loopback viewers need no token (development only; " +
              "refused unless telemetry.admin.host is a loopback address; client addresses are masked); 'off': no page, no sampling.",
          ),
      })
      .strict()
      .prefault({}),
    logs: z
      .object({
        level: z
          .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
          .default('info')
          .describe('Log level (JSON lines on stdout).'),
        rejectionSummaryIntervalMs: z
          .number()
          .int()
          .min(100)
          .default(10_000)
          .describe(
            'Rejection log flood control: per reason and interval, the first lines are logged, then one summary line with the count.',
          ),
        rejectionLinesPerInterval: z
          .number()
          .int()
          .min(0)
          .default(5)
          .describe('Rejection lines logged in full per reason and interval before the rest are only counted.'),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.monitoring.statusPage === 'local' && !isLoopbackHost(t.admin.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['monitoring', 'statusPage'],
        message: `'local' serves the status page without a token, so it needs a loopback telemetry.admin.host (127.0.0.1, ::1), not ${t.admin.host}`,
      });
    }
  })
  .prefault({});

export type TelemetryConfig = z.infer<typeof telemetrySchema>;
/** The section as written in a config file (everything optional). */
export type TelemetryConfigInput = z.input<typeof telemetrySchema>;

/** service.instance.id: the configured one, else `<hostname>-<pid>`. */
export function resolveInstanceId(config: Pick<TelemetryConfig, 'instanceId'>): string {
  return config.instanceId ?? `${hostname()}-${process.pid}`;
}
