/**
 * One load model per file behind this interface, in the shape of k6's executors (lib/executor/:
 * constant-vus, constant-arrival-rate, ramping-vus on one base): a model says what it will demand
 * (peak connections, connection rate) so the caps, the pre-flight and the worker split can be
 * decided before the run, and on every scheduler tick it decides which connections to start or
 * wind down. Everything else (dialing, sending, recording, phases) is the run's, shared by all.
 */
export interface LoadModel {
  /** k6's executor name for the same shape, for reports and docs. */
  readonly name: 'constant-vus' | 'constant-arrival-rate' | 'ramping-vus';
  /** Most connections open at once over the run. */
  peakConnections(): number;
  /** Most new connections per second, and the flag that sets it (named in a cap refusal). */
  connRate(): { perSec: number; flag: string };
  /** How long a connection stays once open (ms); Infinity: to the end of the run. */
  readonly holdMs: number;
  /** One scheduler tick while the run is in its running phase. */
  tick(ctx: ArrivalContext): void;
}

/** What a model may see and do on a tick: the run's clock and counts, and two actions. */
export interface ArrivalContext {
  /** Seconds since the run started. */
  readonly elapsedSec: number;
  /** Seconds since the previous tick. */
  readonly dtSec: number;
  /** Connections started so far (every attempt, whatever became of it). */
  readonly attempts: number;
  /** Open or opening connections, less those already asked to close. */
  readonly live: number;
  /** Starts one connection; `lateMs` is how late an arrival with an intended time left (generator lag). */
  start(lateMs?: number): void;
  /** Asks `n` open connections to close (a ramp going down). */
  windDown(n: number): void;
}

/** What a run does for its model: start one connection or user, wind `n` down. */
export interface ArrivalTarget {
  start(lateMs?: number): void;
  windDown(n: number): void;
}

/**
 * The model's view of a tick, for flood and scenario runs alike: reused across ticks, so the 1 ms
 * scheduler allocates nothing for it. `attempts` counts connections (or users) started, `live` those running.
 */
export class TickContext implements ArrivalContext {
  elapsedSec = 0;
  dtSec = 0;
  attempts = 0;
  live = 0;
  readonly #target: ArrivalTarget;

  constructor(target: ArrivalTarget) {
    this.#target = target;
  }

  set(elapsedSec: number, dtSec: number, attempts: number, live: number): void {
    this.elapsedSec = elapsedSec;
    this.dtSec = dtSec;
    this.attempts = attempts;
    this.live = live;
  }

  start(lateMs?: number): void {
    this.#target.start(lateMs);
  }

  windDown(n: number): void {
    this.#target.windDown(n);
  }
}

/**
 * Opens at most `rate` connections per second, so a large fixed N opens at the connect-rate cap,
 * not in one burst. Starts with one token so the first connection goes out on the first tick.
 */
export class ConnectBucket {
  #budget = 1;
  readonly #rate: number;

  constructor(rate: number) {
    this.#rate = rate;
  }

  refill(dtSec: number): void {
    this.#budget = Math.min(Math.max(1, this.#rate), this.#budget + this.#rate * dtSec);
  }

  take(): boolean {
    if (this.#budget < 1) return false;
    this.#budget -= 1;
    return true;
  }
}
