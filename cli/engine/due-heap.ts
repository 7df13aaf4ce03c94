/**
 * A binary min-heap of items keyed by their next due time. The send scheduler pops every item that
 * is due, so each tick costs O(sends · log n) instead of a scan over every connection.
 */
export interface HeapItem {
  due: number;
  heapIndex: number;
}

export class DueHeap<T extends HeapItem> {
  readonly #items: T[] = [];

  get size(): number {
    return this.#items.length;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    item.heapIndex = this.#items.length;
    this.#items.push(item);
    this.#up(item.heapIndex);
  }

  pop(): T | undefined {
    const top = this.#items[0];
    if (top === undefined) return undefined;
    this.#removeAt(0);
    return top;
  }

  remove(item: T): void {
    if (item.heapIndex < 0 || this.#items[item.heapIndex] !== item) return;
    this.#removeAt(item.heapIndex);
  }

  #removeAt(i: number): void {
    const removed = this.#items[i]!;
    const last = this.#items.pop()!;
    removed.heapIndex = -1;
    if (i < this.#items.length) {
      this.#items[i] = last;
      last.heapIndex = i;
      this.#up(i);
      this.#down(last.heapIndex);
    }
  }

  #up(i: number): void {
    const a = this.#items;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.due <= a[i]!.due) break;
      this.#swap(i, p);
      i = p;
    }
  }

  #down(i: number): void {
    const a = this.#items;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]!.due < a[m]!.due) m = l;
      if (r < a.length && a[r]!.due < a[m]!.due) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }

  #swap(i: number, j: number): void {
    const a = this.#items;
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
    a[i]!.heapIndex = i;
    a[j]!.heapIndex = j;
  }
}
