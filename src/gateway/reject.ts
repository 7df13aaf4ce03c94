import type { HttpResponse } from 'uWebSockets.js';
import type { GatewayError, GatewayErrorCode } from '../errors.ts';

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Retry-After is whole seconds (RFC 9110 §10.2.3), rounded up so a client never comes back early. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * What a body says where the internal message would tell a client too much: never why a token failed
 * (jose's error codes, key ids, claim names teach a forger what to change), never the upstream's
 * address or errno. The log line keeps the detail.
 */
const PUBLIC_MESSAGES: Readonly<Partial<Record<GatewayErrorCode, string>>> = {
  token_missing: 'a token is required',
  token_expired: 'the token has expired',
  auth: 'the token is not valid',
  upstream_unavailable: 'the upstream app is unavailable',
  upstream_timeout: 'the upstream app did not answer in time',
  internal: 'internal error',
};

/**
 * Answers a handshake with the contract's status, headers and small JSON body, and closes the TCP
 * connection. Must be called inside res.cork when not in the synchronous upgrade callback.
 */
export function writeHttpRejection(res: HttpResponse, error: GatewayError): void {
  const status = error.status;
  res.writeStatus(`${status} ${STATUS_TEXT[status] ?? 'Error'}`);
  res.writeHeader('Content-Type', 'application/json');
  res.writeHeader('Cache-Control', 'no-store');
  const message = PUBLIC_MESSAGES[error.code] ?? (status === 401 ? 'the token is not valid' : error.message);
  const body: Record<string, unknown> = { error: error.code, message };
  if (error.setting) body['setting'] = error.setting;
  if (error.retryAfterMs !== undefined) {
    res.writeHeader('Retry-After', String(retryAfterSeconds(error.retryAfterMs)));
    body['retry_after_ms'] = Math.ceil(error.retryAfterMs);
  }
  if (status === 401) res.writeHeader('WWW-Authenticate', error.code === 'token_missing' ? 'Bearer' : 'Bearer error="invalid_token"');
  if (status === 426) res.writeHeader('Sec-WebSocket-Version', '13');
  res.end(JSON.stringify(body), true);
}

/** The JSON close reason for rejectWith: close, kept under the 123-byte limit: {"r":"conn_limit","retry_ms":37000}. */
export function closeRejectionReason(error: GatewayError): string {
  const r = error.reason ?? error.code;
  return JSON.stringify(error.retryAfterMs === undefined ? { r } : { r, retry_ms: Math.ceil(error.retryAfterMs) });
}
