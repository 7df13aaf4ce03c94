import { AttemptStop } from '../../src/admission/attempt-stop.ts';
import type { AdmissionContext } from '../../src/admission/context.ts';
import type { RouteConfig } from '../../src/config/schema.ts';

/** An admission context for one client (192.0.2.1) on route /ws/, for testing policies and the pipeline directly. */
export function admissionContext(overrides: Partial<AdmissionContext> = {}): AdmissionContext {
  return {
    request: { method: 'get', path: '/ws/', query: '', headers: {}, duplicates: [], peerIp: '192.0.2.1' },
    route: { path: '/ws/', allowAnonymous: false } as RouteConfig,
    clientIp: '192.0.2.1',
    clientKey: '192.0.2.1',
    nowMs: 0,
    token: null,
    protocols: [],
    markerOffered: false,
    tokenInSubprotocol: false,
    relayQuery: '',
    claims: null,
    stop: new AttemptStop(),
    reservations: {},
    ...overrides,
  };
}
