import type WebSocket from 'ws';
import type { ConnectFailure } from './connection.ts';
import { watchEnd } from './connection.ts';

/**
 * The part of a client connection the flood hot path drives. Two transports implement it: the lean
 * client (cli/engine/lean-client.ts, the default) and `ws` (through wsGenSocket), so the two can be
 * measured side by side in bench/cli-ceiling.ts and chosen with FloodOptions.transport.
 */
export interface GenSocket {
  /** Bytes queued and not yet taken by the kernel. */
  readonly bufferedAmount: number;
  /** Queues one message: a string goes as a text frame, a Buffer as binary unless `isBinary` is false. */
  send(data: string | Buffer, isBinary?: boolean): void;
  /** Around a burst of sends, so they leave in one write (a no-op where writes are batched per tick anyway). */
  cork(): void;
  uncork(): void;
  close(code: number, reason: string): void;
  terminate(): void;
  /**
   * Attaches the run's handlers: every message, then exactly one end, named as watchEnd names it
   * (an error seen before the close wins over the close code; a clean end we asked for is `completed`).
   * `readAt` (performance.now() when the bytes were read) comes with the lean client's messages, so
   * the messages of one read share one clock reading; absent, the caller reads the clock.
   */
  watch(
    clientClosing: () => boolean,
    onMessage: (data: Buffer, readAt?: number) => void,
    onEnd: (outcome: string, code: number, reason: string) => void,
  ): void;
}

export type Transport = 'ws' | 'lean';
export const TRANSPORTS: readonly Transport[] = ['lean', 'ws'];

export type GenConnectResult = { ok: true; sock: GenSocket; connectMs: number } | ConnectFailure;

/** A `ws` WebSocket as a GenSocket: the comparison transport, and what `connect()` users keep getting. */
export function wsGenSocket(ws: WebSocket): GenSocket {
  const socket = (): import('node:net').Socket | undefined => (ws as unknown as { _socket?: import('node:net').Socket })._socket;
  return {
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    send: (data, isBinary) => (isBinary === false ? ws.send(data, { binary: false }) : ws.send(data)),
    cork: () => socket()?.cork(),
    uncork: () => socket()?.uncork(),
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
    watch(clientClosing, onMessage, onEnd) {
      // Not onMessage itself: ws passes isBinary second, which is not a read time.
      ws.on('message', (data: Buffer) => onMessage(data));
      watchEnd(ws, clientClosing, onEnd);
    },
  };
}
