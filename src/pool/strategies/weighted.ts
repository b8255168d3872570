import type { KeyEntry } from '../key-index.js';
import type { Strategy } from './strategy.js';

/**
 * Smooth weighted round robin (as in nginx): each eligible key gains its weight, the richest is
 * chosen and pays the total back. Proportions are exact and deterministic, and heavy keys are
 * spread out rather than chosen in bursts. Weight 0 drains a key. O(eligible keys) per choice.
 */
export const weighted: Strategy = {
  name: 'weighted',
  initialMemory: () => ({ current: {} }),
  schedulable: (context) => context.settings.weight > 0,
  select({ index, memory }) {
    const previous = memory !== null && 'current' in memory ? memory.current : {};
    const current: Record<string, number> = { ...previous };
    let total = 0;
    let best: KeyEntry | undefined;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (const entry of index.ring) {
      const weight = entry.context.settings.weight;
      if (!entry.eligible) continue;
      const score = (current[entry.keyId] ?? 0) + weight;
      current[entry.keyId] = score;
      total += weight;
      if (score > bestScore) {
        bestScore = score;
        best = entry;
      }
    }
    if (!best) return undefined;
    current[best.keyId] = bestScore - total;
    return { entry: best, memory: { current } };
  },
};
