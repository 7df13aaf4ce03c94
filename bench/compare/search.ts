/** What one step of a rate search saw. */
export interface Step {
  /** The bar held at this rate. */
  ok: boolean;
  /** The system did not keep up with the offered rate: a higher one cannot pass where this barely did. */
  saturated?: boolean;
}

export interface SearchPlan {
  /** Doublings from the start rate while steps pass. */
  doublings: number;
  /** Halvings while the start rate (and each half) fails. */
  halvings: number;
  /** Bisections between the last pass and the first failure. */
  bisections: number;
}

/**
 * The highest offered rate at which `step` passes: doubling from `start` until a step fails or the
 * system saturates, halving instead while the start fails, then bisecting between the last pass and the
 * first failure (a search that never failed bisects towards the next, untried, doubling). 0 when no
 * step passed. Shared by the capacity and rejection scenarios.
 */
export async function highestPassing(start: number, step: (rate: number) => Promise<Step>, plan: SearchPlan): Promise<number> {
  let lo = 0;
  let hi = 0;
  let rate = start;
  let saturated = false;
  for (let i = 0; i < plan.doublings; i++) {
    const s = await step(rate);
    if (!s.ok) {
      hi = rate;
      break;
    }
    lo = rate;
    rate *= 2;
    if (s.saturated) {
      saturated = true;
      break;
    }
  }
  if (hi === 0 && !saturated) hi = rate;
  for (let i = 0; lo === 0 && i < plan.halvings; i++) {
    const lower = Math.round(hi / 2);
    if ((await step(lower)).ok) lo = lower;
    else hi = lower;
  }
  for (let i = 0; i < plan.bisections && hi > lo * 1.1; i++) {
    const mid = Math.round((lo + hi) / 2);
    if ((await step(mid)).ok) lo = mid;
    else hi = mid;
  }
  return lo;
}
