import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IndexedHeap } from '../src/indexed-heap.js';

interface Item {
  heapPos: number;
  key: number;
  readonly id: number;
}

const before = (a: Item, b: Item): boolean => a.key < b.key || (a.key === b.key && a.id < b.id);

type Op =
  | { readonly kind: 'add'; readonly key: number }
  | { readonly kind: 'delete'; readonly pick: number }
  | { readonly kind: 'update'; readonly pick: number; readonly key: number }
  | { readonly kind: 'pop' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), key: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('update' as const), pick: fc.nat(), key: fc.integer({ min: 0, max: 20 }) }),
  fc.record({ kind: fc.constant('pop' as const) }),
);

describe('IndexedHeap', () => {
  it('always yields the first item in order, through adds, deletes anywhere and key changes', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        const heap = new IndexedHeap<Item>(before);
        const inside: Item[] = [];
        let nextId = 0;
        for (const op of ops) {
          if (op.kind === 'add') {
            const item = { heapPos: -1, key: op.key, id: nextId++ };
            heap.add(item);
            inside.push(item);
          } else if (op.kind === 'pop') {
            const first = heap.peek();
            if (first) {
              heap.delete(first);
              inside.splice(inside.indexOf(first), 1);
            }
          } else if (inside.length > 0) {
            const item = inside[op.pick % inside.length] as Item;
            if (op.kind === 'delete') {
              heap.delete(item);
              inside.splice(inside.indexOf(item), 1);
              expect(item.heapPos).toBe(-1);
            } else {
              item.key = op.key;
              heap.update(item);
            }
          }
          const expected = [...inside].sort((a, b) => (before(a, b) ? -1 : 1))[0];
          expect(heap.size).toBe(inside.length);
          expect(heap.peek()).toBe(expected);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('ignores a delete or update of an item it does not hold', () => {
    const heap = new IndexedHeap<Item>(before);
    const held = { heapPos: -1, key: 1, id: 0 };
    const stranger = { heapPos: 0, key: 0, id: 1 };
    heap.add(held);
    heap.delete(stranger);
    heap.update(stranger);
    expect(heap.size).toBe(1);
    expect(heap.peek()).toBe(held);
  });
});
