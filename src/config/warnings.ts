import { isIP } from 'node:net';
import { normalizeIp, parseProxyRange } from '../admission/client-ip.ts';
import type { Config } from './schema.ts';

/**
 * Configurations that are valid but probably not what the operator meant, each naming the option.
 * `serve` logs them at warn on start-up and `config check` prints them; neither refuses to run.
 */
export function configWarnings(config: Config): string[] {
  const warnings: string[] = [];

  config.server.trustedProxies.forEach((entry, i) => {
    const range = parseProxyRange(entry);
    if (typeof range !== 'string' && range.prefix === 0) {
      warnings.push(
        `server.trustedProxies.${i}: ${entry} trusts every address as a proxy, so any client can choose its own IP with X-Forwarded-For and escape the per-IP limits`,
      );
    }
  });

  const admin = config.telemetry.admin.host;
  if (config.telemetry.enabled && !isLoopback(admin)) {
    warnings.push(
      `telemetry.admin.host: ${admin} is not a loopback address; the admin listener (metrics, health, monitoring API) should be reachable by the scraper only, never by clients`,
    );
  }

  const cookie = config.upstream.forwardHeaders.some((h) => h.toLowerCase() === 'cookie');
  if (cookie && config.origins.allowed.length === 0) {
    config.routes.forEach((r, i) => {
      if (!r.allowAnonymous) return;
      warnings.push(
        `routes.${i}.allowAnonymous: ${r.path} admits clients without a token while origins.allowed is empty and upstream.forwardHeaders includes cookie; any web page can open it with the visitor's cookies (cross-site WebSocket hijacking). Set origins.allowed or stop forwarding cookie`,
      );
    });
  }
  return warnings;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  const ip = normalizeIp(host);
  if (ip === null) return false;
  if (isIP(ip) === 4) return ip.startsWith('127.');
  return ip === '0:0:0:0:0:0:0:1';
}
