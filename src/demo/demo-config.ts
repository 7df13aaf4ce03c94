import { parseConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';

/**
 * The HS256 secret the demo verifies `/ws/private/` tokens with when no key is configured. It is
 * printed by `npm start` and written in the README, so it protects nothing: the demo listens on
 * loopback and exists to show the checks working. Never use it in front of a real app.
 */
export const DEMO_SECRET = 'wsguard-demo-secret-for-local-use-only-0123';

/**
 * Connection attempts per client IP per hour in the demo. The production default (10) would lock
 * localhost out for an hour after one run of the README's probe (about 15 handshakes from one
 * address); the other limits keep their defaults so that the probe sees them hold.
 */
export const DEMO_ATTEMPTS_PER_HOUR = 1000;

/**
 * `wsguard serve --demo`: two routes in front of the built-in demo upstream (echo under .../echo/,
 * a broadcast room under .../room/):
 *   /ws/          anonymous, for a first try;
 *   /ws/private/  JWT required (DEMO_SECRET unless keys are configured), for the probe.
 * Origins are an allow-list of the listener's own http origins (unless configured), so a foreign
 * Origin gets 403 while CLI clients without an Origin are admitted.
 */
export function demoConfig(config: Config, demoPort: number): Config {
  const upstream = `ws://127.0.0.1:${demoPort}/ws/`;
  const { host, port } = config.server;
  const hasKeys = Boolean(config.auth.secret || config.auth.publicKeys.length || config.auth.jwksUrl);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const ownOrigins = [...new Set([`http://${shownHost}:${port}`, `http://localhost:${port}`, `http://127.0.0.1:${port}`])];
  return parseConfig({
    ...config,
    routes: [
      { path: '/ws/', upstream, allowAnonymous: true },
      { path: '/ws/private/', upstream },
    ],
    auth: hasKeys ? config.auth : { ...config.auth, secret: DEMO_SECRET, algorithms: ['HS256'] },
    origins: config.origins.allowed.length ? config.origins : { ...config.origins, allowed: ownOrigins },
    limits: {
      ...config.limits,
      attempts: { ...config.limits.attempts, max: Math.max(config.limits.attempts.max, DEMO_ATTEMPTS_PER_HOUR) },
    },
  });
}
