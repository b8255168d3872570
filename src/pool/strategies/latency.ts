import { budgetHeadroom } from '../../limits/budget.js';
import type { KeyEntry } from '../key-index.js';
import { seededRandom } from './random.js';
import type { Strategy } from './strategy.js';

/** How much a recent failure or rate limit multiplies a key's score. */
const PENALTY_FACTOR = 4;

function score(entry: KeyEntry, now: number, penaltyMs: number): number {
  const context = entry.context;
  // An unmeasured key scores 0 so that every key gets measured once.
  const latency = context.latencyEwma ?? 0;
  const { lastPenaltyAt, consecutiveFailures } = context.health;
  const penalised = lastPenaltyAt > 0 && now - lastPenaltyAt < penaltyMs;
  // Prefer keys with budget headroom (a key near its daily budget scores worse).
  const limits = context.settings.budget;
  const headroom = limits && context.budget ? Math.max(0.05, budgetHeadroom(limits, context.budget, now)) : 1;
  return (
    (latency * (entry.inFlight + 1) * (penalised ? PENALTY_FACTOR : 1) * (1 + consecutiveFailures)) / headroom
  );
}

/**
 * Power of two choices: sample two distinct eligible keys, keep the one with the lower
 * latency EWMA × (in flight + 1), penalising keys that recently failed or were rate limited and
 * keys short of budget headroom.
 * O(1) per choice; the random source is a generator seeded from the pool's `seed`, one per pool.
 */
export function latencyStrategy(penaltyMs: number): Strategy {
  return {
    name: 'latency',
    total: true,
    create(seed) {
      const random = seededRandom(seed);
      return {
        select(index, now) {
          const candidates = index.eligible;
          const n = candidates.length;
          if (n === 0) return undefined;
          const a = candidates[Math.floor(random() * n)] as KeyEntry;
          if (n === 1) return a;
          let j = Math.floor(random() * (n - 1));
          if (j >= a.eligiblePos) j++;
          const b = candidates[j] as KeyEntry;
          const sa = score(a, now, penaltyMs);
          const sb = score(b, now, penaltyMs);
          return sa < sb || (sa === sb && a.order < b.order) ? a : b;
        },
      };
    },
  };
}
