import type { ClockError, StorageError } from '../errors.js';
import type { FailureKind, KeyReason, KeyStateName } from '../machines/key.types.js';

/** Identity of a key in events: never the secret. */
export interface KeyRefInfo {
  /** Fingerprint. */
  readonly keyId: string;
  readonly label: string | null;
}

/** Every event `pool.on()` can listen to, with its payload. Payloads never contain a raw key. */
export interface KeyPoolEventMap {
  /** A lease was granted. `waitedMs` is 0 for an immediate grant. */
  acquired: KeyRefInfo & { readonly leaseId: number; readonly probe: boolean; readonly waitedMs: number };
  /** A lease was settled as a success. `state` is the key's state afterwards. */
  released: KeyRefInfo & {
    readonly leaseId: number;
    readonly latencyMs: number;
    readonly state: KeyStateName;
  };
  /** A lease was settled as a failure. */
  failed: KeyRefInfo & { readonly leaseId: number; readonly kind: FailureKind; readonly state: KeyStateName };
  /** A lease was settled as rate limited. `retryAfterMs` is the hint given, if any. */
  'rate-limited': KeyRefInfo & {
    readonly leaseId: number;
    readonly retryAfterMs: number | undefined;
    readonly state: KeyStateName;
  };
  /** A key started (or extended) a cooldown until `cooldownUntil` (epoch ms). */
  cooling: KeyRefInfo & { readonly reason: KeyReason | null; readonly cooldownUntil: number };
  /** A key's cooldown ended. */
  available: KeyRefInfo;
  /** A key was exhausted (`failures`: next probe at `recoveryAt`) or died (`revoked`, `disabled`). */
  exhausted: KeyRefInfo & { readonly reason: KeyReason | null; readonly recoveryAt: number };
  /** An exhausted key came back (its probe succeeded, or it was reset). */
  recovered: KeyRefInfo;
  /** A key was revoked or disabled by its provider; only `resetKey`/`addKey` bring it back. */
  revoked: KeyRefInfo & { readonly reason: 'revoked' | 'disabled' };
  /** A caller started waiting; `waiting` is the queue length now. */
  waiting: { readonly requestId: number; readonly priority: number; readonly waiting: number };
  /** A waiting caller gave up at its deadline (or no key could return before it). */
  timeout: {
    readonly requestId: number;
    readonly waitedMs: number;
    readonly retryAfterMs: number | undefined;
  };
  /** A write to storage failed; the pool keeps serving and retries. */
  'storage-error': { readonly error: StorageError; readonly attempt: number };
  /** Most of the pool failed at once: the provider is down; nobody is granted a key until `until` (epoch ms). */
  outage: { readonly until: number; readonly level: number };
  /** The pool-wide backoff ended; waiters are served again. */
  'outage-over': Record<string, never>;
  /** A key was added at runtime. */
  'key-added': KeyRefInfo;
  /** A key was removed (after its leases drained). */
  'key-removed': KeyRefInfo;
  /**
   * A key actor crashed and was replaced from its last good state (a bug: please report it). A key
   * that keeps crashing is replaced after a growing delay, never in a tight loop.
   */
  'key-crashed': KeyRefInfo & { readonly error: unknown };
  /**
   * The pool's clock gave an unusable reading (threw, or not a finite number); the pool goes on
   * with the last good reading until it reads well again. Once per run of bad readings.
   */
  'clock-error': { readonly error: ClockError };
}

export type KeyPoolEventName = keyof KeyPoolEventMap;

/** Every event name `pool.on()` accepts. */
export const KEY_POOL_EVENTS: readonly KeyPoolEventName[] = Object.keys({
  acquired: true,
  released: true,
  failed: true,
  'rate-limited': true,
  cooling: true,
  available: true,
  exhausted: true,
  recovered: true,
  revoked: true,
  waiting: true,
  timeout: true,
  'storage-error': true,
  outage: true,
  'outage-over': true,
  'key-added': true,
  'key-removed': true,
  'key-crashed': true,
  'clock-error': true,
} satisfies Record<KeyPoolEventName, true>) as KeyPoolEventName[];
export type KeyPoolListener<E extends KeyPoolEventName> = (payload: KeyPoolEventMap[E]) => void;
