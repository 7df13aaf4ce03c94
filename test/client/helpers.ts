import WebSocket from 'ws';
import type { ClientEvents, ClientOptions, WebSocketConstructor, WsguardClient } from '../../src/client/index.ts';
import { WsguardClient as Client } from '../../src/client/index.ts';

/** The `ws` package's client, typed as the constructor wsguard/client accepts. */
export const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

/** Records every event of a client, and awaits the next one that matches (bounded). */
export class Recorder {
  readonly events: Array<{ [K in keyof ClientEvents]: { type: K; at: number; e: ClientEvents[K] } }[keyof ClientEvents]> = [];
  readonly #waiters: Array<{ type: string; pred: (e: never) => boolean; resolve: (e: never) => void }> = [];

  constructor(readonly client: WsguardClient) {
    for (const type of ['open', 'message', 'reconnecting', 'close', 'giveup', 'dropped'] as const) {
      client.on(type, (e) => {
        this.events.push({ type, at: Date.now(), e } as never);
        for (const w of [...this.#waiters])
          if (w.type === type && w.pred(e as never)) {
            this.#waiters.splice(this.#waiters.indexOf(w), 1);
            w.resolve(e as never);
          }
      });
    }
  }

  of<K extends keyof ClientEvents>(type: K): Array<ClientEvents[K]> {
    return this.events.filter((x) => x.type === type).map((x) => x.e as ClientEvents[K]);
  }

  /** The next `type` event (after now) that matches, or a rejection naming what was awaited. */
  next<K extends keyof ClientEvents>(
    type: K,
    pred: (e: ClientEvents[K]) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<ClientEvents[K]> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no ${type} event within ${timeoutMs} ms; saw ${JSON.stringify(this.events.map((x) => x.type))}`)),
        timeoutMs,
      );
      this.#waiters.push({
        type,
        pred: pred as (e: never) => boolean,
        resolve: ((e: ClientEvents[K]) => {
          clearTimeout(timer);
          resolve(e);
        }) as (e: never) => void,
      });
    });
  }
}

/** A client over `ws` with its recorder; tests close it in afterEach via the returned list. */
export function startClient(options: Omit<ClientOptions, 'WebSocket'>, started: WsguardClient[]): Recorder {
  const client = new Client({ WebSocket: NodeWebSocket, ...options });
  started.push(client);
  return new Recorder(client);
}
