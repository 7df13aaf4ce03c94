import { pino, type DestinationStream, type Logger } from 'pino';
import type { TelemetryConfig } from './config.ts';

export type { Logger } from 'pino';

/**
 * Paths pino censors wherever they appear at the top level or one object deep (pino redaction paths
 * are explicit; `*.x` covers one level of nesting, e.g. `req.authorization`). Header objects are
 * listed by name because loggers commonly log them whole.
 */
const SECRET_KEYS = ['token', 'authorization', 'access_token', 'id_token', 'refresh_token', 'cookie', 'password'];
export const REDACT_PATHS: readonly string[] = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `headers.${k}`),
  ...SECRET_KEYS.map((k) => `req.headers.${k}`),
  ...SECRET_KEYS.map((k) => `request.headers.${k}`),
];

/** One JSON line per event, ISO time, service and instance on every line, secrets censored. */
export function createLogger(
  config: Pick<TelemetryConfig, 'serviceName' | 'logs'> & { instanceId: string },
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level: config.logs.level,
      base: { service: config.serviceName, instance: config.instanceId },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
