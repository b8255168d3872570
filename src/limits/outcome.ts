/**
 * What the provider's latest counters say about a key, read from response headers. Every field is
 * optional: providers send different subsets, and a field is left out when its header is missing or
 * unreadable.
 *
 * Durations are milliseconds from the `now` the headers were parsed at, never negative.
 */
export interface RateLimitInfo {
  /** Requests left in the binding request window (the smallest across the providers' request buckets). */
  remainingRequests?: number;
  /** Tokens left in the binding token window (the smallest of total, input and output token buckets). */
  remainingTokens?: number;
  /** Ms until the request window that `remainingRequests` describes is replenished. */
  resetRequestsMs?: number;
  /** Ms until the token window that `remainingTokens` describes is replenished. */
  resetTokensMs?: number;
  /** Ms the provider explicitly asked the caller to wait (`retry-after-ms`, `x-ms-retry-after-ms`, `retry-after`). */
  retryAfterMs?: number;
  /** Size of the binding request window. */
  limitRequests?: number;
  /** Size of the binding token window. */
  limitTokens?: number;
}

/**
 * Whose quota a rate limit or spent quota belongs to.
 *
 * - `'key'`: only this key must rest (the default when the provider says nothing more).
 * - `'group'`: the provider said the organisation, project or workspace behind the key is limited,
 *   so every key configured in the same `group` must rest with it. Keys without a `group` are
 *   unaffected by the difference.
 */
export type LimitScope = 'key' | 'group';

/**
 * What a provider call amounted to, as far as the key that made it is concerned. Produced by
 * `classifyOutcome`; consumed by the key machines to choose the key's next state.
 *
 * `retryAfterMs` is the wait the provider stated (or implied through reset headers), in ms from the
 * moment of classification; absent when it stated none. `status` is the HTTP status when one was seen.
 */
export type Outcome =
  /** The call succeeded; `rateLimit` carries the provider's counters when the response had any. */
  | { readonly kind: 'success'; readonly rateLimit?: RateLimitInfo }
  /** A short-window rate limit (RPM / TPM): the key cools for `retryAfterMs`, then is usable again. */
  | {
      readonly kind: 'rate-limited';
      readonly retryAfterMs?: number;
      readonly scope: LimitScope;
      readonly status?: number;
    }
  /**
   * A spend or daily quota is spent (`insufficient_quota`, per-day quota, `limit: 0`): the key is
   * exhausted until the stated reset; with no `retryAfterMs`, only recovery probes bring it back.
   */
  | {
      readonly kind: 'quota';
      readonly retryAfterMs?: number;
      readonly scope: LimitScope;
      readonly status?: number;
    }
  /** The key itself is refused: 401, 403, `authentication_error`, Gemini `API_KEY_INVALID`. */
  | { readonly kind: 'revoked'; readonly status?: number }
  /** The account behind the key cannot pay: 402, `billing_error`, credit balance too low. */
  | { readonly kind: 'disabled'; readonly status?: number }
  /**
   * The provider or the network failed, not the key: 5xx, 529 overloaded, 408, connection resets,
   * timeouts, aborts. Counted against a key only if it persists there while other keys succeed.
   */
  | { readonly kind: 'provider-error'; readonly retryAfterMs?: number; readonly status?: number }
  /**
   * The caller cancelled the call (its own `AbortSignal`; an SDK's `APIUserAbortError`). It says
   * nothing about the key or the provider: the lease is settled as a failure in the counters, but
   * never against the key's health (no consecutive failure, no blame, no outage, no penalty).
   */
  | { readonly kind: 'aborted' }
  /** Anything else (400 bad request, 404 unknown model, an application error): the key is blameless. */
  | { readonly kind: 'failed'; readonly status?: number };

/** The discriminant of {@link Outcome}. */
export type OutcomeKind = Outcome['kind'];
