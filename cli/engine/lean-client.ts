import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { CLOSE, isSendableCloseCode } from '../../src/relay/close-codes.ts';
import { scheduleFlush } from '../../src/relay/lean/flush-scheduler.ts';
import { FrameReader } from '../../src/relay/lean/frame-reader.ts';
import { FrameWriter } from '../../src/relay/lean/frame-writer.ts';
import { checkUpgrade, newKey, parseResponseHead, requestHead } from '../../src/relay/lean/handshake.ts';
import { OP_BINARY, OP_PONG, OP_TEXT } from '../../src/relay/lean/opcodes.ts';
import { openLeanSocket } from '../../src/relay/lean/socket.ts';
import { endOutcome, parseRetryAfter, rejectionReason, type ConnectOptions } from './connection.ts';
import type { GenConnectResult, GenSocket } from './gen-socket.ts';
import { classifyError } from './outcomes.ts';

/** What `ws` accepts from a server by default (100 MiB); the lean client matches it unless told. */
const DEFAULT_MAX_PAYLOAD = 100 * 1024 * 1024;
/** A response head larger than this is not an upgrade answer. */
const MAX_HEAD_BYTES = 16 * 1024;
/** Body bytes of a refusal kept for its reason (as connect() keeps them). */
const MAX_BODY_BYTES = 256;
/** After both close frames, how long the server may take to drop TCP (§7.1.1) before we do; ws's closeTimeout. */
const CLOSE_TIMEOUT_MS = 30_000;

/**
 * The frame reader's failures under the names `ws` gives the same violations (its WS_ERR_* codes),
 * so a report reads the same whichever transport ran. Reasons the reader does not distinguish
 * (which reserved bit, which control-frame rule) take ws's name for the first it checks.
 */
const PROTOCOL_NAMES: ReadonlyArray<[RegExp, string]> = [
  [/^reserved bits/, 'WS_ERR_UNEXPECTED_RSV_1'],
  [/^masked server frame/, 'WS_ERR_UNEXPECTED_MASK'],
  [/^frame length out of range/, 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH'],
  [/^unknown opcode|^continuation without|^new message inside/, 'WS_ERR_INVALID_OPCODE'],
  [/^invalid control frame/, 'WS_ERR_EXPECTED_FIN'],
  [/^close frame with a 1-byte body/, 'WS_ERR_INVALID_CONTROL_PAYLOAD_LENGTH'],
  [/^invalid close code/, 'WS_ERR_INVALID_CLOSE_CODE'],
  [/^invalid UTF-8/, 'WS_ERR_INVALID_UTF8'],
  [/^message too big/, 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'],
];

export function protocolOutcome(reason: string): string {
  for (const [re, name] of PROTOCOL_NAMES) if (re.test(reason)) return `protocol.${name}`;
  return 'protocol.WS_ERR_UNCLASSIFIED';
}

/** checkUpgrade's failures, named as outcomes.ts names ws's (handshake.<why>). */
function handshakeOutcome(error: string): string {
  if (/Sec-WebSocket-Accept/.test(error)) return 'handshake.bad_accept';
  if (/subprotocol/.test(error)) return 'handshake.bad_subprotocol';
  if (/extension/.test(error)) return 'handshake.bad_extension';
  return 'handshake.bad_upgrade';
}

/**
 * One connection attempt with the lean client: TCP (or TLS), the upgrade, and on success an open
 * LeanClient. Every failure is named exactly as `connect()` names it with `ws` (rejected.<status>
 * with Retry-After and the body's reason, error.<ERRNO>, tls.<CODE>, handshake.<why>,
 * error.HANDSHAKE_TIMEOUT); test/cli/engine/lean-client.test.ts holds the two side by side.
 */
export function leanConnect(opts: ConnectOptions): Promise<GenConnectResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const elapsed = (): number => performance.now() - started;
    let url: URL;
    try {
      url = new URL(opts.url);
      if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new SyntaxError(`The URL's protocol must be one of "ws:", "wss:"`);
    } catch (err) {
      const c = classifyError(err);
      resolve({ ok: false, outcome: c.key, detail: c.detail, connectMs: elapsed() });
      return;
    }
    const secure = url.protocol === 'wss:';
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
    const key = newKey();
    const offered = opts.protocols ?? [];
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.origin !== undefined) headers.Origin = opts.origin;

    let head: Buffer | null = null;
    /** Set once a non-101 head was read: the refusal whose body is being collected. */
    let refusal: { status: number; retryAfter: string | undefined; body: Buffer; bodyLimit: number } | null = null;
    let client: LeanClient | null = null;

    const fail = (outcome: string, detail: string, extra: Partial<GenConnectResult> = {}): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok: false, outcome, detail, connectMs: elapsed(), ...extra } as GenConnectResult);
    };
    const finishRefusal = (): void => {
      const r = refusal!;
      const detail = rejectionReason(r.body.toString('utf8', 0, Math.min(r.body.length, MAX_BODY_BYTES)), r.retryAfter !== undefined);
      fail(`rejected.${r.status}`, detail, { status: r.status, retryAfterMs: parseRetryAfter(r.retryAfter) });
    };

    const onHandshakeBytes = (chunk: Buffer): void => {
      if (settled) return;
      if (refusal !== null) {
        refusal.body = Buffer.concat([refusal.body, chunk]);
        if (refusal.body.length >= refusal.bodyLimit) finishRefusal();
        return;
      }
      const bytes: Buffer = head === null ? Buffer.from(chunk) : Buffer.concat([head, chunk]);
      const end = bytes.indexOf('\r\n\r\n');
      if (end < 0) {
        head = bytes;
        if (bytes.length > MAX_HEAD_BYTES) fail('error.HPE_HEADER_OVERFLOW', 'upgrade response head too large');
        return;
      }
      head = null;
      const parsed = parseResponseHead(bytes.toString('latin1', 0, end));
      if (parsed === null) {
        fail('error.HPE_INVALID_CONSTANT', 'the server answered with something other than HTTP/1.1');
        return;
      }
      const rest = bytes.subarray(end + 4);
      if (parsed.status !== 101) {
        const length = Number(parsed.headers.get('content-length') ?? NaN);
        refusal = {
          status: parsed.status,
          retryAfter: parsed.headers.get('retry-after'),
          body: rest,
          bodyLimit: Number.isFinite(length) ? Math.min(length, MAX_BODY_BYTES) : MAX_BODY_BYTES,
        };
        if (refusal.body.length >= refusal.bodyLimit) finishRefusal();
        return;
      }
      const verdict = checkUpgrade(parsed, key, offered);
      if ('error' in verdict) {
        fail(handshakeOutcome(verdict.error), verdict.error);
        return;
      }
      // ws insists on a subprotocol when it offered any; so does this client, so outcomes match.
      if (offered.length > 0 && verdict.protocol === '') {
        fail('handshake.bad_subprotocol', 'Server sent no subprotocol');
        return;
      }
      settled = true;
      clearTimeout(timer);
      socket.removeListener('error', onDialError);
      socket.removeListener('close', onDialClose);
      socket.removeListener('end', onDialEnd);
      client = new LeanClient(socket, opts.maxPayload ?? DEFAULT_MAX_PAYLOAD, rest.length > 0 ? Buffer.from(rest) : null);
      resolve({ ok: true, sock: client, connectMs: elapsed() });
    };
    const onBytes = (chunk: Buffer): void => {
      if (client !== null) client.onRead(chunk);
      else onHandshakeBytes(chunk);
    };

    let socket: net.Socket;
    try {
      socket = openLeanSocket(
        { host, port, localAddress: opts.localAddress, tls: secure ? { rejectUnauthorized: opts.rejectUnauthorized } : null },
        onBytes,
      );
    } catch (err) {
      const c = classifyError(err);
      settled = true;
      resolve({ ok: false, outcome: c.key, detail: c.detail, connectMs: elapsed() });
      return;
    }
    const timer = setTimeout(() => {
      if (refusal !== null) finishRefusal();
      else fail('error.HANDSHAKE_TIMEOUT', 'Opening handshake has timed out');
    }, opts.handshakeTimeoutMs);
    const onDialError = (err: Error): void => {
      const c = classifyError(err);
      fail(c.key, c.detail);
    };
    // A refusal without Content-Length ends with the connection; anything else ending early is a hang-up.
    const onDialEnd = (): void => {
      if (refusal !== null) finishRefusal();
    };
    const onDialClose = (): void => {
      if (refusal !== null) finishRefusal();
      else fail('error.ECONNRESET', 'socket hang up');
    };
    socket.on('error', onDialError);
    socket.on('end', onDialEnd);
    socket.on('close', onDialClose);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      if (!settled) socket.write(requestHead(url, key, { protocols: offered, headers }));
    });
  });
}

type EndHandler = (outcome: string, code: number, reason: string) => void;

/**
 * An open lean client connection (RFC 6455 client side): masked frames from the project's frame
 * writer, flushed once per event-loop iteration through the lean leg's flush scheduler, so a tick's
 * sends on one connection leave in one write; server frames parsed by the lean leg's frame reader.
 * Pings are answered; a close frame is echoed (§5.5.1); a protocol violation fails the connection
 * with the reader's close code (§7.1.7). It ends once, when TCP is gone, like `ws`.
 */
export class LeanClient implements GenSocket {
  readonly #socket: net.Socket;
  readonly #reader: FrameReader;
  readonly #writer: FrameWriter;
  #held: Buffer | null;
  #queued = false;
  #pendingPong: Buffer | null = null;
  #closeSent = false;
  #closeReceived = false;
  #code: number = CLOSE.abnormal;
  #reason = '';
  #errorOutcome: string | undefined;
  #errorDetail = '';
  #ended = false;
  #closeTimer: NodeJS.Timeout | null = null;
  #clientClosing: () => boolean = () => this.#closeSent;
  #onMessage: (data: Buffer, readAt?: number) => void = () => undefined;
  #readAt = 0;
  #onEnd: EndHandler | null = null;

  constructor(socket: net.Socket, maxPayloadBytes: number, rest: Buffer | null) {
    this.#socket = socket;
    this.#held = rest;
    this.#reader = new FrameReader(
      {
        onMessage: (data) => this.#onMessage(data as Buffer, this.#readAt),
        onPing: (payload) => this.#onPing(payload),
        onPong: () => undefined,
        onClose: (code, reason) => this.#onCloseFrame(code, reason),
        onError: (code, reason) => this.#fail(code, reason),
      },
      { maxPayloadBytes },
    );
    this.#writer = new FrameWriter((bytes) => {
      if (!socket.destroyed && !socket.writableEnded) socket.write(bytes);
    });
    // Until watch() attaches the run's handlers nothing is parsed: bytes that came with the 101 wait.
    socket.pause();
    socket.on('error', (err) => {
      const c = classifyError(err);
      this.#errorOutcome ??= c.key;
      this.#errorDetail ||= c.detail;
    });
    socket.on('drain', () => {
      if (this.#pendingPong !== null) this.#scheduleFlush();
    });
    socket.on('close', () => this.#onSocketClose());
  }

  get bufferedAmount(): number {
    return this.#writer.pendingBytes + this.#socket.writableLength;
  }

  watch(clientClosing: () => boolean, onMessage: (data: Buffer, readAt?: number) => void, onEnd: EndHandler): void {
    this.#clientClosing = clientClosing;
    this.#onMessage = onMessage;
    this.#onEnd = onEnd;
    const held = this.#held;
    this.#held = null;
    if (held !== null) this.onRead(held);
    if (this.#ended) this.#report();
    else this.#socket.resume();
  }

  send(data: string | Buffer, isBinary = typeof data !== 'string'): void {
    if (this.#closeSent || this.#ended) return; // §5.5.1: no data frames after a close frame
    // The frame writer copies (masking) before return, so a reused buffer may be passed.
    this.#writer.encode(isBinary ? OP_BINARY : OP_TEXT, typeof data === 'string' ? Buffer.from(data) : data);
    this.#scheduleFlush();
  }

  cork(): void {}

  uncork(): void {}

  close(code: number, reason: string): void {
    if (this.#closeSent || this.#ended) return;
    this.#closeSent = true;
    this.#writer.encodeClose(isSendableCloseCode(code) ? code : null, reason);
    this.#flush();
    if (this.#closeReceived) this.#socket.end();
    this.#armCloseTimer();
  }

  terminate(): void {
    this.#socket.destroy();
  }

  /** Bytes read; `chunk` may be the shared read buffer, so nothing here keeps it past the call. */
  onRead(chunk: Buffer): void {
    if (this.#onEnd === null) {
      // Read before watch(): keep a copy (only possible for TLS, which ignores pause() mid-chunk).
      this.#held = this.#held === null ? Buffer.from(chunk) : Buffer.concat([this.#held, chunk]);
      return;
    }
    if (this.#reader.stopped || this.#reader.absorb(chunk)) return;
    // One clock reading per read: performance.now() per echo was 2.7% of the generator's CPU.
    this.#readAt = performance.now();
    this.#reader.push(chunk);
  }

  #scheduleFlush(): void {
    if (this.#queued) return;
    this.#queued = true;
    scheduleFlush(this);
  }

  /** Called by the flush scheduler once per event-loop iteration. */
  flush(): void {
    this.#flush();
  }

  #flush(): void {
    this.#queued = false;
    const pong = this.#pendingPong;
    if (pong !== null) {
      this.#pendingPong = null;
      if (!this.#closeSent) this.#writer.encode(OP_PONG, pong);
    }
    this.#writer.flush();
  }

  #onPing(payload: Buffer): void {
    // §5.5.3: only the latest ping needs its pong; one per flush, so a ping flood cannot grow memory.
    if (this.#closeSent) return;
    this.#pendingPong = Buffer.from(payload);
    this.#scheduleFlush();
  }

  #onCloseFrame(code: number, reason: string): void {
    this.#closeReceived = true;
    this.#code = code;
    this.#reason = reason;
    // §5.5.1: echo the status code received (none for 1005), then the TCP end is the server's.
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#writer.encodeClose(code === CLOSE.noStatus ? null : code, reason);
      this.#flush();
    }
    this.#socket.end();
    this.#armCloseTimer();
  }

  /** The server broke the protocol (§7.1.7): close with the reader's code, as ws does. */
  #fail(code: number, reason: string): void {
    this.#errorOutcome ??= protocolOutcome(reason);
    this.#errorDetail ||= reason;
    this.#code = code;
    if (!this.#closeSent) {
      this.#closeSent = true;
      this.#writer.encodeClose(code, '');
      this.#flush();
    }
    this.#socket.end();
    this.#armCloseTimer();
  }

  #armCloseTimer(): void {
    if (this.#closeTimer !== null || this.#socket.destroyed) return;
    this.#closeTimer = setTimeout(() => this.#socket.destroy(), CLOSE_TIMEOUT_MS);
    this.#closeTimer.unref();
  }

  #onSocketClose(): void {
    if (this.#closeTimer !== null) clearTimeout(this.#closeTimer);
    this.#ended = true;
    if (this.#onEnd !== null) this.#report();
  }

  #report(): void {
    const onEnd = this.#onEnd!;
    this.#onEnd = () => undefined;
    const code = this.#code;
    const [outcome, detail] = endOutcome(this.#clientClosing(), this.#errorOutcome, this.#errorDetail, code, this.#reason);
    onEnd(outcome, code, detail);
  }
}
