/**
 * The contract between the gateway and the client leg that dials the app (the upstream).
 * uWS.js is server-only, so this leg is our own: `lean/` frames straight onto a
 * net.Socket (the default, see BENCHMARKS.md), `ws-upstream.ts` is the `ws` baseline it is measured
 * against. Both implement exactly this interface and pass the same protocol tests.
 */
export interface UpstreamDialOptions {
  /** ws:// URL including path and query (the token already stripped). */
  url: URL;
  /** Extra request headers: X-Forwarded-*, claim headers, traceparent. Names are lower-case. */
  headers: Record<string, string>;
  /** Subprotocols offered to the upstream, in client order (token-bearing entries removed). */
  protocols: string[];
  /** Deadline for TCP connect + HTTP upgrade; past it the dial fails with `upstream_timeout`. */
  timeoutMs: number;
  /** Largest message accepted from the upstream; a larger one closes the leg with 1009. */
  maxPayloadBytes: number;
  /**
   * Ping + pong frames the upstream may send per second (bucket of twice this); past it the leg
   * fails with 1008. Absent: no limit (the gateway always passes messages.controlFramesPerSec).
   */
  controlFramesPerSec?: number;
  /**
   * Cancels the dial (the client's handshake ended first: its deadline, an abort, a drain). The leg
   * destroys its TCP connection at once and rejects with `upstream_unavailable`. No effect once
   * the dial has resolved: the connection is closed through `close`/`terminate` then.
   */
  signal?: AbortSignal;
  /**
   * Outbound bytes queued towards the upstream above which `send` returns false (the relay then
   * stalls the client within backpressure.maxStallMs). Default 1 MiB; the gateway passes
   * backpressure.highWaterBytes, so the option governs both directions as documented.
   */
  highWaterBytes?: number;
  /** Source address for the TCP connect (upstream.localAddresses rotates over these); absent: the kernel picks. */
  localAddress?: string;
}

export interface UpstreamHandlers {
  /**
   * One complete message from the upstream. `data` is only valid during the call (it may be a view
   * into the receive buffer): copy it or finish with it before returning.
   */
  onMessage(data: Uint8Array, isBinary: boolean): void;
  /**
   * The leg ended. `code` is the close code the upstream sent (1005 when its close frame had none),
   * or 1006 when the TCP connection ended without a close frame. Called exactly once.
   * `failed` is true when this leg failed the connection itself (RFC 6455 §7.1.7: a protocol error,
   * a message too big, invalid UTF-8, a control-frame flood); `code` is then what the upstream was sent.
   */
  onClose(code: number, reason: string, failed?: boolean): void;
  /** Buffered outbound bytes fell back under the high-water mark after `send` returned false. */
  onDrain(): void;
  /**
   * Called around the delivery of every received chunk, so that the gateway can deliver all the
   * messages parsed from one read inside one uWS `cork` (one syscall to the client, not one per
   * message). Implementations call `batch(deliver)` and `deliver` calls onMessage/onClose.
   */
  batch(deliver: () => void): void;
}

export interface UpstreamConnection {
  /** The subprotocol the upstream selected ('' when none). */
  readonly protocol: string;
  /** Bytes queued towards the upstream and not yet handed to the kernel. */
  readonly bufferedAmount: number;
  /**
   * Queues one message. The bytes are copied before return, so a uWS ArrayBuffer may be passed.
   * Returns false when the buffered amount is over the high-water mark (the caller should stop
   * reading from the client until onDrain).
   */
  send(data: ArrayBuffer | Uint8Array, isBinary: boolean): boolean;
  /** Stop/resume reading from the upstream socket (backpressure from a slow client). */
  pause(): void;
  resume(): void;
  /** Sends a close frame (code/reason as given) after queued data, then ends the socket. */
  close(code: number, reason: string): void;
  /** Destroys the socket at once; onClose(1006) follows. */
  terminate(): void;
}

export type UpstreamDialer = (options: UpstreamDialOptions, handlers: UpstreamHandlers) => Promise<UpstreamConnection>;
