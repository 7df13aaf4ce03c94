/**
 * wsguard/client: a reconnecting WebSocket client that follows wsguard's contract
 * (docs/contracts.md, docs/client.md). No runtime dependencies: it runs in browsers (global
 * WebSocket) and in Node 20 with an injected constructor such as the `ws` package's (Node 20's own
 * WebSocket is behind --experimental-websocket).
 */
import { nextDelay, type BackoffPolicy, type Jitter } from './backoff.ts';
import { CLOSE } from '../relay/close-codes.ts';
import { decideClose, decideHandshakeStatus, parseRetryAfter, type CloseAction, type CloseDecision } from './close-policy.ts';

export { nextDelay, delayBounds, withHint, type BackoffPolicy, type Jitter } from './backoff.ts';
export { decideClose, decideHandshakeStatus, parseCloseReason, type CloseAction, type CloseDecision } from './close-policy.ts';

/** The part of the WHATWG WebSocket the client uses; `ws` and browsers both provide it. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  binaryType: string;
  send(data: string | ArrayBufferLike | ArrayBufferView | Blob): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export type SendData = string | ArrayBufferLike | ArrayBufferView | Blob;

export interface TokenContext {
  /** 0 for the first connection; then the reconnect attempt (1, 2, …) since the last established connection. */
  attempt: number;
  /** True after a 4200 (token expired) or a 401: a cached token must not be reused. */
  refresh: boolean;
}

export interface ClientOptions {
  /** The wsguard route, or a function called before every (re)connect (e.g. to pick a replica). */
  url: string | (() => string | Promise<string>);
  /** Called before every (re)connect; the token travels as the subprotocol entry `bearer.<token>`. */
  token?: (ctx: TokenContext) => string | null | undefined | Promise<string | null | undefined>;
  /** App subprotocols, offered before the wsguard marker. */
  protocols?: string[];
  /** Defaults to globalThis.WebSocket; pass `ws`'s WebSocket in Node 20. */
  WebSocket?: WebSocketConstructor;
  /** auth.subprotocolPrefix and auth.subprotocolMarker of the gateway. */
  subprotocolPrefix?: string;
  subprotocolMarker?: string;
  backoff?: {
    /** Shared backoff policy (src/client/backoff.ts), exponential with these parameters. */
    baseMs?: number;
    capMs?: number;
    jitter?: Jitter;
    /** Consecutive failed attempts before `giveup` (0: never give up). */
    maxAttempts?: number;
    /** A server hint (retry_ms, Retry-After) is waited in full, plus up to this share of it at random. */
    hintJitter?: number;
  };
  /** Window over which a 1001/1012 reconnect is spread when the close reason announces none (retry_ms). */
  drainSpreadMs?: number;
  /**
   * A connection counts as established (the attempt counter resets, queued messages are flushed)
   * once it has been open this long or a message arrived. A `rejectWith: close` refusal opens and
   * closes at once; flushing into it would lose the queue.
   */
  settleMs?: number;
  queue?: {
    /** Messages held while not connected. */
    max?: number;
    /** `drop-oldest` makes room by dropping the oldest; `reject` refuses the new message (send returns false). */
    overflow?: 'drop-oldest' | 'reject';
  };
  heartbeat?: {
    /** Reconnect when nothing (message, pong, ping) arrived for this long; 0 turns it off. */
    timeoutMs?: number;
    /** How often to probe: a ping frame where the socket can send one (`ws`), else `message`. */
    intervalMs?: number;
    /** App-level probe for browsers, which cannot send pings; the app must answer it. */
    message?: string | (() => SendData);
  };
  /** Random source in [0, 1), for tests. */
  random?: () => number;
}

export interface OpenEvent {
  protocol: string;
  /** As TokenContext.attempt: 0 at the first connection, else the reconnect attempt that opened it. */
  attempt: number;
}
export interface ReconnectingEvent {
  attempt: number;
  delayMs: number;
  /** Why: `close 4100 conn_limit`, `HTTP 429 conn_limit`, `heartbeat timeout`, `drain 1001 draining`, … */
  reason: string;
  action: CloseAction;
  code?: number;
  status?: number;
  hintMs?: number;
}
export interface CloseEvent {
  code: number;
  reason: string;
  /** Decoded: the JSON reason's `r`, its `retry_ms`, and what the client does next. */
  decision: CloseDecision;
  /** The handshake status, when the runtime exposed it (Node with `ws`). */
  status?: number;
}
export interface GiveupEvent {
  /** `stopped`: the server said not to reconnect; `max_attempts`; `closed`: close() was called. */
  why: 'stopped' | 'max_attempts' | 'closed';
  reason: string;
  code?: number;
  status?: number;
  attempts: number;
}
export interface DroppedEvent {
  /** Messages dropped by this event; `total` over the client's life. */
  count: number;
  total: number;
  why: 'queue_full' | 'closed';
}

export interface ClientEvents {
  open: OpenEvent;
  message: { data: unknown };
  reconnecting: ReconnectingEvent;
  close: CloseEvent;
  giveup: GiveupEvent;
  dropped: DroppedEvent;
}

type Listener<T> = (event: T) => void;

const OPEN = 1;

interface Attempt {
  socket: WebSocketLike;
  openedAt?: number;
  settled: boolean;
  lastSeen: number;
  status?: number;
  retryAfterSec?: number;
  errorCode?: string;
  timers: Array<ReturnType<typeof setTimeout>>;
  done: boolean;
}

/** The `ws` package's extras, used when present: handshake statuses, ping/pong, terminate. */
interface NodeExtras {
  on(event: string, fn: (...args: never[]) => void): void;
  ping?(): void;
  terminate?(): void;
}

const hasNodeExtras = (s: WebSocketLike): s is WebSocketLike & NodeExtras => typeof (s as Partial<NodeExtras>).on === 'function';

export class WsguardClient {
  readonly #o: {
    url: ClientOptions['url'];
    token: ClientOptions['token'];
    protocols: string[];
    WebSocket: WebSocketConstructor;
    prefix: string;
    marker: string;
    policy: Extract<BackoffPolicy, { kind: 'exponential' }>;
    maxAttempts: number;
    hintJitter: number;
    drainSpreadMs: number;
    settleMs: number;
    queueMax: number;
    overflow: 'drop-oldest' | 'reject';
    heartbeatMs: number;
    heartbeatEveryMs: number;
    heartbeatMessage: string | (() => SendData) | undefined;
    random: () => number;
  };
  readonly #listeners: { [K in keyof ClientEvents]: Set<Listener<ClientEvents[K]>> } = {
    open: new Set(),
    message: new Set(),
    reconnecting: new Set(),
    close: new Set(),
    giveup: new Set(),
    dropped: new Set(),
  };
  readonly #queue: SendData[] = [];
  #current: Attempt | null = null;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Reconnect attempts made since the last established connection. */
  #attempt = 0;
  #prevDelayMs = 0;
  #refresh = false;
  #stopped = false;
  #dropped = 0;

  constructor(options: ClientOptions) {
    const Ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!Ctor) throw new TypeError('wsguard/client: no WebSocket constructor: pass options.WebSocket (e.g. the ws package) in Node 20');
    const num = (v: number | undefined, fallback: number, name: string, min = 0): number => {
      const n = v ?? fallback;
      if (!Number.isFinite(n) || n < min) throw new RangeError(`wsguard/client: ${name} must be a number >= ${min} (got ${String(v)})`);
      return n;
    };
    const b = options.backoff ?? {};
    const baseMs = num(b.baseMs, 500, 'backoff.baseMs', 1);
    const capMs = num(b.capMs, 30_000, 'backoff.capMs', baseMs);
    const jitter = b.jitter ?? 'decorrelated';
    if (!['none', 'full', 'equal', 'decorrelated'].includes(jitter))
      throw new RangeError(`wsguard/client: backoff.jitter must be none, full, equal or decorrelated (got ${String(jitter)})`);
    const overflow = options.queue?.overflow ?? 'drop-oldest';
    if (overflow !== 'drop-oldest' && overflow !== 'reject')
      throw new RangeError(`wsguard/client: queue.overflow must be drop-oldest or reject (got ${String(overflow)})`);
    const heartbeatMs = num(options.heartbeat?.timeoutMs, 0, 'heartbeat.timeoutMs');
    this.#o = {
      url: options.url,
      token: options.token,
      protocols: options.protocols ?? [],
      WebSocket: Ctor,
      prefix: options.subprotocolPrefix ?? 'bearer.',
      marker: options.subprotocolMarker ?? 'wsguard.auth',
      policy: { kind: 'exponential', baseMs, capMs, jitter },
      maxAttempts: num(b.maxAttempts, 10, 'backoff.maxAttempts'),
      hintJitter: num(b.hintJitter, 0.5, 'backoff.hintJitter'),
      drainSpreadMs: num(options.drainSpreadMs, 10_000, 'drainSpreadMs'),
      settleMs: num(options.settleMs, 250, 'settleMs'),
      queueMax: num(options.queue?.max, 100, 'queue.max'),
      overflow,
      heartbeatMs,
      heartbeatEveryMs: num(options.heartbeat?.intervalMs, Math.max(1, Math.floor(heartbeatMs / 3)), 'heartbeat.intervalMs', 1),
      heartbeatMessage: options.heartbeat?.message,
      random: options.random ?? Math.random,
    };
    this.#schedule(0);
  }

  on<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    this.#listeners[event].add(listener);
    return () => this.#listeners[event].delete(listener);
  }

  /** True while a connection is open and settled (sends go straight out). */
  get connected(): boolean {
    return this.#current?.settled === true && this.#current.socket.readyState === OPEN;
  }

  /** Messages waiting for a connection. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Messages dropped over the client's life (queue overflow, or still queued at close()). */
  get dropped(): number {
    return this.#dropped;
  }

  /** The subprotocol the server selected on the current connection. */
  get protocol(): string {
    return this.#current?.socket.protocol ?? '';
  }

  /**
   * Sends now when connected, else queues. Returns false when the message was refused (queue full
   * with overflow `reject`, or the client is closed); every refusal or drop also fires `dropped`.
   */
  send(data: SendData): boolean {
    if (this.#stopped) {
      this.#drop(1, 'closed');
      return false;
    }
    if (this.connected && this.#queue.length === 0) {
      this.#current!.socket.send(data);
      return true;
    }
    if (this.#queue.length >= this.#o.queueMax) {
      if (this.#o.overflow === 'reject' || this.#o.queueMax === 0) {
        this.#drop(1, 'queue_full');
        return false;
      }
      this.#queue.shift();
      this.#drop(1, 'queue_full');
    }
    this.#queue.push(data);
    return true;
  }

  /** Closes for good: no more reconnects; messages still queued are dropped (and counted). */
  close(code = 1000, reason = ''): void {
    if (this.#stopped) return;
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    const cur = this.#current;
    if (cur) {
      this.#finish(cur);
      if (cur.socket.readyState <= OPEN) cur.socket.close(code, reason);
    }
    if (this.#queue.length > 0) this.#drop(this.#queue.splice(0).length, 'closed');
    this.#emit('giveup', { why: 'closed', reason: reason || 'close() called', attempts: this.#attempt });
  }

  #emit<K extends keyof ClientEvents>(event: K, payload: ClientEvents[K]): void {
    for (const l of [...this.#listeners[event]]) {
      try {
        l(payload);
      } catch (err) {
        // A listener's bug must not stop the reconnect loop; surface it without swallowing it.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  #drop(count: number, why: DroppedEvent['why']): void {
    this.#dropped += count;
    this.#emit('dropped', { count, total: this.#dropped, why });
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#connect().catch((err: unknown) =>
        this.#failed(undefined, { action: 'backoff', refreshToken: false, reason: `connect failed: ${String(err)}` }),
      );
    }, delayMs);
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    const attempt = this.#attempt;
    const url = typeof this.#o.url === 'function' ? await this.#o.url() : this.#o.url;
    const token = this.#o.token ? await this.#o.token({ attempt, refresh: this.#refresh }) : undefined;
    if (this.#stopped) return;
    this.#refresh = false;
    const protocols = [...this.#o.protocols];
    if (token) protocols.push(this.#o.marker, `${this.#o.prefix}${token}`);
    const socket = new this.#o.WebSocket(url, protocols);
    socket.binaryType = 'arraybuffer';
    const a: Attempt = { socket, settled: false, lastSeen: Date.now(), timers: [], done: false };
    this.#current = a;
    if (hasNodeExtras(socket)) this.#watchNodeSocket(a, socket);
    socket.onopen = () => {
      if (a.done) return;
      a.openedAt = Date.now();
      a.lastSeen = a.openedAt;
      this.#emit('open', { protocol: socket.protocol, attempt });
      a.timers.push(setTimeout(() => this.#settle(a), this.#o.settleMs));
      if (this.#o.heartbeatMs > 0) a.timers.push(setInterval(() => this.#heartbeat(a), this.#o.heartbeatEveryMs));
    };
    socket.onmessage = (ev) => {
      if (a.done) return;
      a.lastSeen = Date.now();
      this.#settle(a);
      this.#emit('message', { data: ev.data });
    };
    socket.onerror = () => {
      // Always followed by onclose (1006 when no close frame came), which decides what happens.
    };
    socket.onclose = (ev) => {
      if (a.done) return;
      this.#finish(a);
      const decision =
        a.status !== undefined ? decideHandshakeStatus(a.status, a.retryAfterSec, a.errorCode) : decideClose(ev.code, ev.reason ?? '');
      const closeEvent: CloseEvent = { code: ev.code, reason: ev.reason ?? '', decision };
      if (a.status !== undefined) closeEvent.status = a.status;
      this.#emit('close', closeEvent);
      this.#failed(a, decision, ev.code);
    };
  }

  /** `ws` in Node: read a refused handshake's status, Retry-After and JSON error; count pings and pongs as signs of life. */
  #watchNodeSocket(a: Attempt, socket: WebSocketLike & NodeExtras): void {
    const alive = () => {
      a.lastSeen = Date.now();
    };
    socket.on('pong', alive);
    socket.on('ping', alive);
    socket.on('unexpected-response', ((_req: unknown, res: NodeResponse) => {
      a.status = res.statusCode;
      a.retryAfterSec = parseRetryAfter(res.headers['retry-after'], Date.now());
      let body = '';
      const finish = () => {
        try {
          const parsed = JSON.parse(body) as { error?: unknown };
          if (typeof parsed.error === 'string') a.errorCode = parsed.error;
        } catch (err) {
          void err; // not wsguard's JSON body: the status alone decides
        }
        socket.terminate?.();
      };
      res.setEncoding?.('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 4096) body += chunk;
      });
      res.on('end', finish);
      res.on('error', finish);
    }) as never);
  }

  #settle(a: Attempt): void {
    if (a.settled || a.done || a.socket.readyState !== OPEN) return;
    a.settled = true;
    this.#attempt = 0;
    this.#prevDelayMs = 0;
    while (this.#queue.length > 0 && a.socket.readyState === OPEN) a.socket.send(this.#queue.shift()!);
  }

  #heartbeat(a: Attempt): void {
    if (a.done || a.socket.readyState !== OPEN) return;
    if (Date.now() - a.lastSeen >= this.#o.heartbeatMs) {
      // A dead peer never answers our close frame: drop the socket now instead of waiting for it.
      this.#finish(a);
      const s = a.socket as WebSocketLike & Partial<NodeExtras>;
      if (typeof s.terminate === 'function') s.terminate();
      else s.close(CLOSE.normal, 'heartbeat timeout');
      const decision: CloseDecision = { action: 'backoff', refreshToken: false, reason: 'heartbeat timeout' };
      this.#emit('close', { code: CLOSE.abnormal, reason: 'heartbeat timeout', decision });
      this.#failed(a, decision, CLOSE.abnormal);
      return;
    }
    const s = a.socket as WebSocketLike & Partial<NodeExtras>;
    if (typeof s.ping === 'function') s.ping();
    else if (this.#o.heartbeatMessage !== undefined)
      s.send(typeof this.#o.heartbeatMessage === 'function' ? this.#o.heartbeatMessage() : this.#o.heartbeatMessage);
  }

  #finish(a: Attempt): void {
    a.done = true;
    for (const t of a.timers) clearTimeout(t);
    a.timers.length = 0;
    if (this.#current === a) this.#current = null;
  }

  /** After a connection or attempt ended: stop, or schedule the next attempt by the decision. */
  #failed(a: Attempt | undefined, d: CloseDecision, code?: number): void {
    if (this.#stopped) return;
    // A connection that never settled (a close-mode refusal opens then closes) does not reset the count.
    if (a?.settled) {
      this.#attempt = 0;
      this.#prevDelayMs = 0;
    }
    const base = { reason: d.reason, ...(code === undefined ? {} : { code }), ...(a?.status === undefined ? {} : { status: a.status }) };
    if (d.action === 'stop') {
      this.#giveup('stopped', base);
      return;
    }
    if (this.#o.maxAttempts > 0 && this.#attempt >= this.#o.maxAttempts) {
      this.#giveup('max_attempts', base);
      return;
    }
    this.#attempt += 1;
    if (d.refreshToken) this.#refresh = true;
    const delayMs = this.#delayFor(d);
    const label = a?.status !== undefined ? `HTTP ${a.status} ${d.reason}` : code !== undefined ? `close ${code} ${d.reason}` : d.reason;
    this.#emit('reconnecting', {
      attempt: this.#attempt,
      delayMs,
      reason: label.trim(),
      action: d.action,
      ...(code === undefined ? {} : { code }),
      ...(a?.status === undefined ? {} : { status: a.status }),
      ...(d.hintMs === undefined ? {} : { hintMs: d.hintMs }),
    });
    this.#schedule(delayMs);
  }

  #delayFor(d: CloseDecision): number {
    const rand = this.#o.random;
    const policyDelay = (): number => {
      const v = nextDelay(this.#o.policy, this.#attempt, this.#prevDelayMs || this.#o.policy.baseMs, rand);
      this.#prevDelayMs = v;
      return v;
    };
    switch (d.action) {
      case 'now':
        // Once: if the fresh connection fails again, the next attempts back off.
        return this.#attempt === 1 ? 0 : policyDelay();
      case 'drain':
        // The gateway spaced its 1001s over its window; a uniform draw over the (announced) window keeps
        // a burst of closes (a fast drain, a restart) from becoming a burst of reconnects.
        // A window of 0 (a drain that closed everyone at once) is no reason to come back all at once.
        return rand() * (d.hintMs || this.#o.drainSpreadMs);
      case 'backoff':
      case 'stop': {
        const p = policyDelay();
        return d.hintMs === undefined ? p : Math.max(p, d.hintMs + rand() * d.hintMs * this.#o.hintJitter);
      }
    }
  }

  #giveup(why: GiveupEvent['why'], base: { reason: string; code?: number; status?: number }): void {
    this.#stopped = true;
    if (this.#queue.length > 0) this.#drop(this.#queue.splice(0).length, 'closed');
    this.#emit('giveup', { why, ...base, attempts: this.#attempt });
  }
}

interface NodeResponse {
  statusCode: number;
  headers: Record<string, string | undefined>;
  setEncoding?(enc: string): void;
  on(event: string, fn: (chunk: string) => void): void;
}

/** Starts a client; see ClientOptions and docs/client.md. */
export function connect(options: ClientOptions): WsguardClient {
  return new WsguardClient(options);
}
