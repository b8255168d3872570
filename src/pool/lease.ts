import type { KeyId } from '../fingerprint.js';
import type { FailureKind, KeyStateName } from '../machines/key.types.js';

/** Options of {@link Lease.release}. */
export interface ReleaseOptions {
  /** How long the call took (ms). Default: the time since the lease was granted, on the pool's clock. */
  readonly latencyMs?: number;
}

/** Options of {@link Lease.fail}. */
export interface FailOptions {
  /**
   * What the failure says about the key. Default `'failure'` (counts toward `maxFailures`).
   * `'revoked'` (401/403) and `'disabled'` (402, billing) take the key out until `resetKey`/`addKey`.
   */
  readonly kind?: FailureKind;
}

/** Options of {@link Lease.rateLimited}. */
export interface RateLimitOptions {
  /**
   * How long the provider asked the key to rest (ms). Cooldowns extend, never shorten; ≤ 0 means
   * "now". Without it the cooldown escalates 1 s, 2 s, 4 s … up to `defaultCooldownMs`.
   */
  readonly retryAfterMs?: number;
  /** Alias of `retryAfterMs` (the seed's name). */
  readonly cooldownMs?: number;
}

/** How a lease was settled. */
export type LeaseOutcome = 'released' | 'failed' | 'rate-limited';

/** The pool-side settle function a lease reports to. */
export type SettleLease = (
  lease: Lease,
  outcome:
    | { readonly type: 'released'; readonly latencyMs: number | undefined }
    | { readonly type: 'failed'; readonly kind: FailureKind; readonly error: unknown }
    | { readonly type: 'rate-limited'; readonly retryAfterMs: number | undefined },
) => KeyStateName;

/**
 * One granted use of a key. Settle it exactly once: `release` on success, `fail` on an error,
 * `rateLimited` on a 429. A second settle throws `LeaseSettledError` and changes nothing.
 * Don't hold a lease across unrelated awaits: it counts against the key's concurrency cap.
 *
 * `key` is the raw secret; it is a getter on a private field, so it never shows in
 * `JSON.stringify(lease)` or `console.log(lease)`.
 */
export class Lease {
  /** Fingerprint of the key: safe to log. */
  readonly keyId: KeyId;
  readonly label: string | null;
  /** Unique within the pool. */
  readonly leaseId: number;
  /** True when this lease is the single recovery probe of a half-open key. */
  readonly probe: boolean;
  /** When the lease was granted (epoch ms, pool clock). */
  readonly acquiredAt: number;
  readonly #key: string;
  readonly #grantSeq: number;
  readonly #settle: SettleLease;
  #outcome: LeaseOutcome | undefined;

  /** @internal Leases are made by the pool. */
  constructor(
    key: string,
    info: {
      keyId: KeyId;
      label: string | null;
      leaseId: number;
      probe: boolean;
      acquiredAt: number;
      grantSeq: number;
    },
    settle: SettleLease,
  ) {
    this.#key = key;
    this.keyId = info.keyId;
    this.label = info.label;
    this.leaseId = info.leaseId;
    this.probe = info.probe;
    this.acquiredAt = info.acquiredAt;
    this.#grantSeq = info.grantSeq;
    this.#settle = settle;
  }

  /** The raw API key, for the client call. */
  get key(): string {
    return this.#key;
  }

  /** @internal The pool's grant sequence: what the key actor knows this lease by. */
  get grantSeq(): number {
    return this.#grantSeq;
  }

  /** How the lease was settled, or `undefined` while it is out. */
  get outcome(): LeaseOutcome | undefined {
    return this.#outcome;
  }

  get settled(): boolean {
    return this.#outcome !== undefined;
  }

  /** The call succeeded. Returns the key's state afterwards. */
  release(options?: ReleaseOptions): KeyStateName {
    return this.#settle(this, { type: 'released', latencyMs: options?.latencyMs });
  }

  /** The call failed. Returns the key's state afterwards (never throws for the key's sake). */
  fail(error?: unknown, options?: FailOptions): KeyStateName {
    return this.#settle(this, { type: 'failed', kind: options?.kind ?? 'failure', error });
  }

  /** The provider rate limited the call. Returns the key's state afterwards. */
  rateLimited(options?: RateLimitOptions): KeyStateName {
    return this.#settle(this, {
      type: 'rate-limited',
      retryAfterMs: options?.retryAfterMs ?? options?.cooldownMs,
    });
  }

  /** @internal Marks the lease settled; returns false when it already was. */
  markSettled(outcome: LeaseOutcome): boolean {
    if (this.#outcome !== undefined) return false;
    this.#outcome = outcome;
    return true;
  }

  toJSON(): Record<string, unknown> {
    return {
      keyId: this.keyId,
      label: this.label,
      leaseId: this.leaseId,
      probe: this.probe,
      acquiredAt: this.acquiredAt,
      outcome: this.#outcome,
    };
  }
}
