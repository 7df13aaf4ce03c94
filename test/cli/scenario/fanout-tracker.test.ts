import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { epochMs, FanoutTracker } from '../../../cli/scenario/fanout.ts';

describe('FanoutTracker', () => {
  it('counts from the intended send time, so a sender that fell behind does not hide the delay', () => {
    const f = new FanoutTracker('room', 0);
    f.listeners = 2;
    // Meant to leave 80 ms ago (the sender was late); two receivers get it now and 5 ms later.
    const now = performance.now();
    const text = f.message(now - 80, 100);
    expect(Buffer.byteLength(text)).toBe(100);
    expect(f.receive(text, epochMs(now))).toBe(true);
    expect(f.receive(text, epochMs(now + 5))).toBe(true);
    const s = f.summary();
    expect(s.first.p50).toBeGreaterThanOrEqual(79.9);
    expect(s.first.p50).toBeLessThan(80.2);
    expect(s.last.p50).toBeGreaterThanOrEqual(84.9);
    expect(s.last.p50).toBeLessThan(85.2);
    expect(s).toMatchObject({ messages: 1, expected: 2, delivered: 2, missing: 0, lostMessages: 0 });
  });

  it('a message a listening receiver missed has a first but no last, and counts as missing; others are not ours', () => {
    const f = new FanoutTracker('room', 0);
    f.listeners = 3;
    const a = f.message(performance.now(), undefined);
    f.message(performance.now(), undefined);
    expect(f.receive(a, epochMs())).toBe(true);
    expect(f.receive('{"fanout":"other","seq":0,"t":1}', epochMs())).toBe(false);
    expect(f.receive('hello', epochMs())).toBe(false);
    const s = f.summary();
    expect(s).toMatchObject({ messages: 2, expected: 6, delivered: 1, missing: 5, lostMessages: 1 });
    expect(s.first.count).toBe(1);
    expect(s.last.count).toBe(0);
  });
});
