/**
 * Close-code mapping between the two legs (RFC 6455 §7.4). 1005, 1006 and 1015 are reported by an
 * endpoint but must never be sent in a close frame (§7.4.1), so they are translated here.
 */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  invalidPayload: 1007,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
  serviceRestart: 1012,
  tryAgainLater: 1013,
  badGateway: 1014,
  noStatus: 1005,
  abnormal: 1006,
  tlsFailure: 1015,
  /** wsguard private codes (docs/contracts.md); the rest come from GatewayError codes (src/errors.ts). */
  lifetimeReached: 4201,
} as const;

/** What a client should do after a private close code (docs/contracts.md): the one home of the three ranges. */
export type ReconnectAdvice = 'stop' | 'backoff' | 'now';

export const PRIVATE_CLOSE_RANGES: Readonly<Record<ReconnectAdvice, readonly [number, number]>> = {
  stop: [4000, 4099],
  backoff: [4100, 4199],
  now: [4200, 4299],
};

/** The range `code` falls in, or undefined for a code outside wsguard's private ranges. */
export function reconnectAdvice(code: number): ReconnectAdvice | undefined {
  for (const advice of ['stop', 'backoff', 'now'] as const) {
    const [lo, hi] = PRIVATE_CLOSE_RANGES[advice];
    if (code >= lo && code <= hi) return advice;
  }
  return undefined;
}

/** RFC 6455 §7.4.1/§7.4.2: whether `code` may appear in a close frame (the same rule as `ws`). */
export function isSendableCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** What the upstream is told when the client's leg ended with `code`. */
export function clientCloseToUpstream(code: number): number {
  if (code === CLOSE.noStatus) return CLOSE.normal;
  // The client vanished without a close frame (or uWS folded a 1012–3999 code into 1006; docs/architecture.md).
  if (code === CLOSE.abnormal || code === CLOSE.tlsFailure) return CLOSE.goingAway;
  return isSendableCloseCode(code) ? code : CLOSE.protocolError;
}

/** What the client is told when the upstream's leg ended with `code`. */
export function upstreamCloseToClient(code: number): number {
  if (code === CLOSE.noStatus) return CLOSE.normal;
  // The app dropped the TCP connection: from the client's side the gateway's upstream failed.
  if (code === CLOSE.abnormal || code === CLOSE.tlsFailure) return CLOSE.badGateway;
  return isSendableCloseCode(code) ? code : CLOSE.internalError;
}

/** A close reason must fit in 123 bytes of UTF-8 (§5.5: control frame payload ≤ 125, minus the code). */
export function clampReason(reason: string): string {
  if (Buffer.byteLength(reason) <= 123) return reason;
  let out = reason.slice(0, 123);
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

/**
 * The codes RFC 6455 §7.4.1 and the IANA registry define in 1000–1015 (1004 is reserved): what a
 * peer may report, whether or not wsguard sends it. Telemetry keeps each as its own label value.
 */
export const STANDARD_CLOSE_CODES: readonly number[] = [
  1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015,
];
