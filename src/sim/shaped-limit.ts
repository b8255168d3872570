import { InvalidConfigError } from '../errors.js';
import type { LimitView } from './key-limiter.js';

/**
 * How a limit of `limit` per `windowMs` is enforced.
 * - `'fixed-window'`: at most `limit` in each window `[origin + k·W, origin + (k+1)·W)`; the count
 *   drops to 0 at every boundary (GitHub, many gateways).
 * - `'sliding-log'`: at most `limit` in any `(t − W, t]`; each call leaves the window exactly `W`
 *   after it was admitted.
 * - `'token-bucket'`: a bucket of `limit` tokens refilling continuously at `limit / W` per ms,
 *   starting full; a call takes its cost (1 for requests).
 * - `'gcra'`: the generic cell rate algorithm: the same rate `limit / W`, but a burst tolerance of
 *   only `burst` calls (default `max(1, ceil(limit / 10))`), so calls must come paced, not in bursts.
 */
export type WindowShape = 'fixed-window' | 'sliding-log' | 'token-bucket' | 'gcra';

/**
 * What the `reset` a provider reports means (the instant its headers point at).
 * - `'window-end'`: the end of the current window. On a fixed window, its boundary (whether or not
 *   anything is counted); on the other shapes, which have no boundary, when everything counted has
 *   left (the same instant as `'full'`).
 * - `'next-slot'`: when `remaining` next grows (the oldest call leaves, the next token arrives);
 *   for a rejected call, when it would be admitted.
 * - `'full'`: when the limit is fully replenished (OpenAI's "resets to its initial state",
 *   Anthropic's "fully replenished").
 * With nothing counted, `'next-slot'` and `'full'` point at now.
 */
export type ResetMeaning = 'window-end' | 'next-slot' | 'full';

/** One limit of a provider-family member: a shape, a size, and what its `reset` means. */
export interface ShapedLimitSpec {
  readonly shape: WindowShape;
  /** Units (requests, or tokens) admitted per window, > 0 (integer for requests). */
  readonly limit: number;
  /** The window, in ms (> 0). */
  readonly windowMs: number;
  /** What the reported reset points at. Default `'next-slot'`. */
  readonly reset?: ResetMeaning;
  /** `'gcra'` only: calls that may go back to back (≥ 1). Default `max(1, ceil(limit / 10))`. */
  readonly burst?: number;
  /** `'fixed-window'` only: epoch ms at which a window starts. Default 0. */
  readonly origin?: number;
}

/**
 * One limit of a provider-family member, enforced at call start. `admitAt(now, cost)` says when a
 * call of `cost` units would be admitted (≤ now: now; `Infinity`: never, it is larger than the
 * limit), `record` counts an admitted call, `view` is what the headers show.
 */
export interface ShapedLimit {
  readonly spec: Required<Omit<ShapedLimitSpec, 'burst' | 'origin'>> &
    Pick<ShapedLimitSpec, 'burst' | 'origin'>;
  admitAt(now: number, cost: number): number;
  record(now: number, cost: number): void;
  /** Units counted now (for messages). */
  used(now: number): number;
  /** The headers' figures at `now`: `limit`, `remaining` (whole units) and `resetAt` per the meaning. */
  view(now: number): LimitView;
  /** Units admitted at the long-run rate over `durationMs`: `limit × max(1, durationMs / windowMs)`. */
  capacity(durationMs: number): number;
  /**
   * Units a client could take at once now on top of the long-run rate: a bucket's level (a bucket
   * left to fill lets a burst through that the rate does not count); 0 for the windows, whose every
   * whole window admits at most `limit`.
   */
  banked(now: number): number;
}

/** Builds the limit `spec` describes; throws {@link InvalidConfigError} for a bad spec. */
export function createShapedLimit(spec: ShapedLimitSpec, field = 'limit'): ShapedLimit {
  if (!(spec.limit > 0) || !Number.isFinite(spec.limit))
    throw new InvalidConfigError(`${field}.limit`, `must be a finite number > 0, got ${spec.limit}`);
  if (!(spec.windowMs > 0) || !Number.isFinite(spec.windowMs))
    throw new InvalidConfigError(`${field}.windowMs`, `must be a finite number > 0, got ${spec.windowMs}`);
  const full = { ...spec, reset: spec.reset ?? 'next-slot' } as const;
  switch (spec.shape) {
    case 'fixed-window':
      return new FixedWindow(full);
    case 'sliding-log':
      return new SlidingLog(full);
    case 'token-bucket':
      return new Bucket(full, spec.limit);
    case 'gcra': {
      const burst = spec.burst ?? Math.max(1, Math.ceil(spec.limit / 10));
      if (!(burst >= 1) || !Number.isFinite(burst))
        throw new InvalidConfigError(`${field}.burst`, `must be a finite number ≥ 1, got ${spec.burst}`);
      return new Bucket({ ...full, burst }, Math.min(burst, spec.limit));
    }
  }
}

type Spec = ShapedLimit['spec'];

function longRun(spec: Spec, durationMs: number): number {
  return spec.limit * Math.max(1, durationMs / spec.windowMs);
}

class FixedWindow implements ShapedLimit {
  readonly spec: Spec;
  #start = Number.NEGATIVE_INFINITY;
  #used = 0;

  constructor(spec: Spec) {
    this.spec = spec;
  }

  #roll(now: number): void {
    const origin = this.spec.origin ?? 0;
    const start = origin + Math.floor((now - origin) / this.spec.windowMs) * this.spec.windowMs;
    if (start !== this.#start) {
      this.#start = start;
      this.#used = 0;
    }
  }

  admitAt(now: number, cost: number): number {
    if (cost > this.spec.limit) return Number.POSITIVE_INFINITY;
    this.#roll(now);
    return this.#used + cost <= this.spec.limit ? now : this.#start + this.spec.windowMs;
  }

  record(now: number, cost: number): void {
    this.#roll(now);
    this.#used += cost;
  }

  used(now: number): number {
    this.#roll(now);
    return this.#used;
  }

  view(now: number): LimitView {
    this.#roll(now);
    const end = this.#start + this.spec.windowMs;
    const resetAt = this.spec.reset === 'window-end' || this.#used > 0 ? end : now;
    return {
      limit: this.spec.limit,
      remaining: Math.max(0, Math.floor(this.spec.limit - this.#used)),
      resetAt,
    };
  }

  capacity(durationMs: number): number {
    return longRun(this.spec, durationMs);
  }

  banked(_now: number): number {
    return 0;
  }
}

/** Below this many dead entries at the head of the log, compaction is not worth the copy. */
const COMPACT_AFTER = 1_024;

class SlidingLog implements ShapedLimit {
  readonly spec: Spec;
  #at: number[] = [];
  #cost: number[] = [];
  #head = 0;
  #used = 0;

  constructor(spec: Spec) {
    this.spec = spec;
  }

  #expire(now: number): void {
    const w = this.spec.windowMs;
    while (this.#head < this.#at.length && (this.#at[this.#head] as number) + w <= now) {
      this.#used -= this.#cost[this.#head] as number;
      this.#head++;
    }
    if (this.#head > COMPACT_AFTER && this.#head * 2 > this.#at.length) {
      this.#at = this.#at.slice(this.#head);
      this.#cost = this.#cost.slice(this.#head);
      this.#head = 0;
    }
  }

  admitAt(now: number, cost: number): number {
    if (cost > this.spec.limit) return Number.POSITIVE_INFINITY;
    this.#expire(now);
    let excess = this.#used + cost - this.spec.limit;
    if (excess <= 0) return now;
    for (let i = this.#head; i < this.#at.length; i++) {
      excess -= this.#cost[i] as number;
      if (excess <= 0) return (this.#at[i] as number) + this.spec.windowMs;
    }
    return Number.POSITIVE_INFINITY;
  }

  record(now: number, cost: number): void {
    this.#expire(now);
    this.#at.push(now);
    this.#cost.push(cost);
    this.#used += cost;
  }

  used(now: number): number {
    this.#expire(now);
    return this.#used;
  }

  view(now: number): LimitView {
    this.#expire(now);
    const oldest = this.#at[this.#head];
    const newest = this.#at[this.#at.length - 1];
    const remaining = Math.max(0, Math.floor(this.spec.limit - this.#used));
    if (oldest === undefined || newest === undefined)
      return { limit: this.spec.limit, remaining, resetAt: now };
    const resetAt = (this.spec.reset === 'next-slot' ? oldest : newest) + this.spec.windowMs;
    return { limit: this.spec.limit, remaining, resetAt };
  }

  capacity(durationMs: number): number {
    return longRun(this.spec, durationMs);
  }

  banked(_now: number): number {
    return 0;
  }
}

/**
 * A bucket of `size` units refilling at `limit / windowMs` per ms (a token bucket when `size` is
 * the limit, GCRA when it is the burst). Kept as the instant it is full again, so decisions compare
 * instants rather than accumulate a floating-point level.
 */
class Bucket implements ShapedLimit {
  readonly spec: Spec;
  readonly #size: number;
  /** Ms per unit of refill. */
  readonly #unitMs: number;
  #fullAt = Number.NEGATIVE_INFINITY;

  constructor(spec: Spec, size: number) {
    this.spec = spec;
    this.#size = size;
    this.#unitMs = spec.windowMs / spec.limit;
  }

  admitAt(now: number, cost: number): number {
    if (cost > this.#size) return Number.POSITIVE_INFINITY;
    const fullAt = Math.max(this.#fullAt, now);
    return Math.max(now, fullAt + cost * this.#unitMs - this.#size * this.#unitMs);
  }

  record(now: number, cost: number): void {
    this.#fullAt = Math.max(this.#fullAt, now) + cost * this.#unitMs;
  }

  used(now: number): number {
    return Math.min(this.#size, Math.max(0, this.#fullAt - now) / this.#unitMs);
  }

  view(now: number): LimitView {
    const missing = this.used(now);
    const level = this.#size - missing;
    const remaining = Math.max(0, Math.floor(level));
    if (missing <= 0) return { limit: this.spec.limit, remaining, resetAt: now };
    if (this.spec.reset !== 'next-slot') return { limit: this.spec.limit, remaining, resetAt: this.#fullAt };
    // When the level next reaches a whole unit above `remaining`.
    const units = Math.min(this.#size, remaining + 1);
    return { limit: this.spec.limit, remaining, resetAt: this.#fullAt - (this.#size - units) * this.#unitMs };
  }

  capacity(durationMs: number): number {
    return longRun(this.spec, durationMs);
  }

  banked(now: number): number {
    return this.#size - this.used(now);
  }
}
