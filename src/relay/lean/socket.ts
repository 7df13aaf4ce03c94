import net from 'node:net';
import tls from 'node:tls';
import { sharedReadBuffer } from './read-buffer.ts';

export interface LeanSocketOptions {
  host: string;
  port: number;
  localAddress?: string;
  /** wss://: TLS options (CA, client pair, rejectUnauthorized, servername); null for plain TCP. */
  tls: tls.ConnectionOptions | null;
}

/**
 * The TCP (or TLS) socket of a lean connection, for the relay's upstream leg and the CLI's lean
 * client alike: Nagle off, every read handed to `onBytes`. Plain TCP reads into the one shared
 * buffer (no allocation per read); TLS decrypts into its own buffers, so its reads arrive as 'data'.
 * The server name defaults to the host unless it is an IP address (RFC 6066 §3 forbids literal IPs).
 */
export function openLeanSocket(o: LeanSocketOptions, onBytes: (chunk: Buffer) => void): net.Socket {
  if (o.tls) {
    const socket = tls.connect({
      ...o.tls,
      host: o.host,
      port: o.port,
      // A net.connect option tls.connect passes on (its typings omit it).
      ...(o.localAddress ? { localAddress: o.localAddress } : {}),
      servername: o.tls.servername ?? (net.isIP(o.host) === 0 ? o.host : undefined),
      ALPNProtocols: ['http/1.1'],
    });
    socket.setNoDelay(true);
    socket.on('data', onBytes);
    return socket;
  }
  return net.connect({
    host: o.host,
    port: o.port,
    localAddress: o.localAddress,
    noDelay: true,
    onread: {
      buffer: sharedReadBuffer,
      callback: (bytes: number, buffer: Uint8Array) => {
        onBytes(Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
        return true;
      },
    },
  });
}
