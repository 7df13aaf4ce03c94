import type { Reason } from './telemetry/names.ts';

/**
 * Every failure in wsguard is a GatewayError with a stable code. The code alone decides the HTTP
 * status of a rejected handshake, the close code used when a rejection must be delivered after the
 * upgrade (rejectWith: close, or a policy firing on an open socket), the metric reason, and whose
 * fault it was (`blame`). Tests assert on `code`, never on message text; test/contracts.test.ts holds
 * docs/contracts.md's tables against this catalogue.
 */
export type GatewayErrorCode =
  | 'bad_request'
  | 'not_found'
  | 'unsupported_version'
  | 'origin'
  | 'token_missing'
  | 'auth'
  | 'token_expired'
  | 'conn_limit'
  | 'attempt_limit'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  | 'handshake_timeout'
  | 'draining'
  | 'store_unavailable'
  | 'pending_limit'
  | 'overloaded'
  | 'store_full'
  | 'auth_unavailable'
  | 'message_rate'
  | 'message_too_big'
  | 'control_rate'
  | 'backpressure'
  | 'internal';

/**
 * Whose fault a refusal is. `client`: the request itself was wrong (bad token, bad origin, malformed);
 * its attempt stays counted, so guessing is rate-limited. `limit`: the client is over one of its
 * budgets; not an error, and an attempt it made is given back. `gateway` / `upstream`: wsguard or the
 * app failed; the attempt is given back (an outage must not burn the client's budget) and the
 * handshake span gets status ERROR (OTel HTTP semconv: 5xx on a server span).
 */
export type Blame = 'client' | 'limit' | 'gateway' | 'upstream';

interface CodeInfo {
  status: number;
  closeCode: number;
  /** Metric reason (docs/metrics.md); null where the code is not a handshake rejection. */
  reason: Reason | null;
  blame: Blame;
  /** Always answered over HTTP, also in rejectWith: close mode (accepting a socket is what it refuses, or no browser sends it). */
  httpOnly?: true;
  /** The option that sets the limit behind this refusal: named in the body and the log line, so the fix is findable. */
  setting?: string;
}

/**
 * Close codes (docs/contracts.md): 4000–4099 do not reconnect, 4100–4199 reconnect with backoff,
 * 4200–4299 reconnect now; standard codes where one fits (RFC 6455 §7.4.1).
 */
export const ERROR_CODES: Readonly<Record<GatewayErrorCode, CodeInfo>> = Object.freeze({
  bad_request: { status: 400, closeCode: 1002, reason: 'bad_request', blame: 'client', httpOnly: true },
  not_found: { status: 404, closeCode: 1008, reason: 'not_found', blame: 'client', httpOnly: true },
  unsupported_version: { status: 426, closeCode: 1002, reason: 'unsupported_version', blame: 'client', httpOnly: true },
  origin: { status: 403, closeCode: 4003, reason: 'origin', setting: 'origins.allowed', blame: 'client' },
  // RFC 6750 §3.1: a request without credentials gets a bare challenge, an invalid token error="invalid_token".
  token_missing: { status: 401, closeCode: 4001, reason: 'auth', blame: 'client' },
  auth: { status: 401, closeCode: 4001, reason: 'auth', blame: 'client' },
  token_expired: { status: 401, closeCode: 4200, reason: 'auth', blame: 'client' },
  conn_limit: { status: 429, closeCode: 4100, reason: 'conn_limit', setting: 'limits.concurrent.max', blame: 'limit' },
  attempt_limit: { status: 429, closeCode: 4101, reason: 'attempt_limit', setting: 'limits.attempts.max', blame: 'limit' },
  upstream_unavailable: { status: 502, closeCode: 1014, reason: 'upstream_unavailable', blame: 'upstream' },
  upstream_timeout: { status: 504, closeCode: 1014, reason: 'upstream_timeout', setting: 'upstream.dialTimeoutMs', blame: 'upstream' },
  handshake_timeout: { status: 504, closeCode: 1013, reason: 'handshake_timeout', setting: 'server.handshakeTimeoutMs', blame: 'gateway' },
  draining: { status: 503, closeCode: 1012, reason: 'draining', blame: 'gateway' },
  store_unavailable: { status: 503, closeCode: 1013, reason: 'store_unavailable', blame: 'gateway' },
  // Too many sockets from one client that are not admitted connections (handshakes in progress,
  // rejection closes not yet finished): always answered over HTTP, never by accepting yet another socket.
  pending_limit: {
    status: 429,
    closeCode: 4100,
    reason: 'pending_limit',
    setting: 'server.maxPendingPerClient',
    blame: 'limit',
    httpOnly: true,
  },
  // The process is close to its file-descriptor limit: shed new handshakes before accept() fails for everyone.
  overloaded: { status: 503, closeCode: 1013, reason: 'overloaded', setting: 'server.minFreeFds', blame: 'gateway', httpOnly: true },
  // The limit store tracks limits.maxTrackedKeys clients and this one is new: the gateway's resource ran out, not the client's budget.
  store_full: { status: 503, closeCode: 1013, reason: 'store_full', setting: 'limits.maxTrackedKeys', blame: 'gateway' },
  // No key set could be loaded (JWKS unreachable): the token cannot be judged, so it is not held against the client.
  auth_unavailable: { status: 503, closeCode: 1013, reason: 'auth_unavailable', blame: 'gateway' },
  message_rate: { status: 429, closeCode: 4129, reason: null, setting: 'messages.rate.perMinute', blame: 'limit' },
  message_too_big: { status: 413, closeCode: 1009, reason: null, setting: 'messages.maxBytes', blame: 'client' },
  // 1008, not a 41xx "reconnect with backoff": ping floods come from broken or hostile clients (docs/contracts.md).
  control_rate: { status: 429, closeCode: 1008, reason: null, setting: 'messages.controlFramesPerSec', blame: 'client' },
  backpressure: { status: 503, closeCode: 4102, reason: null, setting: 'backpressure.maxStallMs', blame: 'limit' },
  internal: { status: 500, closeCode: 1011, reason: null, blame: 'gateway' },
});

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  /** Milliseconds after which a retry may succeed; sent as Retry-After (rounded up to seconds). */
  readonly retryAfterMs: number | undefined;

  constructor(code: GatewayErrorCode, message: string, options?: { retryAfterMs?: number; cause?: unknown }) {
    // A refusal of the client's request or budget is expected traffic, thousands a second under a
    // flood, and its stack always points at the same policy: capturing it was 3% of the gateway's CPU
    // per 429 (node --cpu-prof under an attempt flood). Faults of the gateway or upstream keep theirs.
    const blame = ERROR_CODES[code].blame;
    const stackTraceLimit = Error.stackTraceLimit;
    if (blame === 'client' || blame === 'limit') Error.stackTraceLimit = 0;
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = stackTraceLimit;
    this.name = 'GatewayError';
    this.code = code;
    this.retryAfterMs = options?.retryAfterMs;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  get closeCode(): number {
    return ERROR_CODES[this.code].closeCode;
  }

  get reason(): Reason | null {
    return ERROR_CODES[this.code].reason;
  }

  get setting(): string | undefined {
    return ERROR_CODES[this.code].setting;
  }

  get blame(): Blame {
    return ERROR_CODES[this.code].blame;
  }

  get httpOnly(): boolean {
    return ERROR_CODES[this.code].httpOnly === true;
  }
}

/** An attempt stays counted only when the client was at fault (docs/contracts.md, "Which rejections cost the client an attempt"). */
export function keepsAttempt(code: GatewayErrorCode): boolean {
  return ERROR_CODES[code].blame === 'client';
}

/** The gateway or the upstream failed: an error on the handshake span, not a verdict on the client. */
export function isServerFault(code: GatewayErrorCode): boolean {
  const { blame } = ERROR_CODES[code];
  return blame === 'gateway' || blame === 'upstream';
}

/** The catalogue entry for a metric reason (the first code that reports it), or undefined. */
export function codeForReason(reason: string): GatewayErrorCode | undefined {
  return (Object.keys(ERROR_CODES) as GatewayErrorCode[]).find((code) => ERROR_CODES[code].reason === reason);
}

export function isGatewayError(err: unknown): err is GatewayError {
  return err instanceof GatewayError;
}

/** Wraps anything thrown by a dependency so that callers only ever see GatewayErrors. */
export function toGatewayError(err: unknown, fallback: GatewayErrorCode = 'internal'): GatewayError {
  if (isGatewayError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new GatewayError(fallback, message, { cause: err });
}

/** The option behind a metric reason (the first code with that reason that names one), for log lines. */
export function settingForReason(reason: string): string | undefined {
  return Object.values(ERROR_CODES).find((info) => info.reason === reason && info.setting)?.setting;
}
