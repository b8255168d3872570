import { classifyOutcome } from '../limits/classify.js';
import type { HeadersInput } from '../limits/headers.js';
import { UNBOUNDED_HINTS } from '../limits/hints.js';
import type { Outcome } from '../limits/outcome.js';
import type { KeyStateName } from '../machines/key.types.js';
import type { Lease } from './lease.js';

/** The caller's own abort, as settled when its signal has fired, whatever was thrown. */
export const ABORTED: Outcome = { kind: 'aborted' };

/**
 * Settles a lease from a classified outcome: a rate limit cools the key for the provider's hint, a
 * spent quota exhausts it until the stated reset, a provider error lets the pool judge between a
 * bad key and an outage, the caller's abort frees the key without judging it, a success learns from
 * its headers. `scope: 'group'` rests the key's group.
 */
export function settleWithOutcome(
  lease: Lease,
  outcome: Outcome,
  error: unknown,
  headers?: HeadersInput,
): KeyStateName {
  switch (outcome.kind) {
    case 'success':
      return lease.release(headers ? { headers } : {});
    case 'rate-limited':
      return lease.rateLimited({ retryAfterMs: outcome.retryAfterMs, scope: outcome.scope });
    case 'quota':
      return lease.fail(error, { kind: 'quota', retryAfterMs: outcome.retryAfterMs, scope: outcome.scope });
    case 'revoked':
      return lease.fail(error, { kind: 'revoked' });
    case 'disabled':
      return lease.fail(error, { kind: 'disabled' });
    case 'provider-error':
      return lease.fail(error, { kind: 'provider' });
    case 'aborted':
      return lease.fail(error, { kind: 'aborted' });
    case 'failed':
      return lease.fail(error);
  }
}

function responseHeaders(value: unknown): HeadersInput | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { status, headers } = value as { status?: unknown; headers?: unknown };
  if (typeof status !== 'number' || typeof headers !== 'object' || headers === null) return undefined;
  return headers as HeadersInput;
}

/** The body of a fetch `Response` with an error status, read from a clone (the caller's stays unread). */
async function errorBody(value: unknown, status: number): Promise<string | undefined> {
  if (status < 400) return undefined;
  const clone = (value as { clone?: unknown }).clone;
  if (typeof clone !== 'function') return undefined;
  try {
    const copy = clone.call(value) as { text?: () => Promise<string> };
    return typeof copy.text === 'function' ? await copy.text() : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What `withKey` does with a resolved value: an HTTP response is classified (an error status
 * settles accordingly — a fetch `Response`'s body is read from a clone, since it tells a spent
 * quota from a rate limit — and a success learns from its rate-limit headers); anything else is a
 * success.
 */
export async function settleFromResult(lease: Lease, result: unknown, clockNow: () => number): Promise<void> {
  const headers = responseHeaders(result);
  if (!headers) {
    lease.release();
    return;
  }
  const status = (result as { status: number }).status;
  const body = await errorBody(result, status);
  if (lease.settled) return;
  const evidence = body === undefined ? result : { status, headers, body };
  settleWithOutcome(
    lease,
    classifyOutcome(evidence, { now: clockNow(), ...UNBOUNDED_HINTS }),
    result,
    headers,
  );
}

/**
 * What `withKey` does with a thrown error: classify it (429, 401/403, 402, 5xx, network …), unless
 * the caller's `signal` has fired (then it is the caller's abort, whatever was thrown). Hints
 * are classified unbounded here and in {@link settleFromResult}: the pool screens them as it settles
 * the lease, and counts the absurd ones.
 */
export function settleFromError(lease: Lease, error: unknown, now: number, signal?: AbortSignal): void {
  // The caller's signal fired: whatever was thrown (often the signal's own reason), the caller aborted.
  const outcome = signal?.aborted === true ? ABORTED : classifyOutcome(error, { now, ...UNBOUNDED_HINTS });
  settleWithOutcome(lease, outcome, error);
}
