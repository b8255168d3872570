import type { Clock } from '../clock.js';

interface VirtualTimer {
  readonly id: number;
  readonly at: number;
  readonly fn: () => void;
}

/**
 * A deterministic clock for tests and simulation. Time moves only when {@link VirtualClock.advance}
 * or {@link VirtualClock.advanceTo} is called; due timers then fire in deadline order (FIFO for
 * equal deadlines), each seeing `now()` equal to its own deadline. Timers scheduled while firing
 * run in the same call when they fall due before its end.
 */
export class VirtualClock implements Clock {
  #now: number;
  #nextId = 1;
  // Sorted by (at, id); timers are few per pool, so an ordered array beats a heap in practice.
  #timers: VirtualTimer[] = [];

  /** @param startAt initial time in epoch ms (default `1_700_000_000_000`, a fixed instant). */
  constructor(startAt = 1_700_000_000_000) {
    if (!Number.isFinite(startAt)) throw new RangeError('VirtualClock: startAt must be a finite number');
    this.#now = startAt;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): number {
    const delay = Number.isFinite(ms) ? Math.max(0, ms) : 0;
    const timer: VirtualTimer = { id: this.#nextId++, at: this.#now + delay, fn };
    let lo = 0;
    let hi = this.#timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const other = this.#timers[mid] as VirtualTimer;
      if (other.at <= timer.at) lo = mid + 1;
      else hi = mid;
    }
    this.#timers.splice(lo, 0, timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    const index = this.#timers.findIndex((t) => t.id === handle);
    if (index >= 0) this.#timers.splice(index, 1);
  }

  /** Moves time forward by `ms` (≥ 0), firing every timer that falls due on the way. */
  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms))
      throw new RangeError(`VirtualClock.advance: ms must be ≥ 0, got ${ms}`);
    this.advanceTo(this.#now + ms);
  }

  /** Moves time forward to the absolute instant `at`; moving backwards is an error. */
  advanceTo(at: number): void {
    if (at < this.#now) throw new RangeError('VirtualClock.advanceTo: time cannot go backwards');
    for (;;) {
      const next = this.#timers[0];
      if (next === undefined || next.at > at) break;
      this.#timers.shift();
      this.#now = next.at;
      next.fn();
    }
    this.#now = at;
  }

  /** Fires timers one deadline at a time until none is left or `maxSteps` timers have fired. */
  runAll(maxSteps = 100_000): void {
    for (let step = 0; step < maxSteps; step++) {
      const next = this.#timers[0];
      if (next === undefined) return;
      this.advanceTo(next.at);
    }
    throw new Error(`VirtualClock.runAll: still ${this.#timers.length} timers after ${maxSteps} steps`);
  }

  /** Number of scheduled, not yet fired timers. */
  get pendingTimers(): number {
    return this.#timers.length;
  }

  /** Deadline of the earliest pending timer, or `undefined`. */
  get nextTimerAt(): number | undefined {
    return this.#timers[0]?.at;
  }
}
