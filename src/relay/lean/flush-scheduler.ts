/** Something with queued output to hand to its socket. */
export interface Flushable {
  flush(): void;
}

/**
 * Connections with queued output, flushed together once per event-loop iteration. Module-level on
 * purpose: one setImmediate serves every connection that sent during the iteration.
 *
 * setImmediate, not process.nextTick: uWS.js drains the nextTick and microtask queues after every
 * message callback (msg0 tick0 msg1 tick1 …), so in the relay a nextTick flush writes once per client
 * message, a setImmediate flush once per client read. Measured before the nextTick mode was removed
 * (BENCHMARKS.md, `bench/upstream-leg.ts --mode relay`): 498,439 msg/s with setImmediate against
 * 72,059 with nextTick; driving the leg directly the two measured alike (1.17 M and 1.11 M msg/s).
 */
const dirty: Flushable[] = [];
let scheduled = false;

function flushDirty(): void {
  scheduled = false;
  // Swap out the list first: a flush can run user callbacks (onDrain) that queue more output.
  const batch = dirty.splice(0, dirty.length);
  for (const target of batch) target.flush();
}

/** Flushes `target` in this iteration's check phase. The caller queues each target at most once per flush. */
export function scheduleFlush(target: Flushable): void {
  dirty.push(target);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushDirty);
  }
}
