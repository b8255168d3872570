import type { Strategy } from './strategy.js';

/**
 * A stable ring over all keys in configured order. The cursor remembers the *order* of the last
 * key chosen, so ineligible keys are skipped without shifting anyone else's turn (the seed's index
 * jumped whenever the candidate list changed length).
 */
export const roundRobin: Strategy = {
  name: 'round-robin',
  total: true,
  create() {
    let cursor = -1;
    return {
      select(index) {
        const entry = index.nextInRing(cursor);
        if (entry) cursor = entry.order;
        return entry;
      },
    };
  },
};
