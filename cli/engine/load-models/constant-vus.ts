import { ConnectBucket, type ArrivalContext, type LoadModel } from './model.ts';

/** Fixed model (`--connections N`): open N connections at the connect rate and hold them to the end. */
export class ConstantConnections implements LoadModel {
  readonly name = 'constant-vus';
  readonly holdMs = Infinity;
  readonly #n: number;
  readonly #bucket: ConnectBucket;
  readonly #rate: number;

  constructor(connections: number, connectRate: number) {
    this.#n = connections;
    this.#rate = connectRate;
    this.#bucket = new ConnectBucket(connectRate);
  }

  peakConnections(): number {
    return this.#n;
  }

  connRate(): { perSec: number; flag: string } {
    return { perSec: this.#rate, flag: '--connect-rate' };
  }

  tick(ctx: ArrivalContext): void {
    this.#bucket.refill(ctx.dtSec);
    // By attempts, not by live connections: a connection the server refused or closed is an
    // outcome to report, not a slot to refill (that would be a reconnect loop, which storm measures).
    for (let started = ctx.attempts; started < this.#n && this.#bucket.take(); started++) ctx.start();
  }
}
