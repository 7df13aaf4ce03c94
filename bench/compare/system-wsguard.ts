import { startGatewayChild } from '../lib/gateway-child.ts';
import { ORIGIN, type System } from './base.ts';

/**
 * wsguard as deployed: an origin allow-list, HS256 (and ES256) JWT required on /, every admission
 * and message limit evaluated, telemetry on, the compiled build (bench/compare.ts builds dist/ first).
 * Limits are raised only as far as each scenario needs and the table says so: attempts and
 * concurrent per IP 1e6 (the generators dial from 500 addresses), messages 1e12/min except in the
 * noisy-neighbour row, which runs its own instance at the defaults.
 * `build.bin`: another checkout's bin/wsguard.js (compare --baseline), for before/after in one run.
 */
export function wsguardSystem(extra: string[] = [], build: { name: string; bin?: string } = { name: 'wsguard' }): System {
  return {
    name: build.name,
    enforcesLimits: true,
    withSettings: (more) => wsguardSystem([...extra, ...more], build),
    start: async (port, ctx) => {
      const gw = await startGatewayChild(
        port,
        [
          'routes.0.allowAnonymous=false',
          `origins.allowed.0=${ORIGIN}`,
          'origins.allowMissing=false',
          `auth.secret=${ctx.tokens.secret}`,
          'auth.algorithms.0=HS256',
          'auth.algorithms.1=ES256',
          `auth.publicKeys.0=${ctx.tokens.esPublicKeyPem}`,
          ...extra,
        ],
        ['--route', `/anon=ws://127.0.0.1:${port}/`, '--set', 'routes.1.allowAnonymous=true'],
        [],
        build.bin,
      );
      return { url: `ws://127.0.0.1:${gw.port}`, pid: gw.child.pid, stop: gw.stop };
    },
  };
}
