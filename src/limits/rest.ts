import { classifyOutcome } from './classify.js';
import { type HeadersInput, parseRateLimitHeaders } from './headers.js';
import { UNBOUNDED_HINTS } from './hints.js';

/** What a success's headers teach a key: see {@link learnFromSuccessHeaders}. */
export interface SuccessLessons {
  readonly restMs: number | undefined;
  readonly allowance:
    | { readonly remaining: number; readonly resetMs: number; readonly limit: number | undefined }
    | undefined;
}

/**
 * What a *successful* response's rate-limit headers teach the key, from one parse:
 * - `restMs`: when its remaining requests or tokens are 0 and the reset is stated, how long until
 *   that reset (the longer of the two). A remaining count of 0 without a reset is ignored (Azure
 *   sends such counts; cooling on them would park healthy keys).
 * - `allowance`: remaining requests and ms until the next one frees, when both are stated, with the
 *   requests a window admits (`limit`) when that is stated too.
 */
export function learnFromSuccessHeaders(headers: HeadersInput, now: number): SuccessLessons {
  const info = parseRateLimitHeaders(headers, now);
  let restMs: number | undefined;
  if (info.remainingRequests === 0 && info.resetRequestsMs !== undefined) restMs = info.resetRequestsMs;
  if (info.remainingTokens === 0 && info.resetTokensMs !== undefined) {
    restMs = Math.max(restMs ?? 0, info.resetTokensMs);
  }
  const allowance =
    info.remainingRequests === undefined || info.resetRequestsMs === undefined
      ? undefined
      : {
          remaining: info.remainingRequests,
          resetMs: info.resetRequestsMs,
          limit: info.limitRequests,
        };
  return { restMs, allowance };
}

/**
 * How long a 429's headers ask the key to wait (`retry-after`, `retry-after-ms`, reset headers …), if
 * they say: unbounded, for the pool's `HintScreen` to judge (and count).
 */
export function waitFromHeaders(headers: HeadersInput, now: number): number | undefined {
  const outcome = classifyOutcome({ status: 429, headers }, { now, ...UNBOUNDED_HINTS });
  return 'retryAfterMs' in outcome ? outcome.retryAfterMs : undefined;
}

/** Tokens a call used: `totalTokens` when given, else input + output; `undefined` when nothing is known. */
export function usedTokens(usage: {
  readonly inputTokens?: number;
  readonly outputTokens?: number;
  readonly totalTokens?: number;
}): number | undefined {
  if (usage.totalTokens !== undefined && Number.isFinite(usage.totalTokens))
    return Math.max(0, usage.totalTokens);
  const input = Number.isFinite(usage.inputTokens) ? (usage.inputTokens ?? 0) : 0;
  const output = Number.isFinite(usage.outputTokens) ? (usage.outputTokens ?? 0) : 0;
  return usage.inputTokens === undefined && usage.outputTokens === undefined
    ? undefined
    : Math.max(0, input + output);
}
