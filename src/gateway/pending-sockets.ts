/**
 * Sockets a client holds that are not admitted connections: handshakes in progress (admission,
 * JWKS fetch, upstream dial) and sockets accepted only to be closed with a rejection code
 * (`rejectWith: close`) whose close handshake has not finished. None of these hold a concurrent
 * slot, so without this count one address could keep any number of them open: before this cap and
 * the forced close, sockets rejected for `conn_limit` in close mode stayed open 10–16 s each,
 * costing no attempt.
 *
 * Counted per client key (the same key the per-IP limits use), checked synchronously at the top of
 * `upgrade` before anything async runs.
 */
export class PendingSockets {
  readonly #byKey = new Map<string, number>();
  #total = 0;

  readonly #maxPerClient: number;

  constructor(maxPerClient: number) {
    this.#maxPerClient = maxPerClient;
  }

  /** Counts one more socket for `key`; false (and nothing counted) when the key is at the cap. */
  tryEnter(key: string): boolean {
    const n = this.#byKey.get(key) ?? 0;
    if (n >= this.#maxPerClient) return false;
    this.#byKey.set(key, n + 1);
    this.#total++;
    return true;
  }

  leave(key: string): void {
    const n = this.#byKey.get(key);
    if (n === undefined) return;
    if (n <= 1) this.#byKey.delete(key);
    else this.#byKey.set(key, n - 1);
    this.#total--;
  }

  /** Sockets held by all clients (the wsguard_handshakes_pending gauge). */
  get size(): number {
    return this.#total;
  }
}
