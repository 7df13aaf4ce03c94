import { describe, expect, it } from 'vitest';
import { isCliError } from '../../../../cli/cli-error.ts';
import {
  loadModelFor,
  peakConnections,
  stageTarget,
  type ArrivalContext,
  type LoadModel,
} from '../../../../cli/engine/load-models/index.ts';
import { DEFAULT_CAPS } from '../../../../cli/engine/target.ts';

/**
 * The load models are pure schedules: given the run's clock and counts they say which connections
 * to start or wind down. Driven here tick by tick through the same ArrivalContext the flood passes,
 * with the run's bookkeeping reduced to the counts a model reads.
 */
class Run implements ArrivalContext {
  elapsedSec = 0;
  dtSec = 0;
  attempts = 0;
  live = 0;
  readonly lateness: (number | undefined)[] = [];
  wound = 0;

  start(lateMs?: number): void {
    this.attempts++;
    this.live++;
    this.lateness.push(lateMs);
  }

  windDown(n: number): void {
    this.wound += n;
    this.live -= n;
  }

  /** One tick at `t` seconds; returns how many connections it started. */
  tick(model: LoadModel, t: number): number {
    const before = this.attempts;
    this.dtSec = t - this.elapsedSec;
    this.elapsedSec = t;
    model.tick(this);
    return this.attempts - before;
  }
}

const shape = { durationSec: 10, caps: DEFAULT_CAPS };

describe('load models', () => {
  it('constant-vus opens N at the connect rate, one on the first tick, and never refills a slot', () => {
    const m = loadModelFor({ ...shape, connections: 5, connectRate: 2 });
    expect(m.name).toBe('constant-vus');
    expect(m.holdMs).toBe(Infinity);
    const run = new Run();
    expect(run.tick(m, 0)).toBe(1);
    expect(run.tick(m, 0.25)).toBe(0);
    expect(run.tick(m, 0.5)).toBe(1);
    expect(run.tick(m, 1.5)).toBe(2);
    // A refused connection is an outcome, not a slot to refill.
    run.live = 0;
    expect(run.tick(m, 10)).toBe(1);
    expect(run.tick(m, 20)).toBe(0);
    expect(run.attempts).toBe(5);
    expect(m.connRate()).toEqual({ perSec: 2, flag: '--connect-rate' });
    expect(m.peakConnections()).toBe(5);
  });

  it('constant-arrival-rate starts arrivals on their intended times and reports how late each left', () => {
    const m = loadModelFor({ ...shape, arrivalRate: 10, holdSec: 0.5 });
    expect(m.name).toBe('constant-arrival-rate');
    expect(m.holdMs).toBe(500);
    const run = new Run();
    expect(run.tick(m, 0)).toBe(1);
    // Three arrivals were due by 0.25 s (at 0, 100 and 200 ms): two more leave now, 150 and 50 ms late.
    expect(run.tick(m, 0.25)).toBe(2);
    expect(run.lateness).toEqual([0, 150, 50]);
    expect(run.tick(m, 1)).toBe(8);
    expect(m.peakConnections()).toBe(5);
    expect(m.connRate()).toEqual({ perSec: 10, flag: '--arrival-rate' });
  });

  it('ramping-vus follows the stage targets up at the connect rate and winds down what is above them', () => {
    const stages = [
      { durationSec: 1, target: 10 },
      { durationSec: 1, target: 10 },
      { durationSec: 1, target: 0 },
    ];
    expect([0, 0.5, 1, 1.5, 2.5, 3, 9].map((t) => stageTarget(stages, t))).toEqual([0, 5, 10, 10, 5, 0, 0]);
    const m = loadModelFor({ ...shape, stages, connectRate: 1_000 });
    expect(m.name).toBe('ramping-vus');
    const run = new Run();
    expect(run.tick(m, 0)).toBe(0);
    expect(run.tick(m, 0.5)).toBe(5);
    expect(run.tick(m, 1.5)).toBe(5);
    expect(run.live).toBe(10);
    // Live, not attempts: a lost connection is replaced to hold the level.
    run.live = 8;
    expect(run.tick(m, 1.6)).toBe(2);
    expect(run.tick(m, 2.5)).toBe(0);
    expect(run.wound).toBe(5);
    expect(m.peakConnections()).toBe(10);
  });

  it('asks for exactly one model, naming the three flags', () => {
    for (const o of [{}, { connections: 1, arrivalRate: 1 }, { connections: 1, stages: [] }]) {
      try {
        loadModelFor({ ...shape, ...o });
        expect.unreachable();
      } catch (err) {
        expect(isCliError(err) && err.code).toBe('usage');
        expect((err as Error).message).toContain('--connections, --arrival-rate, --stages');
      }
    }
    expect(peakConnections({ ...shape, arrivalRate: 100, holdSec: 30 })).toBe(1000);
  });
});
