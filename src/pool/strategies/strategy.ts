import type { KeyContext } from '../../machines/key.types.js';
import type { KeyEntry, KeyIndex } from '../key-index.js';
import type { StrategyMemory } from './types.js';

/** A strategy's choice and its memory afterwards (memory lives in the pool actor's context). */
export interface Selection {
  readonly entry: KeyEntry;
  readonly memory: StrategyMemory;
}

/** What a built-in strategy sees when it chooses. */
export interface SelectionInput {
  readonly index: KeyIndex;
  readonly memory: StrategyMemory;
  /** Current time, epoch ms. */
  readonly now: number;
}

/** A built-in (or adapted custom) strategy: pure over the index and its memory. */
export interface Strategy {
  readonly name: string;
  initialMemory(seed: number): StrategyMemory;
  /** Keys this strategy can ever lease; others are never eligible (default: all). Evaluated once per key. */
  readonly schedulable?: (context: KeyContext) => boolean;
  select(input: SelectionInput): Selection | undefined;
}
