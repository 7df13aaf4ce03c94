import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { GatewayError } from '../errors.ts';
import type { UpstreamConnection, UpstreamDialer, UpstreamDialOptions, UpstreamHandlers } from './upstream-types.ts';

/** High-water mark for bytes queued towards the upstream before `send` reports backpressure. */
const HIGH_WATER_BYTES = 1 << 20;

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
    let opened = false;
    let closed = false;
    let waitingForDrain = false;

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
      // After open, 'close' always follows 'error' and carries the code.
    });
    socket.on('open', () => {
      opened = true;
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
        pause: () => socket.pause(),
        resume: () => socket.resume(),
        close: (code, reason) => socket.close(code, reason),
        terminate: () => socket.terminate(),
      };
      resolve(connection);
    });
    socket.on('message', (data: Buffer, isBinary: boolean) => {
      handlers.batch(() => handlers.onMessage(data, isBinary));
    });
    socket.on('close', (code: number, reason: Buffer) => {
      if (opened) finish(code, reason.toString('utf8'));
    });
  });
