import type { KeyBudgetSnapshot } from '../../limits/budget.js';
import type { KeyReason, KeyStateName } from '../../machines/key.types.js';

/** Names of the built-in strategies. */
export type StrategyName = 'least-busy' | 'round-robin' | 'weighted' | 'latency';

/** A read-only picture of one key, as strategies, `snapshot()` and events show it. Never holds the secret. */
export interface KeySnapshot {
  /** Fingerprint (`k_` + 16 hex digits). */
  readonly keyId: string;
  readonly label: string | null;
  /** `****` + the last 4 characters for keys of 16+ characters, else `****`. */
  readonly mask: string;
  /** Position in the configured order. */
  readonly order: number;
  readonly state: KeyStateName;
  readonly reason: KeyReason | null;
  /** True when the key is half-open: its next lease is the single recovery probe. */
  readonly probe: boolean;
  /** Unsettled leases. */
  readonly inFlight: number;
  /** Concurrency cap; `Infinity` when uncapped. */
  readonly maxConcurrent: number;
  readonly weight: number;
  readonly successes: number;
  readonly failures: number;
  readonly rateLimits: number;
  readonly consecutiveFailures: number;
  /** EWMA of successful call latency (ms), or `null` before the first success. */
  readonly latencyEwma: number | null;
  /** End of the cooldown (epoch ms), 0 when none was ever set. */
  readonly cooldownUntil: number;
  /** When the next recovery probe is admitted (epoch ms), 0 unless exhausted for failures. */
  readonly recoveryAt: number;
  /** When the key was last leased (epoch ms), 0 = never. */
  readonly lastUsedAt: number;
  /** When the key last failed or was rate limited (epoch ms), 0 = never. */
  readonly lastPenaltyAt: number;
  /** Levels of the key's `rpm` / `tpm` / `rpd` budgets when the snapshot was taken; `null` when it has none. */
  readonly budget: KeyBudgetSnapshot | null;
}

/**
 * A custom strategy: a pure function that picks one of `candidates` (the keys that can take a lease
 * now, in configured order) by `keyId`, or returns `undefined` to let the caller wait. It must not
 * mutate anything; it runs inside the pool actor, so it should be fast (it sees every eligible key).
 * Throwing, or returning a key that was not offered, rejects that `acquire()` with `StrategyError`.
 */
export type CustomStrategy = (
  candidates: readonly KeySnapshot[],
  info: { readonly now: number },
) => string | undefined;
