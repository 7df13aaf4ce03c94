import type WebSocket from 'ws';
import { createHandshakeAuth, type AuthOptions } from '../auth.ts';
import { connect } from '../connection.ts';
import { CLOSE } from '../../../src/relay/close-codes.ts';
import { classifyError, closedOutcome } from '../outcomes.ts';

export interface ProbeTarget {
  url: string;
  auth?: AuthOptions;
  origin?: string;
  handshakeTimeoutMs: number;
  /** How long an opened connection must stay open to count as `opened` (rejectWith: close). */
  settleMs: number;
  insecure?: boolean;
}

export interface Attempt {
  /** `opened`, or an outcome key (rejected.429, closed.4100, error.ECONNREFUSED, …). */
  outcome: string;
  detail: string;
  ws?: WebSocket;
}

/** Waits for `ws` to close within `ms`; resolves with the close outcome or undefined. */
export function waitClose(ws: WebSocket, ms: number): Promise<{ outcome: string; detail: string } | undefined> {
  return new Promise((resolve) => {
    let errorKey: string | undefined;
    const onError = (err: Error): void => {
      errorKey ??= classifyError(err).key;
    };
    const onClose = (code: number, reason: Buffer): void => {
      clearTimeout(timer);
      ws.off('error', onError);
      resolve({ outcome: code === CLOSE.abnormal && errorKey ? errorKey : closedOutcome(code), detail: reason.toString() });
    };
    const timer = setTimeout(() => {
      ws.off('close', onClose);
      ws.off('error', onError);
      resolve(undefined);
    }, ms);
    ws.on('error', onError);
    ws.once('close', onClose);
  });
}

/** One connection attempt with optional overrides; an opened socket is returned for the caller to close. */
export async function attempt(t: ProbeTarget, over: { auth?: AuthOptions; origin?: string; userIndex?: number } = {}): Promise<Attempt> {
  const h = await createHandshakeAuth(t.url, over.auth ?? t.auth)(over.userIndex ?? 0);
  const r = await connect({
    url: h.url,
    headers: h.headers,
    protocols: h.protocols,
    origin: over.origin ?? t.origin,
    handshakeTimeoutMs: t.handshakeTimeoutMs,
    rejectUnauthorized: t.insecure ? false : undefined,
  });
  if (!r.ok) return { outcome: r.outcome, detail: r.detail };
  // Keep errors from becoming unhandled while the caller holds the socket.
  r.ws.on('error', () => undefined);
  const closed = await waitClose(r.ws, t.settleMs);
  if (closed) return closed;
  return { outcome: 'opened', detail: '', ws: r.ws };
}

export async function closeAll(sockets: (WebSocket | undefined)[]): Promise<void> {
  await Promise.all(
    sockets.map(async (ws) => {
      if (!ws || ws.readyState === ws.CLOSED) return;
      ws.close(CLOSE.normal, 'wsguard probe done');
      if (!(await waitClose(ws, 1_000))) ws.terminate();
    }),
  );
}
