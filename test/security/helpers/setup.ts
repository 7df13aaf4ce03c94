/** Per-test gateway + upstream lifecycle for the attack suite: one of each per test, stopped after it. */
import { afterEach } from 'vitest';
import type { Logger } from 'pino';
import type { RawConfig } from '../../../src/config/schema.ts';
import { startTestGateway, type TestGateway } from '../../helpers/gateway.ts';
import { startEchoUpstream, type TestUpstream } from '../../helpers/upstream.ts';

export interface Rig {
  gw: TestGateway;
  upstream: TestUpstream;
}

export function useRig(): { start(overrides?: RawConfig, logger?: Logger): Promise<Rig>; defer(fn: () => Promise<void> | void): void } {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  return {
    async start(overrides = {}, logger) {
      const upstream = await startEchoUpstream();
      cleanups.push(() => upstream.close());
      const gw = await startTestGateway(upstream.url, overrides, logger ? { logger } : {});
      cleanups.push(() => gw.close());
      return { gw, upstream };
    },
    defer(fn) {
      cleanups.push(fn);
    },
  };
}
