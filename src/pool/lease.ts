import type { KeyId } from '../fingerprint.js';
import type { HeadersInput } from '../limits/headers.js';
import type { LimitScope } from '../limits/outcome.js';
import type { FailureKind, KeyStateName } from '../machines/key.types.js';

/** Token usage of a call, as providers report it. */
export interface TokenUsage {
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  /** Used when given; otherwise input + output. */
  readonly totalTokens?: number;
}

/** Options of {@link Lease.release}. */
export interface ReleaseOptions {
  /**
   * How long the call took (ms). Default: the time since the lease was granted, on the pool's clock.
   * From 0 to 2³¹ − 1; anything else is an `InvalidConfigError` and leaves the lease out, to be
   * settled again.
   */
  readonly latencyMs?: number;
  /** Tokens the call used: reconciles the key's `tpm` budget against `acquire({ tokens })`'s estimate. */
  readonly usage?: TokenUsage;
  /**
   * The response headers (a `Headers` object or a plain object). When they say the key's remaining
   * requests or tokens are 0 until a stated reset (`x-ratelimit-*`, `anthropic-ratelimit-*`), the
   * key rests until then (reason `quota`) — before any 429.
   */
  readonly headers?: HeadersInput;
}

/** Options of {@link Lease.fail}. */
export interface FailOptions {
  /**
   * What the failure says about the key. Default `'failure'` (counts toward `maxFailures`).
   * - `'provider'`: a 5xx, 529, network error or timeout: counts against the key only while other
   *   keys succeed; when most of the pool fails, the pool backs off as a whole instead;
   * - `'quota'`: a spend or daily quota is spent: exhausted until `retryAfterMs` (or probed on the
   *   recovery schedule when no reset is known);
   * - `'revoked'` (401/403) and `'disabled'` (402, billing): out until `resetKey`/`addKey`;
   * - `'aborted'`: the caller cancelled the call itself. Counted in `failures`, but never against
   *   the key (no consecutive failure, no outage judgement, no latency-strategy penalty): the call
   *   said nothing about the key.
   */
  readonly kind?: FailureKind;
  /** For `'quota'`: when the quota resets (ms from now); capped at 2³¹ − 1 ms, `NaN` = unknown. */
  readonly retryAfterMs?: number;
  /** `'group'` when the provider said the quota of the key's group (project), not the key, is spent. */
  readonly scope?: LimitScope;
}

/** Options of {@link Lease.rateLimited}. */
export interface RateLimitOptions {
  /**
   * How long the provider asked the key to rest (ms). Cooldowns extend, never shorten; ≤ 0 means
   * "now"; longer than 2³¹ − 1 ms (about 24.8 days, `Infinity` included) is capped there. Without
   * it (or `NaN`, and without usable `headers`) the cooldown escalates 1 s, 2 s, 4 s … up to
   * `defaultCooldownMs`. A non-number is an `InvalidConfigError`.
   */
  readonly retryAfterMs?: number;
  /** Alias of `retryAfterMs` (the seed's name). */
  readonly cooldownMs?: number;
  /** The 429's headers: `retry-after`, `retry-after-ms`, `x-ratelimit-reset-*` … give the wait. */
  readonly headers?: HeadersInput;
  /** `'group'` when the provider said the group's (project's) quota, not the key's, is throttled. */
  readonly scope?: LimitScope;
}

/** How a lease was settled. */
export type LeaseOutcome = 'released' | 'failed' | 'rate-limited';

/** The pool-side settle function a lease reports to. */
export type SettleLease = (
  lease: Lease,
  outcome:
    | { readonly type: 'released'; readonly options: ReleaseOptions | undefined }
    | { readonly type: 'failed'; readonly error: unknown; readonly options: FailOptions | undefined }
    | { readonly type: 'rate-limited'; readonly options: RateLimitOptions | undefined },
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
  /** When the lease was granted (epoch ms, on the wall clock: the pool clock's `now()`). */
  readonly acquiredAt: number;
  /** @internal When the lease was granted on the pool's own time scale (latency, eta). */
  readonly startedAt: number;
  readonly #key: string;
  readonly #grantSeq: number;
  /** Tokens reserved from the key's budget at grant. */
  readonly tokens: number;
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
      startedAt: number;
      grantSeq: number;
      tokens: number;
    },
    settle: SettleLease,
  ) {
    this.#key = key;
    this.keyId = info.keyId;
    this.label = info.label;
    this.leaseId = info.leaseId;
    this.probe = info.probe;
    this.acquiredAt = info.acquiredAt;
    this.startedAt = info.startedAt;
    this.#grantSeq = info.grantSeq;
    this.tokens = info.tokens;
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
    return this.#settle(this, { type: 'released', options });
  }

  /** The call failed. Returns the key's state afterwards (never throws for the key's sake). */
  fail(error?: unknown, options?: FailOptions): KeyStateName {
    return this.#settle(this, { type: 'failed', error, options });
  }

  /** The provider rate limited the call. Returns the key's state afterwards. */
  rateLimited(options?: RateLimitOptions): KeyStateName {
    return this.#settle(this, { type: 'rate-limited', options });
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
