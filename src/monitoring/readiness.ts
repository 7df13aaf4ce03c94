import type { Readiness } from './admin-server.ts';

/** What the gateway knows about itself, read on every /readyz request. */
export interface ReadinessParts {
  /** The public listener is bound. */
  listening: boolean;
  /** SIGTERM received: stop sending us new handshakes. */
  draining: boolean;
  /** A JWKS (when configured) has loaded at least once; true without a JWKS. */
  jwksLoaded: boolean;
  /** The limit store answers, or its degraded mode still admits connections (fail-open); true when unknown. */
  storeOk?: boolean;
  /** The shared limit store is down and the limits run on their failure policies; reported, not a readiness condition by itself. */
  storeDegraded?: boolean;
  /** At least server.minFreeFds file descriptors are free; true when unknown. */
  fdsOk?: boolean;
}

/**
 * /readyz's answer: ready = listening ∧ JWKS loaded ∧ store usable ∧ fds to spare ∧ not draining. A failure to read
 * the parts (e.g. the gateway not started yet) is "not ready", never an exception.
 */
export function readinessFrom(read: () => ReadinessParts | undefined, onError?: (err: unknown) => void): () => Readiness {
  return (): Readiness => {
    let parts: ReadinessParts | undefined;
    try {
      parts = read();
    } catch (err) {
      // The reason goes to the log, not to /readyz (which needs no token).
      onError?.(err);
      return { ready: false, checks: { readable: false } };
    }
    if (!parts) return { ready: false, checks: { started: false } };
    const checks = {
      listening: parts.listening,
      jwks: parts.jwksLoaded,
      store: parts.storeOk ?? true,
      fds: parts.fdsOk ?? true,
      draining: parts.draining,
    };
    const ready = checks.listening && checks.jwks && checks.store && checks.fds && !checks.draining;
    return { ready, checks: parts.storeDegraded === undefined ? checks : { ...checks, storeDegraded: parts.storeDegraded } };
  };
}
