import type { UpstreamDialer } from './upstream-types.ts';
import { dialLeanUpstream } from './lean/dial.ts';
import { dialWsUpstream } from './ws-upstream.ts';

/** The client legs, by the name `upstream.client` takes. */
const DIALERS: Record<string, UpstreamDialer> = {
  ws: dialWsUpstream,
  lean: dialLeanUpstream,
};

export function dialerFor(name: string): UpstreamDialer {
  const dialer = DIALERS[name];
  if (!dialer) throw new Error(`upstream.client: unknown client leg '${name}' (known: ${Object.keys(DIALERS).join(', ')})`);
  return dialer;
}
