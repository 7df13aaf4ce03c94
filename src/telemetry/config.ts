import { hostname } from 'node:os';
import { z } from 'zod';

/**
 * The `telemetry` section of wsguard's one config schema (the lead composes it as
 * `telemetry: telemetrySchema`). Units are in the names; every field has a default so that an
 * empty section is valid. Nested objects use `prefault` so that their inner defaults apply when the
 * whole object is omitted (zod 4 `default` returns the default as-is without parsing it).
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

/** One rule a token's claims must satisfy to use the monitoring API. */
const adminClaimRule = z.object({
  /** Claim name, e.g. `role`, `roles`, `is_staff`, `scope`. */
  claim: z.string().min(1),
  /**
   * Required value. A claim holding an array matches when it contains the value; a claim holding a
   * space-separated string (OAuth `scope`) matches when one of its words equals the value.
   */
  value: z.union([z.string(), z.number(), z.boolean()]),
}).strict();
export type AdminClaimRule = z.infer<typeof adminClaimRule>;

export const telemetrySchema = z
  .object({
    /** Off: the gateway gets the no-op observer and no admin listener is opened. */
    enabled: z.boolean().default(true),
    serviceName: z.string().min(1).default('wsguard'),
    /** Distinguishes replicas in traces and target_info; defaults to `<hostname>-<pid>`. */
    instanceId: z
      .string()
      .min(1)
      .default(() => `${hostname()}-${process.pid}`),
    /** Admin listener: /metrics, /healthz, /readyz and the monitoring API. Never the public port. */
    admin: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        /** 9464 is Prometheus' registered exporter port; 0 picks a free port (tests). */
        port: z.number().int().min(0).max(65535).default(9464),
      })
      .strict()
      .prefault({}),
    traces: z
      .object({
        /**
         * OTLP/HTTP traces endpoint, e.g. http://collector:4318/v1/traces. When absent, traces are
         * exported only if OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set.
         */
        otlpEndpoint: z.url().optional(),
        /** Ratio of root handshakes sampled; a client's sampled traceparent is always honoured. */
        sampleRatio: z.number().min(0).max(1).default(1),
        /** Cap on rate-limit / backpressure span events per second across all connections. */
        violationEventsPerSec: z.number().int().min(0).default(10),
      })
      .strict()
      .prefault({}),
    monitoring: z
      .object({
        /** A token passes when any rule matches, e.g. [{claim:'role',value:'admin'},{claim:'is_staff',value:true}]. */
        adminClaims: z
          .union([adminClaimRule, z.array(adminClaimRule).min(1)])
          .default([{ claim: 'role', value: 'admin' }])
          .transform((v) => (Array.isArray(v) ? v : [v])),
        /** IANA zone whose midnight starts "today" for connections_today and the daily counts. */
        timeZone: z
          .string()
          .default('UTC')
          .refine(isTimeZone, { message: 'telemetry.monitoring.timeZone must be an IANA time zone, e.g. Europe/Berlin' }),
        /** Trailing window of messages_per_minute, sampled once a second; the value is scaled to one minute. */
        messagesPerMinuteWindowSec: z.number().int().min(1).max(3600).default(60),
        /** How many offending client keys the in-memory top-K keeps (space-saving). */
        topOffendersCapacity: z.number().int().min(1).max(10_000).default(100),
      })
      .strict()
      .prefault({}),
    logs: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
        /** Per reason and interval, the first `rejectionLinesPerInterval` rejections are logged, then one summary line. */
        rejectionSummaryIntervalMs: z.number().int().min(100).default(10_000),
        rejectionLinesPerInterval: z.number().int().min(0).default(5),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .prefault({});

export type TelemetryConfig = z.infer<typeof telemetrySchema>;
/** The section as written in a config file (everything optional). */
export type TelemetryConfigInput = z.input<typeof telemetrySchema>;
