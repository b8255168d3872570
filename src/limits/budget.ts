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

/**
 * One budget's level: the budget as a bucket of `limit` per window that refills continuously, and
 * what it holds now.
 */
export interface BudgetLevel {
  /** The configured limit per window: requests per minute (`rpm`), tokens per minute (`tpm`), requests per day (`rpd`). */
  readonly limit: number;
  /**
   * What the window holds unspent now: `limit` less what leases committed (reserved at grant,
   * reconciled at release) that has not refilled yet. A whole number in [0, `limit`]. An `rpm`
   * budget is paced (one request per 60 000 / rpm ms), so a key may have requests left in the
   * window and still wait a moment for the next one: `readyAt` says when.
   */
  readonly remaining: number;
}

/** A key's budget levels, as `snapshot()` shows them: `null` for a budget the key does not have. */
export interface KeyBudgetSnapshot {
  readonly rpm: BudgetLevel | null;
  readonly tpm: BudgetLevel | null;
  readonly rpd: BudgetLevel | null;
  /** When a new lease fits every budget (epoch ms); at or before the snapshot's time when one fits now. */
  readonly readyAt: number;
}

function level(limit: number | null, clearAt: number, windowMs: number, now: number): BudgetLevel | null {
  if (limit === null) return null;
  const committed = (Math.max(0, clearAt - now) * limit) / windowMs;
  const remaining = Math.floor(limit - committed + 1e-9);
  return { limit, remaining: Number.isFinite(remaining) ? Math.min(limit, Math.max(0, remaining)) : 0 };
}

/** The levels of a key's budgets at `now`. */
export function budgetLevels(limits: BudgetLimits, state: BudgetState, now: number): KeyBudgetSnapshot {
  return {
    rpm: level(limits.rpm, state.requestsAt, MINUTE_MS, now),
    tpm: level(limits.tpm, state.tokensAt, MINUTE_MS, now),
    rpd: level(limits.rpd, state.dayAt, DAY_MS, now),
    readyAt: budgetReadyAt(limits, state),
  };
}
