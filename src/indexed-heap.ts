/** An element of an {@link IndexedHeap}: it carries its own position, so it can be moved or removed in O(log n). */
export interface HeapSlot {
  /** Position in the heap's array; -1 when not in a heap. Owned by the heap. */
  heapPos: number;
}

/**
 * A binary min-heap whose elements know their position: `update` after an element's key changed
 * and `delete` of any element are O(log n), `peek` is O(1). An element is in at most one heap.
 */
export class IndexedHeap<T extends HeapSlot> {
  readonly #items: T[] = [];
  readonly #before: (a: T, b: T) => boolean;

  /** @param before strict ordering: true when `a` must come out before `b`. */
  constructor(before: (a: T, b: T) => boolean) {
    this.#before = before;
  }

  get size(): number {
    return this.#items.length;
  }

  /** The first element, or `undefined` when empty. */
  peek(): T | undefined {
    return this.#items[0];
  }

  add(item: T): void {
    item.heapPos = this.#items.length;
    this.#items.push(item);
    this.#siftUp(item.heapPos);
  }

  /** Removes `item` (no-op when it is not in this heap). */
  delete(item: T): void {
    const pos = item.heapPos;
    if (pos < 0 || this.#items[pos] !== item) return;
    const tail = this.#items.pop() as T;
    item.heapPos = -1;
    if (tail !== item) {
      this.#items[pos] = tail;
      tail.heapPos = pos;
      this.#siftUp(this.#siftDown(pos));
    }
  }

  /** Restores the order after `item`'s sort key changed. */
  update(item: T): void {
    if (item.heapPos < 0 || this.#items[item.heapPos] !== item) return;
    this.#siftUp(this.#siftDown(item.heapPos));
  }

  #siftUp(pos: number): number {
    const items = this.#items;
    const item = items[pos] as T;
    while (pos > 0) {
      const parentPos = (pos - 1) >> 1;
      const parent = items[parentPos] as T;
      if (!this.#before(item, parent)) break;
      items[pos] = parent;
      parent.heapPos = pos;
      pos = parentPos;
    }
    items[pos] = item;
    item.heapPos = pos;
    return pos;
  }

  #siftDown(pos: number): number {
    const items = this.#items;
    const n = items.length;
    const item = items[pos] as T;
    for (;;) {
      const left = 2 * pos + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && this.#before(items[right] as T, items[left] as T)) child = right;
      const candidate = items[child] as T;
      if (!this.#before(candidate, item)) break;
      items[pos] = candidate;
      candidate.heapPos = pos;
      pos = child;
    }
    items[pos] = item;
    item.heapPos = pos;
    return pos;
  }
}
