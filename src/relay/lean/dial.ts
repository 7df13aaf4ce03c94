import type tls from 'node:tls';
import { GatewayError } from '../../errors.ts';
import type { UpstreamConnection, UpstreamDialer, UpstreamDialOptions, UpstreamHandlers } from '../upstream-types.ts';
import { LeanConnection, type ConnectionSettings } from './connection.ts';
import { HandshakeResponse, newKey, requestHead } from './handshake.ts';
import { openLeanSocket } from './socket.ts';

const DEFAULT_HIGH_WATER_BYTES = 1 << 20;
/** RFC 6455 §7.1.1: after the closing handshake the server should drop TCP first; we wait this long for it. */
const DEFAULT_CLOSE_TIMEOUT_MS = 1000;

export interface LeanDialerOptions {
  /** Outbound bytes (ours + the socket's) above which `send` returns false. */
  highWaterBytes?: number;
  /** How long to wait for the upstream's close frame / TCP end after we sent a close frame. */
  closeTimeoutMs?: number;
  /** TLS settings for wss:// upstreams (e.g. `ca` for a private CA); host and servername are set from the URL. */
  tls?: tls.ConnectionOptions;
}

interface DialSettings extends ConnectionSettings {
  tls: tls.ConnectionOptions | undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Builds a lean dialer; `dialLeanUpstream` is the default one. */
export function createLeanDialer(lean: LeanDialerOptions = {}): UpstreamDialer {
  const settings: DialSettings = {
    highWaterBytes: lean.highWaterBytes ?? DEFAULT_HIGH_WATER_BYTES,
    closeTimeoutMs: lean.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS,
    tls: lean.tls,
  };
  return (options, handlers) => dial(options, handlers, settings);
}

/** TCP (or TLS) connect and the upgrade handshake, within options.timeoutMs; resolves with the upgraded connection. */
function dial(options: UpstreamDialOptions, handlers: UpstreamHandlers, settings: DialSettings): Promise<UpstreamConnection> {
  return new Promise<UpstreamConnection>((resolve, reject) => {
    const url = options.url;
    const secure = url.protocol === 'wss:' || url.protocol === 'https:';
    if (!secure && url.protocol !== 'ws:' && url.protocol !== 'http:') {
      reject(new GatewayError('upstream_unavailable', `unsupported upstream URL scheme ${url.protocol}`));
      return;
    }
    const key = newKey();
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);

    let settled = false;
    const response = new HandshakeResponse(key, options.protocols);
    let connection: LeanConnection | null = null;

    const onBytes = (chunk: Buffer) => {
      if (connection !== null) {
        connection.onRead(chunk);
        return;
      }
      try {
        onHandshakeBytes(chunk);
      } catch (err) {
        fail('upstream_unavailable', `upstream handshake could not be read: ${errorMessage(err)}`, err);
      }
    };

    const socket = openLeanSocket({ host, port, localAddress: options.localAddress, tls: secure ? (settings.tls ?? {}) : null }, onBytes);

    const fail = (code: 'upstream_unavailable' | 'upstream_timeout', message: string, cause?: unknown) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(new GatewayError(code, message, cause === undefined ? undefined : { cause }));
    };

    const timer = setTimeout(
      () => fail('upstream_timeout', `upstream did not complete the handshake within ${options.timeoutMs} ms`),
      options.timeoutMs,
    );
    const onAbort = () => fail('upstream_unavailable', 'upstream dial cancelled');
    if (options.signal?.aborted) onAbort();
    else options.signal?.addEventListener('abort', onAbort, { once: true });

    const onHandshakeBytes = (chunk: Buffer) => {
      if (settled) return;
      const outcome = response.push(chunk);
      if (outcome === null) return;
      if ('error' in outcome) {
        fail('upstream_unavailable', outcome.error);
        return;
      }
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.removeListener('error', onDialError);
      socket.removeListener('close', onDialClose);
      connection = new LeanConnection(socket, handlers, options, settings);
      connection.activate(outcome.protocol, outcome.rest);
      resolve(connection);
    };

    const onDialError = (err: NodeJS.ErrnoException) => {
      const code = err.code === 'ETIMEDOUT' ? 'upstream_timeout' : 'upstream_unavailable';
      fail(code, `upstream dial failed: ${err.message}`, err);
    };
    const onDialClose = () => fail('upstream_unavailable', 'upstream closed the connection before the handshake completed');

    socket.on('error', onDialError);
    socket.on('close', onDialClose);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      if (!settled) socket.write(requestHead(url, key, options));
    });
  });
}

export const dialLeanUpstream: UpstreamDialer = createLeanDialer();
