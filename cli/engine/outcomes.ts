/**
 * Outcome accounting. Every connection attempt ends in exactly one named outcome, so that a run's
 * outcome counts add up to its attempts and nothing hides in an unexplained "other" bucket:
 *
 *   completed            we closed it at the end of the run (1000/1001 handshake finished)
 *   rejected.<status>    the server answered the upgrade with an HTTP status (429, 401, 403, …)
 *   closed.<code>        the server (or the network, 1006) closed an open connection
 *   error.<ERRNO>        a socket error (ECONNREFUSED, ECONNRESET, EADDRNOTAVAIL, ETIMEDOUT, …)
 *   tls.<CODE>           a TLS failure, counted apart from plain socket errors
 *   handshake.<why>      the server answered 101 but broke the handshake rules (RFC 6455 §4.1)
 *   protocol.<WS_ERR_*>  the server broke framing rules after open
 *   dropped.<how>        storm: we dropped it on purpose (reset or clean close)
 *
 * Close codes are never spelled here: their names come from the sidecar's own catalogue
 * (src/errors.ts ERROR_CODES and src/relay/close-codes.ts CLOSE), so a code added there is named
 * in reports (the compiler insists, through the two Record types below) and a renumbered one moves
 * with it.
 */
import { ERROR_CODES, type GatewayErrorCode } from '../../src/errors.ts';
import { CLOSE, reconnectAdvice } from '../../src/relay/close-codes.ts';

/** Reader's names for the relay's close codes (RFC 6455 §7.4.1 meanings, and wsguard's own). */
const CLOSE_MEANINGS: Readonly<Record<keyof typeof CLOSE, string>> = {
  normal: 'normal',
  goingAway: 'going away',
  protocolError: 'protocol error',
  invalidPayload: 'invalid payload',
  policyViolation: 'policy violation',
  tooBig: 'message too big',
  internalError: 'internal error',
  serviceRestart: 'service restart',
  tryAgainLater: 'try again later',
  badGateway: 'bad gateway',
  noStatus: 'no status',
  abnormal: 'abnormal (no close frame)',
  tlsFailure: 'TLS failure',
  lifetimeReached: 'lifetime reached',
};

/** Reader's names for the sidecar's refusals, for close codes the relay table does not name. */
const ERROR_MEANINGS: Readonly<Record<GatewayErrorCode, string>> = {
  bad_request: 'bad request',
  not_found: 'no route',
  unsupported_version: 'unsupported version',
  origin: 'origin forbidden',
  token_missing: 'unauthorized',
  auth: 'unauthorized',
  token_expired: 'token expired',
  conn_limit: 'connection limit',
  attempt_limit: 'attempt limit',
  upstream_unavailable: 'upstream unavailable',
  upstream_timeout: 'upstream timeout',
  handshake_timeout: 'handshake timeout',
  draining: 'draining',
  store_unavailable: 'limit store unavailable',
  pending_limit: 'pending handshakes limit',
  overloaded: 'overloaded',
  store_full: 'limit store full',
  auth_unavailable: 'keys unavailable',
  message_rate: 'message rate',
  message_too_big: 'message too big',
  control_rate: 'control frame rate',
  backpressure: 'backpressure',
  internal: 'internal error',
};

function buildCloseCodeNames(): Readonly<Record<number, string>> {
  const names: Record<number, string> = {};
  for (const [key, code] of Object.entries(CLOSE)) names[code] = CLOSE_MEANINGS[key as keyof typeof CLOSE];
  // Private codes shared by several refusals (4100: connection or pending limit) name them all.
  const shared = new Map<number, Set<string>>();
  for (const [key, info] of Object.entries(ERROR_CODES)) {
    if (names[info.closeCode] !== undefined) continue;
    const set = shared.get(info.closeCode) ?? new Set<string>();
    set.add(ERROR_MEANINGS[key as GatewayErrorCode]);
    shared.set(info.closeCode, set);
  }
  for (const [code, set] of shared) names[code] = [...set].join(' / ');
  return Object.freeze(names);
}

export const CLOSE_CODE_NAMES: Readonly<Record<number, string>> = buildCloseCodeNames();

/** `closed.<code>`: the outcome of an open connection the server (or the network) ended with `code`. */
export function closedOutcome(code: number): string {
  return `closed.${code}`;
}

/** The outcomes by which the sidecar can answer with `code`: the HTTP refusal and its close twin. */
export function outcomesOf(code: GatewayErrorCode): string[] {
  const info = ERROR_CODES[code];
  return [`rejected.${info.status}`, closedOutcome(info.closeCode)];
}

export const HTTP_STATUS_NAMES: Readonly<Record<number, string>> = Object.freeze({
  400: 'bad request',
  401: 'unauthorized',
  403: 'forbidden (origin)',
  404: 'not found (no route)',
  426: 'upgrade required',
  429: 'too many requests',
  500: 'internal error',
  502: 'bad gateway',
  503: 'unavailable',
  504: 'gateway timeout',
});

/** Human meaning of an outcome key, for reports. */
export function describeOutcome(key: string): string {
  const [kind, detail = ''] = splitOutcome(key);
  switch (kind) {
    case 'completed':
      return 'closed by the client at the end of the run';
    case 'rejected':
      return `HTTP ${detail} ${HTTP_STATUS_NAMES[Number(detail)] ?? ''}`.trim();
    case 'closed':
      return `close ${detail} ${CLOSE_CODE_NAMES[Number(detail)] ?? classifyPrivateCode(Number(detail))}`.trim();
    case 'error':
      return `socket error ${detail}`;
    case 'tls':
      return `TLS failure ${detail}`;
    case 'handshake':
      return `invalid handshake response (${detail})`;
    case 'protocol':
      return `protocol violation by the server (${detail})`;
    case 'dropped':
      return `dropped by the client on purpose (${detail})`;
    default:
      return key;
  }
}

/**
 * What a private close code (docs/contracts.md, "Close codes") asks a client to do: 4000–4099
 * stop, 4100–4199 come back with backoff, 4200–4299 come back now. The one place the ranges live.
 */

const ADVICE_TEXT = { stop: 'private: do not reconnect', backoff: 'private: reconnect with backoff', now: 'private: reconnect now' };

function classifyPrivateCode(code: number): string {
  const advice = reconnectAdvice(code);
  return advice === undefined ? '' : ADVICE_TEXT[advice];
}

export function splitOutcome(key: string): [string, string | undefined] {
  const dot = key.indexOf('.');
  return dot < 0 ? [key, undefined] : [key.slice(0, dot), key.slice(dot + 1)];
}

/** Outcomes that count as failures for the error rate (kill switch, error_rate metric). */
export function isFailure(key: string): boolean {
  const [kind, detail] = splitOutcome(key);
  if (kind === 'completed' || kind === 'dropped') return false;
  if (kind === 'closed') return detail !== String(CLOSE.normal) && detail !== String(CLOSE.goingAway);
  return true;
}

/** Whether a close code asks the client to come back later (docs/contracts.md): try again later, or a backoff code. */
export function isRetryLaterClose(code: number): boolean {
  return code === CLOSE.tryAgainLater || reconnectAdvice(code) === 'backoff';
}

/** OpenSSL verify codes and Node's TLS error codes, so TLS failures never look like socket errors. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|EPROTO$)/;

/** ws's handshake failures carry no code (websocket.js abortHandshake): name them by message. */
const HANDSHAKE_MESSAGES: ReadonlyArray<[RegExp, string]> = [
  [/Opening handshake has timed out/, 'error.HANDSHAKE_TIMEOUT'],
  [/Invalid Upgrade header/, 'handshake.bad_upgrade'],
  [/Sec-WebSocket-Accept/, 'handshake.bad_accept'],
  [/subprotocol/i, 'handshake.bad_subprotocol'],
  [/Sec-WebSocket-Extensions|extension/i, 'handshake.bad_extension'],
  [/Maximum redirects/, 'handshake.redirects'],
  [/socket hang up/, 'error.ECONNRESET'],
];

/** Names the outcome of an error event; `detail` keeps the message for errors named by message. */
export function classifyError(err: unknown): { key: string; detail: string } {
  const e = err as NodeJS.ErrnoException | undefined;
  const message = e?.message ?? String(err);
  const code = typeof e?.code === 'string' ? e.code : undefined;
  if (code !== undefined) {
    if (TLS_CODE.test(code)) return { key: `tls.${code}`, detail: message };
    if (code.startsWith('WS_ERR_')) return { key: `protocol.${code}`, detail: message };
    return { key: `error.${code}`, detail: message };
  }
  for (const [re, key] of HANDSHAKE_MESSAGES) if (re.test(message)) return { key, detail: message };
  // Still named: the message itself goes into the report's detail samples, so it is explained.
  return { key: 'error.UNCLASSIFIED', detail: message };
}

/** Counts per outcome key, plus a few distinct detail strings (close reasons, error messages). */
export class OutcomeCounter {
  readonly counts = new Map<string, number>();
  readonly details = new Map<string, Map<string, number>>();
  static readonly #MAX_DETAILS = 8;

  add(key: string, detail?: string, n = 1): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + n);
    if (detail === undefined || detail === '') return;
    let d = this.details.get(key);
    if (!d) this.details.set(key, (d = new Map()));
    // Bounded: a server that puts a counter in its close reason must not grow memory without limit.
    if (d.has(detail) || d.size < OutcomeCounter.#MAX_DETAILS) d.set(detail, (d.get(detail) ?? 0) + n);
  }

  get(key: string): number {
    return this.counts.get(key) ?? 0;
  }

  total(): number {
    let n = 0;
    for (const v of this.counts.values()) n += v;
    return n;
  }

  failures(): number {
    let n = 0;
    for (const [k, v] of this.counts) if (isFailure(k)) n += v;
    return n;
  }

  toJSON(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b)));
  }

  detailsJSON(): Record<string, Record<string, number>> {
    return Object.fromEntries([...this.details].map(([k, d]) => [k, Object.fromEntries(d)]));
  }
}
