import type { KeyReason, KeyStateName } from '../machines/key.types.js';

/** Version of the {@link KeyRecord} format. Bumped on any incompatible change. */
export const KEY_RECORD_VERSION = 1;

/**
 * What KeyMesh persists per key, in its own versioned format (not XState's snapshot shape, which
 * changes between versions and cannot be shared between processes). Never contains the secret.
 * Times are epoch milliseconds, so a record means the same after a restart and in another process.
 */
export interface KeyRecord {
  /** Format version, {@link KEY_RECORD_VERSION}. */
  readonly v: number;
  /** Fingerprint of the key. */
  readonly keyId: string;
  readonly label: string | null;
  /** State when written (`busy` is recorded as `available`: in-flight leases do not survive a restart). */
  readonly state: KeyStateName;
  readonly reason: KeyReason | null;
  /** End of the cooldown (epoch ms); 0 = none. */
  readonly cooldownUntil: number;
  /** When the next recovery probe is admitted (epoch ms); 0 = not exhausted for failures. */
  readonly recoveryAt: number;
  /** Current un-jittered recovery delay (ms). */
  readonly recoveryDelayMs: number;
  readonly consecutiveFailures: number;
  readonly rateLimitStreak: number;
  readonly successes: number;
  readonly failures: number;
  readonly rateLimits: number;
  /** Latency EWMA of successful calls (ms), or `null`. */
  readonly latencyEwma: number | null;
  readonly lastUsedAt: number;
  readonly lastPenaltyAt: number;
  /** Budget meters (epoch ms at which each budget is clear again), when the key has budgets. Optional in v1. */
  readonly budget?: { readonly requestsAt: number; readonly tokensAt: number; readonly dayAt: number } | null;
  /** When this record was written (epoch ms). */
  readonly updatedAt: number;
  /** Opaque id of the pool instance that wrote it; lets a watcher skip its own writes. */
  readonly writer: string;
}

/**
 * A place where per-key state survives restarts. Adapters are async and may be slow: the pool
 * never awaits them on the acquire path (writes go through a coalescing writer).
 */
export interface StorageAdapter {
  /** Short name for messages and events (`'memory'`, `'json-file:/path'`). */
  readonly name: string;
  /** Loads the stored records of the given keys; keys with no record are simply absent. */
  load(keyIds: readonly string[]): Promise<ReadonlyMap<string, KeyRecord>>;
  /** Upserts records (one per key). Must be atomic per call where the medium allows. */
  save(records: readonly KeyRecord[]): Promise<void>;
  /**
   * Optional: reports records written by *other* pools (other processes sharing the medium), so
   * that a cooldown or revocation seen elsewhere is honoured here. Returns an unsubscribe.
   */
  watch?(listener: (records: readonly KeyRecord[]) => void): () => void;
  /** Releases the adapter's resources. The pool calls it from `close()` after the last flush. */
  close?(): Promise<void>;
}
