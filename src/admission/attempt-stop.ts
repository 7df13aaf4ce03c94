/** What admission and the upstream dial see of their handshake attempt's end (ctx.stop). */
export interface AttemptSignal {
  /** The attempt has ended (client gone, deadline, drain, a verdict): run no further policy. */
  readonly stopped: boolean;
  /**
   * For an API that takes an AbortSignal (the upstream dial, a lookup a policy waits on): aborted when
   * the attempt ends, already aborted if it has.
   */
  readonly signal: AbortSignal;
}

/**
 * The reason the signal is aborted with. Without one, AbortController.abort() builds a DOMException
 * with a stack on every ended attempt: 17% of the gateway's CPU per 429 under an attempt flood
 * (node --cpu-prof). Nothing reads the reason; listeners only stop.
 */
const ATTEMPT_ENDED = Object.freeze(new Error('handshake attempt ended'));

/**
 * Ends a handshake attempt once. The AbortController behind `signal` is made only when something asks
 * for the signal: a handshake refused by a policy that did not wait (an attempt-limit 429, a bad
 * origin) never needs one. Making it, aborting it and dispatching its event was about 15% of the
 * gateway's profile per 429 under an attempt flood (node --cpu-prof; BENCHMARKS.md has the A/B).
 */
export class AttemptStop implements AttemptSignal {
  #stopped = false;
  #controller: AbortController | null = null;

  get stopped(): boolean {
    return this.#stopped;
  }

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#stopped) this.#controller.abort(ATTEMPT_ENDED);
    }
    return this.#controller.signal;
  }

  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#controller?.abort(ATTEMPT_ENDED);
  }
}
