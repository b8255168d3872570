import { customStrategy } from './custom.js';
import { latencyStrategy } from './latency.js';
import { leastBusy } from './least-busy.js';
import { roundRobin } from './round-robin.js';
import type { Strategy } from './strategy.js';
import type { CustomStrategy, StrategyName } from './types.js';
import { weighted } from './weighted.js';

/** Resolves a strategy option to its implementation. */
export function resolveStrategy(option: StrategyName | CustomStrategy, latencyPenaltyMs: number): Strategy {
  if (typeof option === 'function') return customStrategy(option);
  switch (option) {
    case 'least-busy':
      return leastBusy;
    case 'round-robin':
      return roundRobin;
    case 'weighted':
      return weighted;
    case 'latency':
      return latencyStrategy(latencyPenaltyMs);
  }
}

export type { Scheduler, Strategy } from './strategy.js';
export type { CustomStrategy, KeySnapshot, StrategyName } from './types.js';
