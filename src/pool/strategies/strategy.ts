import type { KeyContext } from '../../machines/key.types.js';
import type { EligibleTracker, KeyEntry, KeyIndex } from '../key-index.js';

/**
 * One pool's instance of a strategy. Its memory (round-robin cursor, weighted virtual times, the
 * latency strategy's random state) is bookkeeping of that pool actor, like the key index: never
 * shared between pools, never persisted, rebuilt from the seed when a pool is created.
 */
export interface Scheduler {
  /**
   * Keeps the strategy's own order of the eligible keys (least busy's heap, weighted's virtual
   * times); the index tells it about every change. `undefined` when the index's lists suffice.
   */
  readonly tracker?: EligibleTracker;
  /**
   * Chooses one of `index`'s eligible keys for the next lease, or `undefined` to let the caller
   * wait. Called only by the pool actor, which grants the returned key at once.
   */
  select(index: KeyIndex, now: number): KeyEntry | undefined;
}

/** A built-in (or adapted custom) strategy. */
export interface Strategy {
  readonly name: string;
  /** Keys this strategy can ever lease; others are never eligible (default: all). Evaluated once per key. */
  readonly schedulable?: (context: KeyContext) => boolean;
  /**
   * True when `select` never throws and returns a key whenever one is eligible (every built-in
   * strategy): the pool then grants without preparing for a refusal.
   */
  readonly total: boolean;
  /** Creates this strategy's scheduler for one pool; `seed` seeds any randomness. */
  create(seed: number): Scheduler;
}
