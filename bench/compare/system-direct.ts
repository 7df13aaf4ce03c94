import type { System } from './base.ts';

/** The uWS echo upstream itself: the ceiling every proxy is measured against. */
export const direct: System = {
  name: 'direct',
  enforcesLimits: false,
  start: async (port) => ({ url: `ws://127.0.0.1:${port}`, stop: async () => {} }),
};
