import pino from 'pino';
import { parseConfig } from '../../src/config/load.ts';
import type { RawConfig } from '../../src/config/schema.ts';
import { startServer, type Server, type StartOptions } from '../../src/main.ts';
import { TEST_SECRET } from './tokens.ts';

export interface TestGateway {
  server: Server;
  port: number;
  /** ws://127.0.0.1:PORT */
  base: string;
  close(): Promise<void>;
}

/** A deep merge good enough for test configs (objects merge, arrays and scalars replace). */
function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? merge(prev as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

/** Starts wsguard on 127.0.0.1:0 with an HS256 test secret, relaying /ws/ to `upstreamUrl`/ws/. */
export async function startTestGateway(upstreamUrl: string, overrides: RawConfig = {}, options: StartOptions = {}): Promise<TestGateway> {
  const raw = merge(
    {
      server: { host: '127.0.0.1', port: 0, drainWindowMs: 200 },
      // Test files run in parallel: the admin listener must not take the default 9464 either.
      telemetry: { admin: { port: 0 } },
      routes: [{ path: '/ws/', upstream: `${upstreamUrl}/ws/` }],
      auth: { secret: TEST_SECRET },
    },
    overrides as Record<string, unknown>,
  );
  const server = await startServer(parseConfig(raw), { logger: pino({ level: 'silent' }), ...options });
  const port = server.gateway.port;
  return { server, port, base: `ws://127.0.0.1:${port}`, close: () => server.close() };
}
