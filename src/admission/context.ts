import type { JWTPayload } from 'jose';
import type { RouteConfig } from '../config/schema.ts';
import type { AttemptSignal } from './attempt-stop.ts';

/** Everything the admission policies need, copied synchronously out of the uWS HttpRequest. */
export interface HandshakeRequest {
  method: string;
  path: string;
  /** Raw query string without the '?'. */
  query: string;
  /** All request headers, names lower-case (a repeated header keeps its last value, as uWS reports it). */
  headers: Record<string, string>;
  /** Names of headers that appeared more than once (X-Forwarded-For lines are joined instead). */
  duplicates: string[];
  /** Socket peer, normalised (IPv4-mapped IPv6 → IPv4). */
  peerIp: string;
}

/** One handshake's state as it moves through the admission pipeline. */
export interface AdmissionContext {
  request: HandshakeRequest;
  route: RouteConfig;
  /** The client as resolved through trusted proxies, and the key per-IP limits count it under. */
  clientIp: string;
  clientKey: string;
  nowMs: number;
  token: string | null;
  /** Subprotocols to offer upstream (token entries removed) and the query to relay (token removed). */
  protocols: string[];
  /** The client offered auth.subprotocolMarker: selected for it when the upstream selects no subprotocol. */
  markerOffered: boolean;
  /** A token travelled as a subprotocol entry (then the marker must be offered too). */
  tokenInSubprotocol: boolean;
  relayQuery: string;
  claims: JWTPayload | null;
  /**
   * Set when the handshake ends before admission does (client abort, deadline, drain): the pipeline
   * runs no further policy, and a policy that waits on I/O may pass `stop.signal` on to cancel.
   */
  stop: AttemptSignal;
  /** Releases taken by policies; the pipeline's caller runs them when the handshake does not complete. */
  reservations: {
    /** Forget the attempt (the handshake failed for a reason not the client's). */
    attempt?: () => void;
    /** Give back the concurrent slot (on failure, or when an admitted connection closes). */
    slot?: () => void;
  };
}
