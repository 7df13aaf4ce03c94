import { afterEach, describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors.ts';
import { MemoryLimitStore } from '../../src/limits/memory-store.ts';

const HOUR = 3_600_000;
let store: MemoryLimitStore;
afterEach(() => store?.close());

/** The GatewayError `run` throws or rejects with (the memory store answers synchronously). */
async function refusal(run: () => unknown): Promise<GatewayError> {
  try {
    await run();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

describe('memory limit store: sliding log', () => {
  it('admits max attempts in the window, then refuses until the oldest leaves it', async () => {
    store = new MemoryLimitStore({ maxTrackedKeys: 10 });
    for (let i = 0; i < 3; i++) expect((await store.tryAttempt('a', 3, 1000, 100 + i * 10)).ok).toBe(true);
    expect(await store.tryAttempt('a', 3, 1000, 500)).toEqual({ ok: false, retryAfterMs: 600 });
    // At 1100 the attempt made at 100 has aged out.
    expect((await store.tryAttempt('a', 3, 1000, 1100)).ok).toBe(true);
    expect(await store.tryAttempt('a', 3, 1000, 1101)).toEqual({ ok: false, retryAfterMs: 9 });
  });

  it('keeps the log in order across ring wrap-around, growth and releases from the middle', async () => {
    store = new MemoryLimitStore({ maxTrackedKeys: 10 });
    const ids: string[] = [];
    for (let t = 0; t < 40; t++) {
      const r = await store.tryAttempt('k', 8, 100, t * 10);
      if (r.ok) ids.push(r.id);
    }
    // Window 100 ms, max 8, one try every 10 ms: each window admits 8 (at x00..x70) and refuses x80, x90.
    // At 395 the log holds 300..370; the one at 300 leaves at 400.
    const held = await store.tryAttempt('k', 8, 100, 395);
    expect(held).toEqual({ ok: false, retryAfterMs: 5 });
    // Releasing the oldest held (at 300) and the newest (at 370) frees two places.
    await store.releaseAttempt('k', ids[ids.length - 8]!);
    await store.releaseAttempt('k', ids[ids.length - 1]!);
    expect((await store.tryAttempt('k', 8, 100, 395)).ok).toBe(true);
    expect((await store.tryAttempt('k', 8, 100, 396)).ok).toBe(true);
    // Now 310..360 (6) + 395 + 396: the oldest left is 310, so a retry is due at 410.
    expect(await store.tryAttempt('k', 8, 100, 397)).toEqual({ ok: false, retryAfterMs: 13 });
  });

  it('forgets a key once its attempts age out and it holds no slot', async () => {
    store = new MemoryLimitStore({ maxTrackedKeys: 10 });
    await store.tryAttempt('a', 10, 1000, 0);
    expect(await store.tryAcquireSlot('a', 5)).toBe(true);
    store.sweep(5000);
    expect(store.size()).toBe(1);
    await store.releaseSlot('a');
    expect(store.size()).toBe(0);
  });
});

describe('memory limit store: tracked-key cap', () => {
  it('refuses a new key at the cap with store_full and Retry-After, and keeps tracked keys working', async () => {
    store = new MemoryLimitStore({ maxTrackedKeys: 3 });
    for (const k of ['a', 'b', 'c']) expect((await store.tryAttempt(k, 2, HOUR, 0)).ok).toBe(true);
    const err = await refusal(() => store.tryAttempt('d', 2, HOUR, 1));
    expect(err.code).toBe('store_full');
    expect(err.status).toBe(503);
    expect(err.retryAfterMs).toBeGreaterThan(0);
    expect((await refusal(() => store.tryAcquireSlot('d', 5))).code).toBe('store_full');
    expect(store.size()).toBe(3);
    // Nothing was evicted: 'a' keeps its record and its limit.
    expect((await store.tryAttempt('a', 2, HOUR, 2)).ok).toBe(true);
    expect((await store.tryAttempt('a', 2, HOUR, 3)).ok).toBe(false);
    expect(await store.tryAcquireSlot('b', 5)).toBe(true);
  });

  it('admits new keys again once tracked ones are swept', async () => {
    store = new MemoryLimitStore({ maxTrackedKeys: 2 });
    await store.tryAttempt('a', 2, 1000, 0);
    await store.tryAttempt('b', 2, 1000, 0);
    expect((await refusal(() => store.tryAttempt('c', 2, 1000, 10))).code).toBe('store_full');
    store.sweep(2000);
    expect(store.size()).toBe(0);
    expect((await store.tryAttempt('c', 2, 1000, 2000)).ok).toBe(true);
  });
});

// sweep(nowMs) takes the clock as an argument (the store's own timer passes Date.now()), so these
// walk time forward by hand and never wait.
describe('memory limit store: sweep', () => {
  it('drops keys whose every attempt is a window old or older and keeps the rest', async () => {
    store = new MemoryLimitStore({ maxTrackedKeys: 10 });
    await store.tryAttempt('old', 5, 1000, 0);
    await store.tryAttempt('mid', 5, 1000, 500);
    await store.tryAttempt('new', 5, 1000, 900);
    // At 1000 the attempt made at 0 is exactly one window old: aged out, as tryAttempt counts it.
    store.sweep(1000);
    expect(store.size()).toBe(2);
    store.sweep(1499);
    expect(store.size()).toBe(2);
    store.sweep(1500);
    expect(store.size()).toBe(1);
    // The survivor is 'new', still holding its attempt: at max 1 it is refused until 1900.
    expect(await store.tryAttempt('new', 1, 1000, 1500)).toEqual({ ok: false, retryAfterMs: 400 });
  });

  it('keeps the attempts still in the window of a key it keeps, in order', async () => {
    store = new MemoryLimitStore({ maxTrackedKeys: 10 });
    for (const at of [0, 100, 600, 700]) expect((await store.tryAttempt('k', 4, 1000, at)).ok).toBe(true);
    store.sweep(1050); // 0 goes; 100, 600, 700 stay
    expect(store.size()).toBe(1);
    expect((await store.tryAttempt('k', 4, 1000, 1050)).ok).toBe(true);
    // Four held again (100, 600, 700, 1050): the oldest, 100, leaves at 1100.
    expect(await store.tryAttempt('k', 4, 1000, 1060)).toEqual({ ok: false, retryAfterMs: 40 });
  });

  it('keeps a key that holds a slot, whether or not it ever attempted', async () => {
    store = new MemoryLimitStore({ maxTrackedKeys: 10 });
    expect(await store.tryAcquireSlot('slot-only', 1)).toBe(true);
    await store.tryAttempt('both', 5, 1000, 0);
    expect(await store.tryAcquireSlot('both', 1)).toBe(true);
    store.sweep(HOUR);
    expect(store.size()).toBe(2);
    // Their slots are still held: a second one is refused.
    expect(await store.tryAcquireSlot('slot-only', 1)).toBe(false);
    expect(await store.tryAcquireSlot('both', 1)).toBe(false);
  });

  it('sweeps by the longest window in use, so a key on an hour-long window keeps its record', async () => {
    store = new MemoryLimitStore({ maxTrackedKeys: 10 });
    await store.tryAttempt('long', 1, HOUR, 0);
    await store.tryAttempt('short', 5, 1000, 0); // the latest window seen is the short one
    store.sweep(5000);
    expect(store.size()).toBe(2);
    // Forgetting 'long' here would reset its limit: it is still refused.
    expect(await store.tryAttempt('long', 1, HOUR, 5000)).toEqual({ ok: false, retryAfterMs: HOUR - 5000 });
    store.sweep(HOUR);
    expect(store.size()).toBe(0);
  });

  it('counts exactly the keys left against the cap after a sweep', async () => {
    store = new MemoryLimitStore({ maxTrackedKeys: 3 });
    await store.tryAttempt('a', 2, 1000, 0);
    await store.tryAttempt('b', 2, 1000, 0);
    await store.tryAttempt('c', 2, 1000, 800);
    store.sweep(1000);
    store.sweep(1000); // a second sweep at the same time changes nothing
    expect(store.size()).toBe(1);
    // Two places freed, no more: the third new key is refused, and a swept key counts as new.
    expect((await store.tryAttempt('d', 2, 1000, 1000)).ok).toBe(true);
    expect(await store.tryAcquireSlot('e', 1)).toBe(true);
    expect(store.size()).toBe(3);
    expect((await refusal(() => store.tryAttempt('a', 2, 1000, 1000))).code).toBe('store_full');
    expect((await refusal(() => store.tryAcquireSlot('f', 1))).code).toBe('store_full');
    expect(store.size()).toBe(3);
    // A refused key left nothing behind: once 'e' lets go of its slot there is exactly one place.
    await store.releaseSlot('e');
    expect(store.size()).toBe(2);
    expect((await store.tryAttempt('f', 2, 1000, 1001)).ok).toBe(true);
    expect((await refusal(() => store.tryAttempt('g', 2, 1000, 1001))).code).toBe('store_full');
  });
});
