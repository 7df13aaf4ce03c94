import type { IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { CLOSE } from '../../src/relay/close-codes.ts';
import { classifyError, closedOutcome } from './outcomes.ts';

/**
 * One connection attempt with the `ws` client, reduced to a single typed result: either an open
 * socket, or the named outcome of the failure (HTTP status, errno, TLS code, handshake fault).
 */
export interface ConnectOptions {
  url: string;
  headers?: Record<string, string>;
  protocols?: string[];
  origin?: string;
  handshakeTimeoutMs: number;
  /** Source address to bind (spreads loopback load over 127.0.0.x). */
  localAddress?: string;
  /** Largest message accepted from the server (ws default is 100 MiB). */
  maxPayload?: number;
  rejectUnauthorized?: boolean;
}

/** A failed attempt, named (shared by every transport: `ws` here, lean in lean-client.ts). */
export interface ConnectFailure {
  ok: false;
  outcome: string;
  detail: string;
  connectMs: number;
  status?: number;
  retryAfterMs?: number;
  /** Set when the server closed before open: the code, so nobody re-parses it from `outcome`. */
  closeCode?: number;
}

export type ConnectResult = { ok: true; ws: WebSocket; connectMs: number } | ConnectFailure;

/** Parses Retry-After (seconds or HTTP date, RFC 9110 §10.2.3) into milliseconds. */
export function parseRetryAfter(value: string | string[] | undefined): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined || v.trim() === '') return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Parses a JSON close reason such as `{"r":"conn_limit","retry_ms":37000}` (docs/contracts.md). */
export function retryMsFromReason(reason: string): number | undefined {
  if (!reason.startsWith('{')) return undefined;
  try {
    const parsed = JSON.parse(reason) as { retry_ms?: unknown };
    return typeof parsed.retry_ms === 'number' ? parsed.retry_ms : undefined;
  } catch (err) {
    // A reason that merely looks like JSON is still a valid reason; it just carries no hint.
    void err;
    return undefined;
  }
}

/**
 * Why the server refused, as reports split rejections by it: the `error` field of a JSON body
 * (wsguard answers `{"error":"conn_limit",…}`), failing that whether a Retry-After came with it
 * (a limit that expects a retry, or a refusal that does not).
 */
export function rejectionReason(body: string, hasRetryAfter: boolean): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === 'string' && parsed.error !== '') return parsed.error.slice(0, 64);
  } catch {
    // Not JSON: fall through to the header.
  }
  return hasRetryAfter ? 'with Retry-After' : 'without Retry-After';
}

export function connect(opts: ConnectOptions): Promise<ConnectResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const settle = (r: ConnectResult): void => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    let ws: WebSocket;
    try {
      ws = new WebSocket(opts.url, opts.protocols ?? [], {
        headers: opts.headers,
        origin: opts.origin,
        handshakeTimeout: opts.handshakeTimeoutMs,
        localAddress: opts.localAddress,
        maxPayload: opts.maxPayload,
        perMessageDeflate: false,
        followRedirects: false,
        rejectUnauthorized: opts.rejectUnauthorized,
      });
    } catch (err) {
      // Bad URL or option: still an outcome, not a crash, so a shard keeps counting.
      const c = classifyError(err);
      settle({ ok: false, outcome: c.key, detail: c.detail, connectMs: performance.now() - started });
      return;
    }
    ws.once('unexpected-response', (req, res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 256) body += chunk;
      });
      const finish = (): void => {
        const detail = rejectionReason(body, res.headers['retry-after'] !== undefined);
        settle({ ok: false, outcome: `rejected.${status}`, detail, status, retryAfterMs, connectMs: performance.now() - started });
        req.destroy();
      };
      res.once('end', finish);
      res.once('error', finish);
      res.once('close', finish);
    });
    ws.once('open', () => settle({ ok: true, ws, connectMs: performance.now() - started }));
    ws.once('error', (err) => {
      const c = classifyError(err);
      settle({ ok: false, outcome: c.key, detail: c.detail, connectMs: performance.now() - started });
    });
    // A 101 followed by an immediate close still opens first; close before open without error
    // means the TCP connection ended mid-handshake.
    ws.once('close', (code) =>
      settle({
        ok: false,
        outcome: closedOutcome(code),
        detail: 'closed before open',
        closeCode: code,
        connectMs: performance.now() - started,
      }),
    );
  });
}

/** 1006 included: our own terminate() after the close grace period ends a socket without a frame. */
const CLEAN_END = new Set<number>([CLOSE.normal, CLOSE.goingAway, CLOSE.noStatus, CLOSE.abnormal]);

/**
 * How an open connection ended, as [outcome, detail]. A socket error seen before the close wins over
 * the close code, because 1006 alone hides ECONNRESET. One rule for every transport.
 */
export function endOutcome(
  clientClosing: boolean,
  errorOutcome: string | undefined,
  errorDetail: string,
  code: number,
  reason: string,
): [string, string] {
  if (clientClosing && errorOutcome === undefined && CLEAN_END.has(code)) return ['completed', reason];
  if (errorOutcome !== undefined) return [errorOutcome, errorDetail];
  return [closedOutcome(code), reason];
}

/** Watches an open socket until it ends and names how it ended (endOutcome). */
export function watchEnd(
  ws: WebSocket,
  clientClosing: () => boolean,
  onEnd: (outcome: string, code: number, reason: string) => void,
): void {
  let errorOutcome: string | undefined;
  let errorDetail = '';
  ws.on('error', (err) => {
    const c = classifyError(err);
    errorOutcome ??= c.key;
    errorDetail ||= c.detail;
  });
  ws.once('close', (code, reasonBuf) => {
    const [outcome, detail] = endOutcome(clientClosing(), errorOutcome, errorDetail, code, reasonBuf.toString());
    onEnd(outcome, code, detail);
  });
}
