import type { Config } from '../../config/schema.ts';

/** The limits an operator asks about first, as the status page's header shows them (option path → value). */
export function effectiveLimits(config: Config): Record<string, string | number | boolean> {
  const rate = config.messages.rate;
  return {
    'limits.concurrent.max': config.limits.concurrent.max,
    'limits.attempts.max': config.limits.attempts.max,
    'limits.attempts.windowMs': config.limits.attempts.windowMs,
    'limits.store': config.limits.store,
    'messages.rate.perMinute': rate.perMinute,
    'messages.rate.burst': rate.burst,
    'messages.rate.action': rate.action,
    'messages.maxBytes': config.messages.maxBytes,
    'server.rejectWith': config.server.rejectWith,
    routes: config.routes.length,
  };
}
