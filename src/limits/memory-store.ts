import type { AttemptResult, LimitStore } from './limit-store.ts';

interface Entry {
  /** Attempt timestamps (ms) in the window, oldest first, with the ids that can release them. */
  attempts: Array<{ at: number; id: string }>;
  slots: number;
}

/**
 * In-process limit state: a sliding log per client key (at most `max` timestamps, so memory per key
 * is bounded by the limit) and a slot counter. Keys with nothing left are deleted, so the map holds
 * only clients that are connected or recently attempted.
 */
export class MemoryLimitStore implements LimitStore {
  private readonly entries = new Map<string, Entry>();
  private nextId = 0;
  private windowMs = 0;
  /** Keys whose attempts all aged out and that hold no slot are swept, so idle clients cost nothing. */
  private readonly sweeper = setInterval(() => this.sweep(Date.now()), 60_000).unref();

  sweep(nowMs: number): void {
    for (const [key, e] of this.entries) {
      while (e.attempts.length && e.attempts[0]!.at <= nowMs - this.windowMs) e.attempts.shift();
      this.prune(key, e);
    }
  }

  private entry(key: string): Entry {
    let e = this.entries.get(key);
    if (!e) {
      e = { attempts: [], slots: 0 };
      this.entries.set(key, e);
    }
    return e;
  }

  private prune(key: string, e: Entry): void {
    if (e.attempts.length === 0 && e.slots === 0) this.entries.delete(key);
  }

  async tryAttempt(key: string, max: number, windowMs: number, nowMs: number): Promise<AttemptResult> {
    this.windowMs = Math.max(this.windowMs, windowMs);
    const e = this.entry(key);
    while (e.attempts.length && e.attempts[0]!.at <= nowMs - windowMs) e.attempts.shift();
    if (e.attempts.length >= max) {
      return { ok: false, retryAfterMs: e.attempts[e.attempts.length - max]!.at + windowMs - nowMs };
    }
    const id = String(++this.nextId);
    e.attempts.push({ at: nowMs, id });
    return { ok: true, id };
  }

  async releaseAttempt(key: string, id: string): Promise<void> {
    const e = this.entries.get(key);
    if (!e) return;
    const i = e.attempts.findIndex((a) => a.id === id);
    if (i >= 0) e.attempts.splice(i, 1);
    this.prune(key, e);
  }

  async tryAcquireSlot(key: string, max: number): Promise<boolean> {
    const e = this.entry(key);
    if (e.slots >= max) {
      this.prune(key, e);
      return false;
    }
    e.slots++;
    return true;
  }

  async releaseSlot(key: string): Promise<void> {
    const e = this.entries.get(key);
    if (!e) return;
    e.slots = Math.max(0, e.slots - 1);
    this.prune(key, e);
  }

  size(): number {
    return this.entries.size;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.entries.clear();
  }
}
