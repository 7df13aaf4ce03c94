import type { Socket } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import WebSocket from 'ws';
import { ERROR_CODES, GatewayError } from '../errors.ts';
import { createBucket, take } from '../messages/token-bucket.ts';
import { CLOSE } from './close-codes.ts';
import type { UpstreamConnection, UpstreamDialer, UpstreamDialOptions, UpstreamHandlers } from './upstream-types.ts';

/** High-water mark for bytes queued towards the upstream before `send` reports backpressure. */
const DEFAULT_HIGH_WATER_BYTES = 1 << 20;
/** After failing the leg with a close frame, how long the upstream gets to end TCP (as the lean leg). */
const FAIL_CLOSE_TIMEOUT_MS = 1000;

/**
 * Close codes ws sends when it fails the connection itself (its documented WS_ERR_* codes). ws then
 * reports 1006 on 'close' because no close frame came back; the contract (and the lean leg) report
 * the code that ended the leg, so the baseline maps them. RFC 6455 §7.4.1.
 */
function failureCloseCode(code: string | undefined): number | undefined {
  if (code === undefined || !code.startsWith('WS_ERR_')) return undefined;
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' || code === 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH') return CLOSE.tooBig;
  if (code === 'WS_ERR_INVALID_UTF8') return CLOSE.invalidPayload;
  if (code === 'WS_ERR_TOO_MANY_BUFFERED_PARTS') return CLOSE.policyViolation;
  return CLOSE.protocolError;
}

/**
 * The `ws` client leg: the well-kept baseline that the lean leg is benchmarked against
 * (bench/relay.ts). Tuned as the issue asks: no permessage-deflate, synchronous event dispatch.
 * Upstream text is UTF-8 validated (RFC 6455 §8.1: 1007, never relayed). Pings are answered here,
 * not by ws's autoPong: one coalesced pong for the latest ping, held while the socket is over the
 * high-water mark, and a flood over controlFramesPerSec fails the leg with 1008 (ws's own
 * maxPendingAutoPongs would only drop TCP, telling neither side why).
 */
export const dialWsUpstream: UpstreamDialer = createWsDialer();

/** A `ws` leg whose wss:// dials use `tls` (CA, client pair, servername: upstream.tls). */
export function createWsDialer(tls: ConnectionOptions = {}): UpstreamDialer {
  return (options, handlers) => dialWs(options, handlers, tls);
}

function dialWs(options: UpstreamDialOptions, handlers: UpstreamHandlers, tls: ConnectionOptions): Promise<UpstreamConnection> {
  return new Promise<UpstreamConnection>((resolve, reject) => {
    const highWaterBytes = options.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES;
    const socket = new WebSocket(options.url, options.protocols, {
      ...tls,
      headers: options.headers,
      handshakeTimeout: options.timeoutMs,
      perMessageDeflate: false,
      skipUTF8Validation: false,
      autoPong: false,
      allowSynchronousEvents: true,
      maxPayload: options.maxPayloadBytes,
      followRedirects: false,
      ...(options.localAddress ? { localAddress: options.localAddress } : {}),
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
    const perSec = options.controlFramesPerSec;
    const control = perSec === undefined ? null : createBucket(perSec * 2, Date.now());
    let pendingPong: Buffer | null = null;
    let pongScheduled = false;

    const finish = (code: number, reason: string, failed = false) => {
      if (closed) return;
      closed = true;
      pendingPong = null;
      handlers.batch(() => handlers.onClose(code, reason, failed));
    };

    /** §7.1.7: tell the upstream why, report at once, and drop TCP if it does not close in time. */
    const failLeg = (code: number, reason: string) => {
      if (closed) return;
      failure ??= { code, reason };
      if (socket.readyState === WebSocket.OPEN) socket.close(code, reason);
      setTimeout(() => socket.terminate(), FAIL_CLOSE_TIMEOUT_MS).unref();
      finish(code, reason, true);
    };

    const rawSocket = () => (socket as unknown as { _socket: Socket })._socket;
    const sendPong = () => {
      pongScheduled = false;
      if (pendingPong === null || closed || socket.readyState !== WebSocket.OPEN) return;
      if (socket.bufferedAmount > highWaterBytes) {
        pongScheduled = true;
        rawSocket().once('drain', sendPong);
        return;
      }
      const pong = pendingPong;
      pendingPong = null;
      socket.pong(pong, true);
    };
    const onControl = (data: Buffer, isPing: boolean) => {
      if (closed) return;
      if (control !== null && take(control, 1, perSec! * 2, perSec! / 1000, Date.now()) !== 0) {
        failLeg(ERROR_CODES.control_rate.closeCode, 'control frame rate exceeded');
        return;
      }
      if (!isPing) return;
      pendingPong = Buffer.from(data); // a view would keep ws's whole read chunk alive
      if (!pongScheduled) {
        pongScheduled = true;
        setImmediate(sendPong);
      }
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
      // ws has already sent its close frame; report now instead of after its 30 s close timeout.
      const code = failureCloseCode(err.code);
      if (opened && code !== undefined) failLeg(code, err.message);
    });
    socket.on('ping', (data: Buffer) => onControl(data, true));
    socket.on('pong', (data: Buffer) => onControl(data, false));
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
          if (socket.bufferedAmount <= highWaterBytes) return true;
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
      if (failure !== null) finish(failure.code, failure.reason, true);
      else finish(code, reason.toString('utf8'));
    });
  });
}
