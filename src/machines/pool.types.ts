import type { KeyInput, KeyToPoolEvent } from './key.types.js';

/** Input of the pool actor: the keys to spawn at start (restored fields included). */
export interface PoolInput {
  readonly keys: readonly KeyInput[];
}

/** Events the pool actor accepts. */
export type PoolEvent =
  | {
      readonly type: 'pool.acquire';
      readonly requestId: number;
      /** Higher is served first. */
      readonly priority: number;
      /** How long to wait (ms); `Infinity` = no limit. */
      readonly timeoutMs: number;
      /** `false` for `tryAcquire`: grant now or reject now. */
      readonly wait: boolean;
      /** Tokens the caller expects to use (reserved from the key's tpm budget). */
      readonly tokens: number;
    }
  /** A lease ended in a provider error (5xx, 529, network): the pool decides whether the key or the provider is to blame. */
  | { readonly type: 'pool.providerError'; readonly keyId: string; readonly seq: number }
  /** A key's settle said its quota *group* is spent or throttled: the other keys of the group rest too. */
  | { readonly type: 'pool.groupRest'; readonly keyId: string }
  /** Internal: a provider outage was detected (raised by the pool itself). */
  | { readonly type: 'pool.outage' }
  | { readonly type: 'pool.cancel'; readonly requestId: number }
  | { readonly type: 'pool.expire'; readonly requestId: number }
  /** Adds a key, or brings back one the pool has (revoked, exhausted or draining). */
  | { readonly type: 'pool.addKey'; readonly key: Omit<KeyInput, 'order'> }
  | { readonly type: 'pool.removeKey'; readonly keyId: string }
  | { readonly type: 'pool.resetKey'; readonly keyId: string }
  | { readonly type: 'pool.close' }
  /** Internal: a key that crashed again and again is spawned anew after its backoff (raised by the pool itself). */
  | { readonly type: 'pool.respawnKey'; readonly keyId: string }
  | KeyToPoolEvent;

/** Why an acquire was rejected. */
export type RejectReason = 'timeout' | 'unavailable' | 'queue-full' | 'closed' | 'aborted' | 'strategy';

/** A grant the pool decided, handed to its owner (`PoolMachineDeps.onGrant`). Never carries a secret. */
export interface LeaseGranted {
  readonly requestId: number;
  readonly keyId: string;
  /** True when this lease is the single recovery probe of a half-open key. */
  readonly probe: boolean;
  /** Grant sequence (monotonic per pool): what the key knows this lease by. */
  readonly seq: number;
  /** Time spent waiting (ms). */
  readonly waitedMs: number;
  /** When the pool granted it (epoch ms, pool clock): the lease's `acquiredAt`. */
  readonly at: number;
}

/** Events the pool actor emits to its listeners (the `KeyPool` wrapper). Never carry a secret. */
export type PoolEmitted =
  | {
      readonly type: 'acquire.rejected';
      readonly requestId: number;
      readonly reason: RejectReason;
      /** When the earliest key is expected back (ms from now), if any will return by itself. */
      readonly retryAfterMs: number | undefined;
      /** Keys per state and per `state:reason`. */
      readonly counts: Readonly<Record<string, number>>;
      readonly waitedMs: number;
      readonly error?: unknown;
    }
  | {
      readonly type: 'acquire.queued';
      readonly requestId: number;
      readonly priority: number;
      readonly waiting: number;
    }
  | { readonly type: 'pool.outage'; readonly until: number; readonly level: number }
  | { readonly type: 'pool.outageOver' }
  | { readonly type: 'key.added'; readonly keyId: string }
  | { readonly type: 'key.draining'; readonly keyId: string }
  | { readonly type: 'key.removed'; readonly keyId: string }
  | { readonly type: 'key.crashed'; readonly keyId: string; readonly error: unknown };
