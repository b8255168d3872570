import { StrategyError } from '../../errors.js';
import type { KeyEntry } from '../key-index.js';
import { toKeySnapshot } from '../key-snapshot.js';
import type { Strategy } from './strategy.js';
import type { CustomStrategy } from './types.js';

/**
 * Adapts a user's pure function. It sees frozen snapshots of the eligible keys in configured
 * order; a throw or a key it was not offered becomes a `StrategyError` for that acquire only.
 */
export function customStrategy(fn: CustomStrategy): Strategy {
  return {
    name: fn.name || 'custom',
    total: false,
    create: () => ({
      select(index, now) {
        const offered: KeyEntry[] = index.ring.filter((entry) => entry.eligible);
        if (offered.length === 0) return undefined;
        const candidates = Object.freeze(offered.map((entry) => Object.freeze(toKeySnapshot(entry, now))));
        let chosen: string | undefined;
        try {
          chosen = fn(candidates, { now });
        } catch (error) {
          throw new StrategyError('The custom strategy threw', error);
        }
        if (chosen === undefined) return undefined;
        const entry = offered.find((candidate) => candidate.keyId === chosen);
        if (!entry) throw new StrategyError('The custom strategy returned a key that was not offered to it');
        return entry;
      },
    }),
  };
}
