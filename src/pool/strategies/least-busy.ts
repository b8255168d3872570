import type { Strategy } from './strategy.js';

/** Fewest in flight; ties → least recently leased → configured order. O(1) from the index's heap. */
export const leastBusy: Strategy = {
  name: 'least-busy',
  initialMemory: () => null,
  select({ index, memory }) {
    const entry = index.leastBusy();
    return entry ? { entry, memory } : undefined;
  },
};
