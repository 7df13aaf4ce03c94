import type { ConnectionOptions } from 'node:tls';
import type { UpstreamDialer } from './upstream-types.ts';
import { createLeanDialer, dialLeanUpstream } from './lean/dial.ts';
import { createWsDialer, dialWsUpstream } from './ws-upstream.ts';

/** The client legs, by the name `upstream.client` takes. */
const DIALERS: Record<string, UpstreamDialer> = {
  ws: dialWsUpstream,
  lean: dialLeanUpstream,
};

const FACTORIES: Record<string, (tls: ConnectionOptions) => UpstreamDialer> = {
  ws: createWsDialer,
  lean: (tls) => createLeanDialer({ tls }),
};

/** The leg called `name`; with `tls` (upstream.tls: CA, client pair, servername) for wss:// upstreams. */
export function dialerFor(name: string, tls?: ConnectionOptions): UpstreamDialer {
  const dialer = DIALERS[name];
  if (!dialer) throw new Error(`upstream.client: unknown client leg '${name}' (known: ${Object.keys(DIALERS).join(', ')})`);
  return tls && Object.keys(tls).length > 0 ? FACTORIES[name]!(tls) : dialer;
}
