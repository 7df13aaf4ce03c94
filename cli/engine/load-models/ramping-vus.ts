import { ConnectBucket, type ArrivalContext, type LoadModel } from './model.ts';

export interface Stage {
  durationSec: number;
  /** Open connections wanted at the end of the stage (linear ramp from the previous target). */
  target: number;
}

/** Open connections wanted at `t` seconds. */
export function stageTarget(stages: Stage[], t: number): number {
  let from = 0;
  let start = 0;
  for (const s of stages) {
    if (t < start + s.durationSec) return Math.round(from + ((s.target - from) * (t - start)) / s.durationSec);
    from = s.target;
    start += s.durationSec;
  }
  return from;
}

/** Ramp model (`--stages 10s:100,30s:100,10s:0`): follow the stage targets up (at the connect rate) and down. */
export class RampingConnections implements LoadModel {
  readonly name = 'ramping-vus';
  readonly holdMs = Infinity;
  readonly #stages: Stage[];
  readonly #rate: number;
  readonly #bucket: ConnectBucket;

  constructor(stages: Stage[], connectRate: number) {
    this.#stages = stages;
    this.#rate = connectRate;
    this.#bucket = new ConnectBucket(connectRate);
  }

  peakConnections(): number {
    return Math.max(0, ...this.#stages.map((s) => s.target));
  }

  connRate(): { perSec: number; flag: string } {
    return { perSec: this.#rate, flag: '--connect-rate' };
  }

  tick(ctx: ArrivalContext): void {
    this.#bucket.refill(ctx.dtSec);
    const target = stageTarget(this.#stages, ctx.elapsedSec);
    // Live, not attempts: a ramp holds a level, so connections asked to close no longer count
    // (or a ramp-down would close too many).
    let n = ctx.live;
    while (n < target && this.#bucket.take()) {
      ctx.start();
      n++;
    }
    if (n > target) ctx.windDown(n - target);
  }
}
