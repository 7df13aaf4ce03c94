import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { GatewayError } from '../errors.ts';
import type { UpstreamConnection, UpstreamDialer, UpstreamDialOptions, UpstreamHandlers } from './upstream-types.ts';

/** High-water mark for bytes queued towards the upstream before `send` reports backpressure. */
const HIGH_WATER_BYTES = 1 << 20;

/**
 * Close codes ws sends when it fails the connection itself (its documented WS_ERR_* codes). ws then
 * reports 1006 on 'close' because no close frame came back; the contract (and the lean leg) report
 * the code that ended the leg, so the baseline maps them. RFC 6455 §7.4.1.
 */
function failureCloseCode(code: string | undefined): number | undefined {
  if (code === undefined || !code.startsWith('WS_ERR_')) return undefined;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH') return 1009;
  if (code === 'WS_ERR_INVALID_UTF8') return 1007;
  if (code === 'WS_ERR_TOO_MANY_BUFFERED_PARTS') return 1008;
  return 1002;
}

/**
 * The `ws` client leg: the well-kept baseline that the lean leg is benchmarked against
 * (bench/relay.ts). Tuned as the issue asks: no permessage-deflate, no UTF-8 validation on this leg
 * (the client side is validated by uWS), synchronous event dispatch.
 */
export const dialWsUpstream: UpstreamDialer = (options: UpstreamDialOptions, handlers: UpstreamHandlers) =>
  new Promise<UpstreamConnection>((resolve, reject) => {
    const socket = new WebSocket(options.url, options.protocols, {
      headers: options.headers,
      handshakeTimeout: options.timeoutMs,
      perMessageDeflate: false,
      skipUTF8Validation: true,
      allowSynchronousEvents: true,
      maxPayload: options.maxPayloadBytes,
      followRedirects: false,
    });
    socket.binaryType = 'nodebuffer';
    const signal = options.signal;
    const onAbort = () => {
      reject(new GatewayError('upstream_unavailable', 'upstream dial cancelled'));
      // In CONNECTING state ws aborts the HTTP request, which destroys the TCP connection.
      socket.terminate();
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    let opened = false;
    let closed = false;
    let waitingForDrain = false;
    let userPaused = false;
    let failure: { code: number; reason: string } | null = null;

    const finish = (code: number, reason: string) => {
      if (closed) return;
      closed = true;
      handlers.batch(() => handlers.onClose(code, reason));
    };

    socket.on('unexpected-response', (_req, res) => {
      reject(new GatewayError('upstream_unavailable', `upstream answered the handshake with HTTP ${res.statusCode}`));
      socket.terminate();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (!opened) {
        const timedOut = /timed out|timeout/i.test(err.message) || err.code === 'ETIMEDOUT';
        reject(
          new GatewayError(timedOut ? 'upstream_timeout' : 'upstream_unavailable', `upstream dial failed: ${err.message}`, {
            cause: err,
          }),
        );
      }
      // After open, 'close' always follows 'error'; it says 1006 when ws failed the leg itself.
      const code = failureCloseCode(err.code);
      if (opened && code !== undefined) failure ??= { code, reason: err.message };
    });
    socket.on('open', () => {
      opened = true;
      signal?.removeEventListener('abort', onAbort);
      const connection: UpstreamConnection = {
        get protocol() {
          return socket.protocol;
        },
        get bufferedAmount() {
          return socket.bufferedAmount;
        },
        send(data, isBinary) {
          // ws queues the buffer by reference: copy, because uWS reuses the ArrayBuffer after the callback.
          const copy = Buffer.from(data instanceof ArrayBuffer ? new Uint8Array(data) : data);
          socket.send(copy, { binary: isBinary, compress: false, fin: true });
          if (socket.bufferedAmount <= HIGH_WATER_BYTES) return true;
          if (!waitingForDrain) {
            waitingForDrain = true;
            (socket as unknown as { _socket: Socket })._socket.once('drain', () => {
              waitingForDrain = false;
              handlers.onDrain();
            });
          }
          return false;
        },
        pause: () => {
          userPaused = true;
          socket.pause();
        },
        resume: () => {
          userPaused = false;
          socket.resume();
        },
        close: (code, reason) => socket.close(code, reason),
        terminate: () => socket.terminate(),
      };
      // Frames that came with the 101 would otherwise be emitted on the next tick, before the
      // caller's `await` continues and is ready for them: hold reading until then.
      socket.pause();
      resolve(connection);
      setImmediate(() => {
        if (!userPaused) socket.resume();
      });
    });
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      handlers.batch(() => handlers.onMessage(data, isBinary));
    });
    socket.on('close', (code: number, reason: Buffer) => {
      signal?.removeEventListener('abort', onAbort);
      if (!opened) return;
      if (code === 1006 && failure !== null) finish(failure.code, failure.reason);
      else finish(code, reason.toString('utf8'));
    });
  });
