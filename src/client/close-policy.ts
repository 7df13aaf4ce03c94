/**
 * What a wsguard client does after a connection ends, decided from what the gateway said
 * (docs/contracts.md): the close code's range, the JSON close reason `{"r":…,"retry_ms":…}`, or the
 * handshake status and Retry-After where the runtime exposes them (Node with `ws`; a browser only
 * ever sees 1006). Pure functions, so the whole table is unit-tested without sockets.
 */
import { ERROR_CODES } from '../errors.ts';
import { CLOSE, reconnectAdvice } from '../relay/close-codes.ts';

/**
 * - `stop`: do not reconnect (4000–4099, a 1000 from the server, a handshake refusal that will not
 *   change by itself such as 403 or 404).
 * - `backoff`: reconnect after the shared backoff policy's delay, or after the server's hint plus jitter.
 * - `now`: reconnect at once (4200–4299); 4200 fetches a fresh token first.
 * - `drain`: reconnect at a uniformly random point of the drain window (1001, 1012).
 */
export type CloseAction = 'stop' | 'backoff' | 'now' | 'drain';

export interface CloseDecision {
  action: CloseAction;
  /** The server's hint in ms: `retry_ms` of a JSON close reason, or Retry-After of a handshake answer. */
  hintMs?: number;
  /** Ask the token provider for a new token before the next attempt. */
  refreshToken: boolean;
  /** The `r` of a JSON close reason (`conn_limit`, `draining`, …), else the reason text. */
  reason: string;
}

/** `{"r":"conn_limit","retry_ms":30000}` → its fields; anything else → the text as the reason. */
export function parseCloseReason(text: string): { r: string; retryMs?: number } {
  if (text.startsWith('{')) {
    try {
      const parsed = JSON.parse(text) as { r?: unknown; retry_ms?: unknown };
      const r = typeof parsed.r === 'string' ? parsed.r : text;
      const retryMs =
        typeof parsed.retry_ms === 'number' && Number.isFinite(parsed.retry_ms) && parsed.retry_ms >= 0 ? parsed.retry_ms : undefined;
      return retryMs === undefined ? { r } : { r, retryMs };
    } catch (err) {
      // A reason that only looks like JSON is still a reason; it carries no hint.
      void err;
    }
  }
  return { r: text };
}

/** The decision for a close frame (or a synthetic 1006 when the socket failed without one). */
export function decideClose(code: number, reasonText: string): CloseDecision {
  const { r, retryMs } = parseCloseReason(reasonText);
  const hint = retryMs === undefined ? {} : { hintMs: retryMs };
  if (code === CLOSE.normal) return { action: 'stop', refreshToken: false, reason: r };
  if (code === CLOSE.goingAway || code === CLOSE.serviceRestart) return { action: 'drain', refreshToken: false, reason: r, ...hint };
  const advice = reconnectAdvice(code);
  if (advice === 'stop') return { action: 'stop', refreshToken: false, reason: r };
  if (advice === 'now') return { action: 'now', refreshToken: code === ERROR_CODES.token_expired.closeCode, reason: r };
  // 4100–4199 and every other code (1006 included: a browser's view of a refused handshake) back off.
  return { action: 'backoff', refreshToken: false, reason: r, ...hint };
}

/**
 * The decision for a handshake answered with an HTTP status (Node with `ws` only). 401 may be an
 * expired token: back off and ask for a new one (bounded by the maximum attempts). 400, 403, 404 and
 * 426 will fail the same way again.
 */
export function decideHandshakeStatus(status: number, retryAfterSec: number | undefined, errorCode: string | undefined): CloseDecision {
  const reason = errorCode ?? `HTTP ${status}`;
  const hint = retryAfterSec === undefined ? {} : { hintMs: retryAfterSec * 1000 };
  if (status === 400 || status === 403 || status === 404 || status === 426) return { action: 'stop', refreshToken: false, reason };
  if (status === 401) return { action: 'backoff', refreshToken: true, reason, ...hint };
  return { action: 'backoff', refreshToken: false, reason, ...hint };
}

/** Retry-After as seconds (RFC 9110 §10.2.3: delay-seconds or an HTTP date). */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - nowMs) / 1000));
}
