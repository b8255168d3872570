import type { SuccessLessons } from './rest.js';

/**
 * Default longest wait a rate-limit hint may impose (ms): 24 h. The longest rate-limit window
 * providers state is a day (requests-per-day limits: OpenAI's `x-ratelimit-reset-requests` of an
 * RPD tier, Gemini's per-day quota that resets at midnight Pacific); anything longer is a broken
 * header, not a window.
 */
export const DEFAULT_MAX_RETRY_AFTER_MS = 86_400_000;

/**
 * Default longest wait a spent quota's stated reset may impose (ms): 32 days. Spend limits reset
 * with the billing month (at most 31 days away, plus a day for time zones); Anthropic's workspace
 * limit names the date access returns, which is within that month.
 */
export const DEFAULT_MAX_QUOTA_RESET_MS = 32 * 86_400_000;

/** The longest waits a provider's hints may impose; a hint beyond its bound is absurd and ignored. */
export interface HintBounds {
  /** Longest rate-limit wait (`retry-after`, `retry-after-ms`, reset headers, `retryDelay`), ms. */
  readonly maxRetryAfterMs: number;
  /** Longest spent-quota wait (`fail(…, { kind: 'quota', retryAfterMs })`, a stated reset date), ms. */
  readonly maxQuotaResetMs: number;
}

export const DEFAULT_HINT_BOUNDS: HintBounds = {
  maxRetryAfterMs: DEFAULT_MAX_RETRY_AFTER_MS,
  maxQuotaResetMs: DEFAULT_MAX_QUOTA_RESET_MS,
};

/** No bound: the hints pass as parsed, for a caller that screens them itself (and counts what it drops). */
export const UNBOUNDED_HINTS: HintBounds = {
  maxRetryAfterMs: Number.POSITIVE_INFINITY,
  maxQuotaResetMs: Number.POSITIVE_INFINITY,
};

/** True when `ms` is a wait worth honouring: finite and at most `maxMs` (≤ 0 means "now"). */
export function isUsableHint(ms: number, maxMs: number): boolean {
  return Number.isFinite(ms) && ms <= maxMs;
}

/**
 * The pool's filter on every hint a settle carries: a non-finite or absurd one (beyond its bound)
 * becomes no hint, and `onIgnored` counts it (`snapshot().metrics.ignoredHints`).
 */
export class HintScreen {
  readonly #bounds: HintBounds;
  readonly #onIgnored: () => void;

  constructor(bounds: HintBounds, onIgnored: () => void) {
    this.#bounds = bounds;
    this.#onIgnored = onIgnored;
  }

  /** A rate limit's wait (ms), or `undefined` when there is none worth honouring. */
  rateLimit(ms: number | undefined): number | undefined {
    return this.#screen(ms, this.#bounds.maxRetryAfterMs);
  }

  /** A spent quota's wait until its reset (ms), or `undefined` when there is none worth honouring. */
  quota(ms: number | undefined): number | undefined {
    return this.#screen(ms, this.#bounds.maxQuotaResetMs);
  }

  /** What a success's headers teach, without a rest or allowance whose reset is absurd (counted once). */
  success(lessons: SuccessLessons): SuccessLessons {
    const max = this.#bounds.maxRetryAfterMs;
    const restOk = lessons.restMs === undefined || isUsableHint(lessons.restMs, max);
    const allowanceOk = lessons.allowance === undefined || isUsableHint(lessons.allowance.resetMs, max);
    if (restOk && allowanceOk) return lessons;
    this.#onIgnored();
    return {
      restMs: restOk ? lessons.restMs : undefined,
      allowance: allowanceOk ? lessons.allowance : undefined,
    };
  }

  #screen(ms: number | undefined, maxMs: number): number | undefined {
    if (ms === undefined) return undefined;
    // A zero or negative wait means "now" (SPEC §2).
    if (isUsableHint(ms, maxMs)) return Math.max(0, ms);
    this.#onIgnored();
    return undefined;
  }
}
