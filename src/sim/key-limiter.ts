import { createShapedLimit, type ShapedLimit, type ShapedLimitSpec } from './shaped-limit.js';

/**
 * The limits one simulated key is held to. Every limit is optional; a key with none is unlimited.
 * The named request limits are **sliding windows** over admitted calls: at any instant `t`, the
 * calls admitted in `(t - window, t]` never exceed the limit. `requests` and `tokens` take any
 * other shape (fixed window, token bucket, GCRA; `ShapedLimitSpec`). A call is admitted only when
 * every limit admits it.
 */
export interface SimulatedKeyLimits {
  /** Requests admitted in any sliding 1-second window (integer ≥ 0; 0 admits nothing). Default: no limit. */
  readonly requestsPerSecond?: number;
  /** Requests admitted in any sliding 60-second window (integer ≥ 0). Default: no limit. */
  readonly requestsPerMinute?: number;
  /** Requests admitted in any sliding 24-hour window (integer ≥ 0). Default: no limit. */
  readonly requestsPerDay?: number;
  /** Tokens admitted per minute (≥ 0), counted from `call(key, { tokens })`. Default: no limit. */
  readonly tokensPerMinute?: number;
  /**
   * How `tokensPerMinute` is enforced. Default `'sliding-window'`.
   * - `'sliding-window'`: tokens admitted in any sliding 60-second window never exceed the limit.
   * - `'token-bucket'`: a bucket of `tokensPerMinute` tokens refilling continuously at
   *   `tokensPerMinute / 60 000` per ms, starting full (Anthropic's documented model).
   */
  readonly tokenAlgorithm?: 'sliding-window' | 'token-bucket';
  /**
   * A request limit of any window shape, window length and reset meaning (the provider family of
   * BENCH.md B4g); it holds besides the sliding windows above. Default: none.
   */
  readonly requests?: ShapedLimitSpec;
  /** A token limit of any shape (each call costs its `tokens`), besides `tokensPerMinute`. Default: none. */
  readonly tokens?: ShapedLimitSpec;
}

/** Which request window a limit applies to. */
export type RequestWindowName = 'second' | 'minute' | 'day';

/** Window lengths in ms. */
export const WINDOW_MS: Readonly<Record<RequestWindowName, number>> = {
  second: 1_000,
  minute: 60_000,
  day: 86_400_000,
};

const TOKEN_WINDOW_MS = WINDOW_MS.minute;

/**
 * What one limit looks like to a client after a decision: the figures the rate-limit headers carry.
 * `resetAt` is the epoch-ms instant at which `remaining` next grows (for a rejected call: at which
 * that call would be admitted; for a token bucket after a success: at which it is full again).
 */
export interface LimitView {
  readonly limit: number;
  readonly remaining: number;
  readonly resetAt: number;
}

/** The request window that rejected a call, or the token limit. `used` counts what is in the window now. */
export type LimitBreach =
  | {
      readonly kind: 'requests';
      /** The window's name; for a shaped limit, the shortest named window at least as long. */
      readonly window: RequestWindowName;
      /** The window's length in ms, when it is a shaped limit's (`SimulatedKeyLimits.requests`). */
      readonly windowMs?: number;
      readonly limit: number;
      readonly used: number;
    }
  | { readonly kind: 'tokens'; readonly limit: number; readonly used: number; readonly requested: number };

/** The outcome of {@link KeyLimiter.decide}. */
export type LimiterDecision =
  | {
      readonly admitted: true;
      readonly requests: LimitView | undefined;
      readonly tokens: LimitView | undefined;
    }
  | {
      readonly admitted: false;
      /** Epoch ms from which the same call would be admitted; `Infinity` when waiting never helps. */
      readonly admitAt: number;
      readonly breach: LimitBreach;
      readonly requests: LimitView | undefined;
      readonly tokens: LimitView | undefined;
    };

interface RequestWindow {
  readonly name: RequestWindowName;
  readonly limit: number;
  readonly windowMs: number;
}

interface WindowState {
  readonly window: RequestWindow;
  /** Admitted calls in the window now. */
  readonly used: number;
  /** When the next call would be admitted by this window (≤ now if it would be now). */
  readonly admitAt: number;
  /** When `used` next drops (`now` if nothing is counted). */
  readonly nextExpiryAt: number;
}

/** Below this many dead entries at the head of a log, compaction is not worth the copy. */
const COMPACT_AFTER = 1_024;

/**
 * Enforces one key's limits. `decide(now, tokens)` admits the call (and records it) or says when it
 * would be admitted. Time only moves forward between calls.
 *
 * A call sits in a window of length `W` while `admittedAt + W > now`; it leaves at exactly
 * `admittedAt + W`, which is why a client that waits until `admitAt` is admitted.
 */
export class KeyLimiter {
  readonly #windows: readonly RequestWindow[];
  readonly #longestWindowMs: number;
  // Admission times of requests still inside the longest window, oldest first, from #head.
  #admittedAt: number[] = [];
  #head = 0;

  readonly #tokenLimit: number | undefined;
  readonly #tokenAlgorithm: 'sliding-window' | 'token-bucket';
  // Sliding-window tokens: parallel logs from #tokenHead, with their running sum.
  #tokenAt: number[] = [];
  #tokenCount: number[] = [];
  #tokenHead = 0;
  #tokensInWindow = 0;
  // Token bucket kept as the instant it is full again (GCRA), so decisions compare instants instead
  // of accumulating a floating-point level.
  #bucketFullAt = Number.NEGATIVE_INFINITY;
  readonly #shapedRequests: ShapedLimit | undefined;
  readonly #shapedTokens: ShapedLimit | undefined;

  constructor(limits: SimulatedKeyLimits) {
    const windows: RequestWindow[] = [];
    const add = (name: RequestWindowName, limit: number | undefined) => {
      if (limit !== undefined) windows.push({ name, limit, windowMs: WINDOW_MS[name] });
    };
    add('second', limits.requestsPerSecond);
    add('minute', limits.requestsPerMinute);
    add('day', limits.requestsPerDay);
    this.#windows = windows;
    this.#longestWindowMs = Math.max(0, ...windows.map((w) => w.windowMs));
    this.#tokenLimit = limits.tokensPerMinute;
    this.#tokenAlgorithm = limits.tokenAlgorithm ?? 'sliding-window';
    this.#shapedRequests =
      limits.requests === undefined ? undefined : createShapedLimit(limits.requests, 'limits.requests');
    this.#shapedTokens =
      limits.tokens === undefined ? undefined : createShapedLimit(limits.tokens, 'limits.tokens');
  }

  /** Admits a call of `tokens` tokens at `now` (and records it), or says why and until when not. */
  decide(now: number, tokens: number): LimiterDecision {
    this.#expire(now);
    let windows = this.#windows.map((w) => this.#windowState(w, now));
    let blocking: WindowState | undefined;
    for (const state of windows) {
      if (state.admitAt > now && (blocking === undefined || state.admitAt > blocking.admitAt))
        blocking = state;
    }
    const tokensAdmitAt = this.#tokensAdmitAt(now, tokens);
    const shapedRequestsAt = this.#shapedRequests?.admitAt(now, 1) ?? now;
    const shapedTokensAt = tokens > 0 ? (this.#shapedTokens?.admitAt(now, tokens) ?? now) : now;

    if (blocking === undefined && tokensAdmitAt <= now && shapedRequestsAt <= now && shapedTokensAt <= now) {
      this.#record(now, tokens);
      windows = this.#windows.map((w) => this.#windowState(w, now));
      return {
        admitted: true,
        requests: this.#requestView(windows, now),
        tokens: this.#tokensView(now, undefined),
      };
    }

    const requestsAt = Math.max(blocking?.admitAt ?? now, shapedRequestsAt);
    const allTokensAt = Math.max(tokensAdmitAt, shapedTokensAt);
    return {
      admitted: false,
      admitAt: Math.max(requestsAt, allTokensAt),
      breach: this.#breach(now, tokens, blocking, shapedRequestsAt, tokensAdmitAt, shapedTokensAt),
      requests: this.#requestView(windows, now),
      tokens: this.#tokensView(now, allTokensAt > now ? allTokensAt : undefined),
    };
  }

  /** The limit that holds the call back longest (requests win a tie, as they are checked first). */
  #breach(
    now: number,
    tokens: number,
    blocking: WindowState | undefined,
    shapedRequestsAt: number,
    tokensAdmitAt: number,
    shapedTokensAt: number,
  ): LimitBreach {
    const shaped = this.#shapedRequests;
    const candidates: { readonly at: number; readonly breach: () => LimitBreach }[] = [];
    if (blocking !== undefined) {
      const { window, used } = blocking;
      candidates.push({
        at: blocking.admitAt,
        breach: () => ({ kind: 'requests', window: window.name, limit: window.limit, used }),
      });
    }
    if (shaped !== undefined && shapedRequestsAt > now) {
      const { limit, windowMs } = shaped.spec;
      candidates.push({
        at: shapedRequestsAt,
        breach: () => ({
          kind: 'requests',
          window: windowName(windowMs),
          windowMs,
          limit,
          used: Math.ceil(shaped.used(now)),
        }),
      });
    }
    const tokenLimit = this.#tokenLimit;
    if (tokenLimit !== undefined && tokensAdmitAt > now) {
      candidates.push({
        at: tokensAdmitAt,
        breach: () => ({ kind: 'tokens', limit: tokenLimit, used: this.#tokensUsed(now), requested: tokens }),
      });
    }
    const shapedTokens = this.#shapedTokens;
    if (shapedTokens !== undefined && shapedTokensAt > now) {
      candidates.push({
        at: shapedTokensAt,
        breach: () => ({
          kind: 'tokens',
          limit: shapedTokens.spec.limit,
          used: shapedTokens.used(now),
          requested: tokens,
        }),
      });
    }
    let chosen = candidates[0];
    for (const candidate of candidates)
      if (chosen === undefined || candidate.at > chosen.at) chosen = candidate;
    return chosen?.breach() ?? { kind: 'tokens', limit: tokenLimit ?? 0, used: 0, requested: tokens };
  }

  /** The request headers' figures: the tightest of the sliding windows and the shaped limit. */
  #requestView(windows: readonly WindowState[], now: number): LimitView | undefined {
    const view = requestView(windows, now);
    const shaped = this.#shapedRequests?.view(now);
    return shaped === undefined || (view !== undefined && tighter(view, shaped)) ? view : shaped;
  }

  #tokensView(now: number, rejectedUntil: number | undefined): LimitView | undefined {
    const view = this.#tokenView(now, rejectedUntil);
    const shapedLimit = this.#shapedTokens;
    if (shapedLimit === undefined) return view;
    const shaped = shapedLimit.view(now);
    const stated =
      rejectedUntil !== undefined && rejectedUntil > shaped.resetAt
        ? { ...shaped, resetAt: rejectedUntil }
        : shaped;
    return view !== undefined && tighter(view, stated) ? view : stated;
  }

  /**
   * The most calls this key admits over `durationMs` at its long-run rate: the minimum over its
   * limits of `limit × max(1, durationMs / window)` (a window longer than the duration contributes its
   * whole limit). Token limits count only when `tokensPerCall` > 0. `Infinity` when nothing limits.
   */
  capacity(durationMs: number, tokensPerCall = 0): number {
    let calls = Number.POSITIVE_INFINITY;
    for (const w of this.#windows) calls = Math.min(calls, w.limit * Math.max(1, durationMs / w.windowMs));
    if (this.#shapedRequests !== undefined)
      calls = Math.min(calls, this.#shapedRequests.capacity(durationMs));
    if (this.#shapedTokens !== undefined && tokensPerCall > 0)
      calls = Math.min(calls, this.#shapedTokens.capacity(durationMs) / tokensPerCall);
    if (this.#tokenLimit !== undefined && tokensPerCall > 0) {
      const tokens = this.#tokenLimit * Math.max(1, durationMs / TOKEN_WINDOW_MS);
      calls = Math.min(calls, tokens / tokensPerCall);
    }
    return calls;
  }

  /** Requests the key could admit at once beyond its long-run rate (a request bucket's level; see `ShapedLimit.banked`). */
  banked(now: number): number {
    return this.#shapedRequests?.banked(now) ?? 0;
  }

  #expire(now: number): void {
    const log = this.#admittedAt;
    while (this.#head < log.length && (log[this.#head] as number) + this.#longestWindowMs <= now)
      this.#head++;
    if (this.#head > COMPACT_AFTER && this.#head * 2 > log.length) {
      this.#admittedAt = log.slice(this.#head);
      this.#head = 0;
    }
    if (this.#tokenAlgorithm === 'sliding-window') {
      while (
        this.#tokenHead < this.#tokenAt.length &&
        (this.#tokenAt[this.#tokenHead] as number) + TOKEN_WINDOW_MS <= now
      ) {
        this.#tokensInWindow -= this.#tokenCount[this.#tokenHead] as number;
        this.#tokenHead++;
      }
      if (this.#tokenHead > COMPACT_AFTER && this.#tokenHead * 2 > this.#tokenAt.length) {
        this.#tokenAt = this.#tokenAt.slice(this.#tokenHead);
        this.#tokenCount = this.#tokenCount.slice(this.#tokenHead);
        this.#tokenHead = 0;
      }
    }
  }

  #windowState(window: RequestWindow, now: number): WindowState {
    const log = this.#admittedAt;
    // First entry still inside this window (entries are sorted, so binary search).
    let lo = this.#head;
    let hi = log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((log[mid] as number) + window.windowMs > now) hi = mid;
      else lo = mid + 1;
    }
    const used = log.length - lo;
    const oldest = log[lo];
    const nextExpiryAt = oldest === undefined ? now : oldest + window.windowMs;
    if (used < window.limit) return { window, used, admitAt: now, nextExpiryAt };
    if (window.limit === 0) return { window, used, admitAt: Number.POSITIVE_INFINITY, nextExpiryAt };
    // The call that has to leave for one more to fit.
    const leaving = log[lo + used - window.limit] as number;
    return { window, used, admitAt: leaving + window.windowMs, nextExpiryAt };
  }

  #tokensAdmitAt(now: number, tokens: number): number {
    const limit = this.#tokenLimit;
    if (limit === undefined || tokens === 0) return now;
    if (tokens > limit) return Number.POSITIVE_INFINITY;
    if (this.#tokenAlgorithm === 'token-bucket') {
      // Full at #bucketFullAt; each token takes 60 000 / limit ms to refill.
      const fullAt = Math.max(this.#bucketFullAt, now);
      return Math.max(now, fullAt + tokens * (TOKEN_WINDOW_MS / limit) - TOKEN_WINDOW_MS);
    }
    let excess = this.#tokensInWindow + tokens - limit;
    if (excess <= 0) return now;
    for (let i = this.#tokenHead; i < this.#tokenAt.length; i++) {
      excess -= this.#tokenCount[i] as number;
      if (excess <= 0) return (this.#tokenAt[i] as number) + TOKEN_WINDOW_MS;
    }
    return Number.POSITIVE_INFINITY;
  }

  #tokensUsed(now: number): number {
    const limit = this.#tokenLimit;
    if (limit === undefined) return 0;
    if (this.#tokenAlgorithm === 'sliding-window') return this.#tokensInWindow;
    const fullAt = Math.max(this.#bucketFullAt, now);
    return Math.min(limit, ((fullAt - now) * limit) / TOKEN_WINDOW_MS);
  }

  #tokenView(now: number, rejectedUntil: number | undefined): LimitView | undefined {
    const limit = this.#tokenLimit;
    if (limit === undefined) return undefined;
    const remaining = Math.max(0, Math.floor(limit - this.#tokensUsed(now)));
    if (rejectedUntil !== undefined) return { limit, remaining, resetAt: rejectedUntil };
    if (this.#tokenAlgorithm === 'token-bucket')
      return { limit, remaining, resetAt: Math.max(now, this.#bucketFullAt) };
    const oldest = this.#tokenAt[this.#tokenHead];
    return { limit, remaining, resetAt: oldest === undefined ? now : oldest + TOKEN_WINDOW_MS };
  }

  #record(now: number, tokens: number): void {
    if (this.#windows.length > 0) this.#admittedAt.push(now);
    this.#shapedRequests?.record(now, 1);
    if (tokens > 0) this.#shapedTokens?.record(now, tokens);
    const limit = this.#tokenLimit;
    if (limit === undefined || tokens === 0) return;
    if (this.#tokenAlgorithm === 'token-bucket') {
      this.#bucketFullAt = Math.max(this.#bucketFullAt, now) + tokens * (TOKEN_WINDOW_MS / limit);
    } else {
      this.#tokenAt.push(now);
      this.#tokenCount.push(tokens);
      this.#tokensInWindow += tokens;
    }
  }
}

/** Whether `a` is the tighter of two views: less remaining, then the later reset. */
function tighter(a: LimitView, b: LimitView): boolean {
  return a.remaining < b.remaining || (a.remaining === b.remaining && a.resetAt >= b.resetAt);
}

/** Headers show the tightest window: least remaining, then the latest reset. */
function requestView(windows: readonly WindowState[], now: number): LimitView | undefined {
  let view: LimitView | undefined;
  for (const state of windows) {
    const candidate: LimitView = {
      limit: state.window.limit,
      remaining: Math.max(0, state.window.limit - state.used),
      resetAt: state.admitAt > now ? state.admitAt : state.nextExpiryAt,
    };
    if (view === undefined || !tighter(view, candidate)) view = candidate;
  }
  return view;
}

/** The shortest named window at least `windowMs` long. */
function windowName(windowMs: number): RequestWindowName {
  if (windowMs <= WINDOW_MS.second) return 'second';
  return windowMs <= WINDOW_MS.minute ? 'minute' : 'day';
}
