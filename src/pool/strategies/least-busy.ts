import { IndexedHeap } from '../../indexed-heap.js';
import type { KeyEntry } from '../key-index.js';
import type { Strategy } from './strategy.js';

/** Fewest in flight (grants not yet delivered included), then least recently leased, then configured order. */
function lessBusy(a: KeyEntry, b: KeyEntry): boolean {
  const da = a.inFlight - b.inFlight;
  if (da !== 0) return da < 0;
  const ds = a.lastSeq - b.lastSeq;
  if (ds !== 0) return ds < 0;
  return a.order < b.order;
}

/**
 * Fewest in flight; ties → least recently leased → configured order. A binary heap over the
 * eligible keys: O(1) to choose, O(log N) to keep after a grant or settle.
 */
export const leastBusy: Strategy = {
  name: 'least-busy',
  total: true,
  create() {
    const heap = new IndexedHeap<KeyEntry>(lessBusy);
    return { tracker: heap, select: () => heap.peek() };
  },
};
