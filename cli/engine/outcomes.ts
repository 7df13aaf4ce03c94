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
 * The close-code names mirror docs/contracts.md ("Close codes"), so reports can say what a
 * code means.
 */

export const CLOSE_CODE_NAMES: Readonly<Record<number, string>> = Object.freeze({
  1000: 'normal',
  1001: 'going away',
  1002: 'protocol error',
  1003: 'unsupported data',
  1006: 'abnormal (no close frame)',
  1007: 'invalid payload',
  1008: 'policy violation',
  1009: 'message too big',
  1011: 'internal error',
  1012: 'service restart',
  1013: 'try again later',
  1014: 'bad gateway',
  4001: 'unauthorized',
  4003: 'origin forbidden',
  4100: 'connection limit',
  4101: 'attempt limit',
  4102: 'backpressure',
  4129: 'message rate',
  4200: 'token expired',
  4201: 'lifetime reached',
});

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

function classifyPrivateCode(code: number): string {
  if (code >= 4000 && code <= 4099) return 'private: do not reconnect';
  if (code >= 4100 && code <= 4199) return 'private: reconnect with backoff';
  if (code >= 4200 && code <= 4299) return 'private: reconnect now';
  return '';
}

export function splitOutcome(key: string): [string, string | undefined] {
  const dot = key.indexOf('.');
  return dot < 0 ? [key, undefined] : [key.slice(0, dot), key.slice(dot + 1)];
}

/** Outcomes that count as failures for the error rate (kill switch, error_rate metric). */
export function isFailure(key: string): boolean {
  const [kind, detail] = splitOutcome(key);
  if (kind === 'completed' || kind === 'dropped') return false;
  if (kind === 'closed') return detail !== '1000' && detail !== '1001';
  return true;
}

/** Whether a close code asks the client to come back later (docs/contracts.md: 4100–4199, 1013). */
export function isRetryLaterClose(code: number): boolean {
  return code === 1013 || (code >= 4100 && code <= 4199);
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
