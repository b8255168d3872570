import type { Strategy } from './strategy.js';

/**
 * A stable ring over all keys in configured order. The cursor remembers the *order* of the last
 * key chosen, so ineligible keys are skipped without shifting anyone else's turn (the seed's index
 * jumped whenever the candidate list changed length).
 */
export const roundRobin: Strategy = {
  name: 'round-robin',
  initialMemory: () => ({ cursor: -1 }),
  select({ index, memory }) {
    const cursor = memory !== null && 'cursor' in memory ? memory.cursor : -1;
    const entry = index.nextInRing(cursor);
    return entry ? { entry, memory: { cursor: entry.order } } : undefined;
  },
};
