import { describe, expect, it } from 'vitest';
import { createPayloadFactory, parseMarker } from '../../../cli/engine/payload.ts';
import { DueHeap } from '../../../cli/engine/due-heap.ts';

describe('payload', () => {
  it('pads to the requested size and carries a parseable marker', () => {
    const f = createPayloadFactory({ sizeBytes: 100 }, 0);
    const m = f(12345) as string;
    expect(Buffer.byteLength(m)).toBe(100);
    expect(parseMarker(Buffer.from(m))).toBe(12345);
    expect(parseMarker(Buffer.from('no marker here'))).toBe(-1);
  });

  it('renders templates with every placeholder and keeps JSON valid', () => {
    const f = createPayloadFactory(
      { template: '{"m":"{{marker}}","n":{{counter}},"u":{{i}},"ts":{{ts}},"r":"{{random:12}}","p":"{{pad:3}}"}' },
      7,
    );
    const obj = JSON.parse(f(3) as string);
    expect(obj).toMatchObject({ m: 'wsg:3;', n: 3, u: 7, p: 'xxx' });
    expect(obj.r).toHaveLength(12);
    expect(typeof obj.ts).toBe('number');
    expect(parseMarker(Buffer.from(f(99) as string))).toBe(99);
    const b = createPayloadFactory({ template: 'hello', binary: true }, 0)(5);
    expect(Buffer.isBuffer(b)).toBe(true);
    expect(parseMarker(b as Buffer)).toBe(5);
  });
});

describe('DueHeap', () => {
  it('pops in due order and supports removal', () => {
    const h = new DueHeap<{ due: number; heapIndex: number }>();
    const items = [5, 1, 9, 3, 7, 2, 8].map((due) => ({ due, heapIndex: -1 }));
    for (const i of items) h.push(i);
    h.remove(items[3]!);
    const out: number[] = [];
    for (let i = h.pop(); i; i = h.pop()) out.push(i.due);
    expect(out).toEqual([1, 2, 5, 7, 8, 9]);
  });
});
