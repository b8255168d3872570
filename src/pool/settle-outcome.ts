import { classifyOutcome } from '../limits/classify.js';
import type { Outcome } from '../limits/outcome.js';
import type { KeyStateName } from '../machines/key.types.js';
import type { Lease } from './lease.js';

/**
 * Settles a lease from a classified outcome. Spent quotas cool the key for the stated wait (or the
 * no-hint escalation), and provider errors count as failures for now: rate-limit intelligence
 * (quota exhaustion until reset, outage-aware failure counting) refines both.
 */
export function settleWithOutcome(lease: Lease, outcome: Outcome, error: unknown): KeyStateName {
  switch (outcome.kind) {
    case 'success':
      return lease.release();
    case 'rate-limited':
    case 'quota':
      return lease.rateLimited(
        outcome.retryAfterMs === undefined ? {} : { retryAfterMs: outcome.retryAfterMs },
      );
    case 'revoked':
      return lease.fail(error, { kind: 'revoked' });
    case 'disabled':
      return lease.fail(error, { kind: 'disabled' });
    case 'provider-error':
    case 'failed':
      return lease.fail(error);
  }
}

function looksLikeResponse(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const status = (value as { status?: unknown }).status;
  return typeof status === 'number';
}

/** What `withKey` does with a resolved value: an HTTP error response is classified, anything else is a success. */
export function settleFromResult(lease: Lease, result: unknown, now: number): void {
  if (looksLikeResponse(result)) settleWithOutcome(lease, classifyOutcome(result, { now }), result);
  else lease.release();
}

/** What `withKey` does with a thrown error: classify it (429, 401/403, 402, 5xx, network …). */
export function settleFromError(lease: Lease, error: unknown, now: number): void {
  settleWithOutcome(lease, classifyOutcome(error, { now }), error);
}
