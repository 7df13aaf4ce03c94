import { describe, expect, it } from 'vitest';
import { SpaceSaving } from '../../src/monitoring/top-k.ts';

describe('space-saving top-K', () => {
  it('counts exactly while under capacity', () => {
    const s = new SpaceSaving(3);
    for (const k of ['a', 'b', 'a', 'c', 'a', 'b']) s.add(k);
    expect(s.top()).toEqual([
      { key: 'a', count: 3, error: 0 },
      { key: 'b', count: 2, error: 0 },
      { key: 'c', count: 1, error: 0 },
    ]);
    expect(s.total).toBe(6);
  });

  it('stays bounded and keeps the heavy hitters under a flood of distinct keys', () => {
    // 13,500 offences, k = 20: every key above N/k = 675 is guaranteed to be kept.
    const s = new SpaceSaving(20);
    for (let i = 0; i < 10_000; i++) {
      s.add(`noise-${i}`);
      if (i % 4 === 0) s.add('attacker-1');
      if (i % 10 === 0) s.add('attacker-2');
    }
    const top = s.top(2);
    expect(top.map((h) => h.key)).toEqual(['attacker-1', 'attacker-2']);
    // Guarantee: the true count lies within [count - error, count].
    expect(top[0]!.count - top[0]!.error).toBeLessThanOrEqual(2500);
    expect(top[0]!.count).toBeGreaterThanOrEqual(2500);
    expect(top[1]!.count - top[1]!.error).toBeLessThanOrEqual(1000);
    expect(top[1]!.count).toBeGreaterThanOrEqual(1000);
    expect(s.top().length).toBe(20);
  });

  it('rejects a useless capacity', () => {
    expect(() => new SpaceSaving(0)).toThrow(RangeError);
  });
});
