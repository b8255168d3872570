/**
 * Per-key budgets as GCRA ("virtual scheduling") meters: each meter keeps the theoretical time at
 * which its budget is clear again (`…At`, epoch ms) instead of a level, so it needs no timer and
 * persists as plain numbers.
 *
 * - requests per minute are **paced**: one request per 60 000 / rpm ms, no burst. A paced stream
 *   never trips a provider's sliding per-second or per-minute window, which is what "no 429 at all
 *   within the budget" needs; at full load it loses nothing.
 * - tokens per minute are paced the same way by weight: a request of n tokens occupies n × 60 000 / tpm
 *   ms of the meter, reserved at grant from the caller's estimate and reconciled with the real
 *   usage at release (a refund moves the meter back, an overrun forward).
 * - requests per day allow the whole day's budget as a burst, then one per 86 400 000 / rpd ms.
 */

/** Budget limits of one key; absent = unlimited. All integers ≥ 1. */
export interface BudgetLimits {
  /** Requests per minute. */
  readonly rpm: number | null;
  /** Tokens per minute (input + output). */
  readonly tpm: number | null;
  /** Requests per day. */
  readonly rpd: number | null;
}

/** Meter state (epoch ms at which each budget is clear again; 0 = never used). */
export interface BudgetState {
  readonly requestsAt: number;
  readonly tokensAt: number;
  readonly dayAt: number;
}

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;

export const EMPTY_BUDGET: BudgetState = { requestsAt: 0, tokensAt: 0, dayAt: 0 };

export function hasBudget(limits: BudgetLimits): boolean {
  return limits.rpm !== null || limits.tpm !== null || limits.rpd !== null;
}

/** Earliest time (epoch ms) at which a new lease fits every budget; ≤ now means now. */
export function budgetReadyAt(limits: BudgetLimits, state: BudgetState): number {
  let at = 0;
  if (limits.rpm !== null) at = Math.max(at, state.requestsAt);
  if (limits.tpm !== null) at = Math.max(at, state.tokensAt);
  if (limits.rpd !== null) at = Math.max(at, state.dayAt - (DAY_MS - DAY_MS / limits.rpd));
  return at;
}

/** The meters after granting one lease that expects `tokens` tokens, at `now`. */
export function chargeGrant(
  limits: BudgetLimits,
  state: BudgetState,
  now: number,
  tokens: number,
): BudgetState {
  return {
    requestsAt:
      limits.rpm === null ? state.requestsAt : Math.max(state.requestsAt, now) + MINUTE_MS / limits.rpm,
    tokensAt:
      limits.tpm === null
        ? state.tokensAt
        : Math.max(state.tokensAt, now) + (Math.max(0, tokens) * MINUTE_MS) / limits.tpm,
    dayAt: limits.rpd === null ? state.dayAt : Math.max(state.dayAt, now) + DAY_MS / limits.rpd,
  };
}

/** The meters after learning that a lease used `delta` more (or, negative, fewer) tokens than reserved. */
export function reconcileTokens(
  limits: BudgetLimits,
  state: BudgetState,
  now: number,
  delta: number,
): BudgetState {
  if (limits.tpm === null || delta === 0 || !Number.isFinite(delta)) return state;
  return { ...state, tokensAt: Math.max(now, state.tokensAt + (delta * MINUTE_MS) / limits.tpm) };
}

/**
 * Share of the budget left now, in [0, 1] (1 = untouched): how far each meter is from blocking,
 * the tightest meter deciding. Strategies use it to prefer keys with headroom.
 */
export function budgetHeadroom(limits: BudgetLimits, state: BudgetState, now: number): number {
  let headroom = 1;
  if (limits.rpd !== null) {
    const tolerance = DAY_MS - DAY_MS / limits.rpd;
    const used = Math.max(0, state.dayAt - now);
    headroom = Math.min(headroom, Math.max(0, 1 - used / (tolerance + DAY_MS / limits.rpd)));
  }
  if (limits.rpm !== null && state.requestsAt > now) headroom = 0;
  if (limits.tpm !== null && state.tokensAt > now) headroom = 0;
  return headroom;
}
