import type { ArrivalContext, LoadModel } from './model.ts';

/**
 * Open model (`--arrival-rate R [--hold S]`): R new connections per second whatever the target
 * does, each held S seconds (default: to the end). Arrivals have intended times, like sends, so a
 * generator that falls behind shows it as lag instead of quietly arriving slower.
 */
export class ArrivalRate implements LoadModel {
  readonly name = 'constant-arrival-rate';
  readonly holdMs: number;
  readonly #rate: number;
  readonly #holdSec: number | undefined;
  readonly #durationSec: number;

  constructor(ratePerSec: number, holdSec: number | undefined, durationSec: number) {
    this.#rate = ratePerSec;
    this.#holdSec = holdSec;
    this.#durationSec = durationSec;
    this.holdMs = holdSec === undefined ? Infinity : holdSec * 1000;
  }

  peakConnections(): number {
    return Math.ceil(this.#rate * Math.min(this.#holdSec ?? this.#durationSec, this.#durationSec));
  }

  connRate(): { perSec: number; flag: string } {
    return { perSec: this.#rate, flag: '--arrival-rate' };
  }

  tick(ctx: ArrivalContext): void {
    const want = Math.floor(this.#rate * ctx.elapsedSec) + 1;
    const nowMs = ctx.elapsedSec * 1000;
    for (let k = ctx.attempts; k < want; k++) ctx.start(nowMs - (k * 1000) / this.#rate);
  }
}
