import { GatewayError } from '../errors.ts';
import type { Config } from '../config/schema.ts';
import type { AdmissionPolicy } from './policy.ts';

/**
 * Origin allow-list, matched exactly on the serialised origin (scheme, host, port: RFC 6454 §6.1).
 * A browser always sends Origin; its absence means a non-browser client, admitted unless configured
 * otherwise. An empty allow-list admits every origin.
 */
export function originPolicy(config: Config['origins']): AdmissionPolicy {
  // Origins are compared in serialised form, so "https://A.example:443" in config matches "https://a.example".
  const allowed = new Set(config.allowed.map((o) => new URL(o).origin));
  return {
    name: 'origin',
    dryRun: config.dryRun,
    check({ request: { headers } }) {
      const origin = headers['origin'];
      if (origin === undefined || origin === '') {
        if (!config.allowMissing) throw new GatewayError('origin', 'an Origin header is required');
        return;
      }
      if (allowed.size === 0) return;
      if (!allowed.has(origin)) throw new GatewayError('origin', 'origin not allowed');
    },
  };
}
