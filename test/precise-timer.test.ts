import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../src/clock.js';
import { createPreciseTimer, type PreciseTimerSources } from '../src/precise-timer.js';

interface FakeTimeout {
  readonly at: number;
  readonly fn: () => void;
  unrefed: boolean;
  cleared: boolean;
  unref(): void;
}

interface FakeImmediate {
  readonly fn: () => void;
  cleared: boolean;
}

/**
 * A fake event loop: monotonic time moves only when told to. Coarse timers fire when time passes
 * their `at` (plus an optional lateness, to play a loaded machine); each loop turn moves time by
 * the turn's length, runs the due coarse timers, then the immediates queued before the turn.
 */
class FakeLoop implements PreciseTimerSources {
  t = 0;
  /** Added to every coarse timer's due time: how late (or, negative, early) Node's timer fires. */
  coarseLateness = 0;
  /** Sorted by `at`, FIFO on ties; fired and cleared ones are dropped lazily. */
  timeouts: FakeTimeout[] = [];
  immediates: FakeImmediate[] = [];
  immediatesArmed = 0;

  now = () => this.t;

  setTimeout = (fn: () => void, ms: number): FakeTimeout => {
    const timeout: FakeTimeout = {
      // Like Node, never due within the turn that armed it, however early it is set to fire.
      at: Math.max(this.t + ms + this.coarseLateness, this.t + 0.5),
      fn,
      unrefed: false,
      cleared: false,
      unref() {
        this.unrefed = true;
      },
    };
    let lo = 0;
    let hi = this.timeouts.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.timeouts[mid] as FakeTimeout).at <= timeout.at) lo = mid + 1;
      else hi = mid;
    }
    this.timeouts.splice(lo, 0, timeout);
    return timeout;
  };

  clearTimeout = (handle: unknown) => {
    const timeout = this.timeouts.find((t) => t === handle);
    if (timeout) timeout.cleared = true;
  };

  setImmediate = (fn: () => void): FakeImmediate => {
    const immediate = { fn, cleared: false };
    this.immediates.push(immediate);
    this.immediatesArmed++;
    return immediate;
  };

  clearImmediate = (handle: unknown) => {
    const immediate = this.immediates.find((i) => i === handle);
    if (immediate) immediate.cleared = true;
  };

  /** Immediates that would run on the next turn (and, being referenced, keep the process alive). */
  get liveImmediates(): number {
    return this.immediates.filter((i) => !i.cleared).length;
  }

  get liveTimeouts(): FakeTimeout[] {
    return this.timeouts.filter((t) => !t.cleared);
  }

  /** When the next coarse timer is due (`Infinity` if none). */
  nextTimeoutAt(): number {
    while (this.timeouts[0]?.cleared) this.timeouts.shift();
    return this.timeouts[0]?.at ?? Number.POSITIVE_INFINITY;
  }

  /** Moves time to `at`, firing due coarse timers in order on the way (no immediates run). */
  runTimeoutsUntil(at: number): void {
    while (this.nextTimeoutAt() <= at) {
      const due = this.timeouts.shift() as FakeTimeout;
      due.cleared = true;
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = Math.max(this.t, at);
  }

  /** One loop turn of `ms`: time moves, due coarse timers run, then the immediates queued before. */
  turn(ms: number): void {
    this.runTimeoutsUntil(this.t + ms);
    const batch = this.immediates;
    this.immediates = [];
    for (const immediate of batch) if (!immediate.cleared) immediate.fn();
  }

  /** Turns until no immediate is queued (at most `limit`), returning how many it took. */
  spinOut(ms: number, limit = 10_000): number {
    let turns = 0;
    while (this.liveImmediates > 0) {
      if (++turns > limit) throw new Error('the final-phase loop did not stop');
      this.turn(ms);
    }
    return turns;
  }
}

function setup(leadMs = 2) {
  const loop = new FakeLoop();
  const timer = createPreciseTimer({ ...loop, leadMs });
  return { loop, timer };
}

describe('createPreciseTimer', () => {
  it('arms an unref-ed coarse timer lead ms early and keeps no immediate meanwhile', () => {
    const { loop, timer } = setup(2);
    timer.setTimeout(() => {}, 200);
    expect(loop.liveTimeouts).toHaveLength(1);
    expect(loop.liveTimeouts[0]?.at).toBe(198);
    expect(loop.liveTimeouts[0]?.unrefed).toBe(true);
    expect(loop.liveImmediates).toBe(0);
    expect(timer.pending).toBe(1);
    expect(timer.spinning).toBe(0);
  });

  it('never fires before the deadline and fires on the first loop turn after it', () => {
    const { loop, timer } = setup(2);
    const firedAt: number[] = [];
    timer.setTimeout(() => firedAt.push(loop.t), 200);
    loop.runTimeoutsUntil(198);
    expect(firedAt).toEqual([]);
    expect(timer.spinning).toBe(1);
    expect(loop.liveImmediates).toBe(1);
    while (loop.t < 199.95) {
      loop.turn(0.1);
      expect(firedAt).toEqual([]);
    }
    loop.turn(0.1);
    expect(firedAt).toHaveLength(1);
    expect(firedAt[0]).toBeGreaterThanOrEqual(200);
    expect(firedAt[0]).toBeLessThan(200.1 + 1e-9);
    expect(timer.pending).toBe(0);
    expect(loop.liveImmediates).toBe(0);
  });

  it('fires at once from a coarse timer that comes after the deadline', () => {
    const { loop, timer } = setup(2);
    loop.coarseLateness = 5;
    const fn = vi.fn();
    timer.setTimeout(fn, 50);
    loop.runTimeoutsUntil(53);
    expect(fn).toHaveBeenCalledOnce();
    expect(loop.liveImmediates).toBe(0);
  });

  it('re-arms a coarse timer that comes early instead of spinning longer', () => {
    const { loop, timer } = setup(2);
    loop.coarseLateness = -1;
    const fn = vi.fn();
    timer.setTimeout(fn, 100);
    loop.runTimeoutsUntil(97);
    // 3 ms left: too early for the final phase, so a new coarse timer (1 ms, firing 1 ms early).
    expect(timer.spinning).toBe(0);
    expect(loop.liveImmediates).toBe(0);
    expect(loop.liveTimeouts).toHaveLength(1);
    loop.coarseLateness = 0;
    loop.runTimeoutsUntil(99);
    expect(timer.spinning).toBe(1);
    loop.spinOut(0.25);
    expect(fn).toHaveBeenCalledOnce();
    expect(loop.t).toBeGreaterThanOrEqual(100);
  });

  it('cancels in the coarse phase', () => {
    const { loop, timer } = setup(2);
    const fn = vi.fn();
    const handle = timer.setTimeout(fn, 100);
    timer.clearTimeout(handle);
    expect(loop.liveTimeouts).toHaveLength(0);
    expect(timer.pending).toBe(0);
    loop.runTimeoutsUntil(1_000);
    loop.spinOut(0.1);
    expect(fn).not.toHaveBeenCalled();
  });

  it('cancels in the final phase and stops the loop, so nothing holds the process', () => {
    const { loop, timer } = setup(2);
    const fn = vi.fn();
    const handle = timer.setTimeout(fn, 100);
    loop.runTimeoutsUntil(98.5);
    loop.turn(0.5);
    expect(timer.spinning).toBe(1);
    timer.clearTimeout(handle);
    expect(timer.pending).toBe(0);
    expect(timer.spinning).toBe(0);
    expect(loop.liveImmediates).toBe(0);
    loop.runTimeoutsUntil(200);
    expect(fn).not.toHaveBeenCalled();
    // Cancelling again, or a fired or foreign handle, changes nothing.
    timer.clearTimeout(handle);
    timer.clearTimeout({ owner: {} });
    timer.clearTimeout(42);
    timer.clearTimeout(null);
    expect(timer.pending).toBe(0);
  });

  it('keeps the loop for the other timers when one of two in the final phase is cancelled', () => {
    const { loop, timer } = setup(2);
    const fired: string[] = [];
    const a = timer.setTimeout(() => fired.push('a'), 10);
    timer.setTimeout(() => fired.push('b'), 10.5);
    loop.runTimeoutsUntil(9);
    timer.clearTimeout(a);
    expect(loop.liveImmediates).toBe(1);
    loop.spinOut(0.2);
    expect(fired).toEqual(['b']);
    expect(loop.t).toBeGreaterThanOrEqual(10.5);
  });

  it.each([0, -5, Number.NaN, Number.POSITIVE_INFINITY, 1.5])(
    'treats a delay of %s within the lead as the final phase: next turn, never synchronously',
    (ms) => {
      const { loop, timer } = setup(2);
      const fn = vi.fn();
      timer.setTimeout(fn, ms);
      expect(fn).not.toHaveBeenCalled();
      expect(loop.liveTimeouts).toHaveLength(0);
      const due = Number.isFinite(ms) ? Math.max(0, ms) : 0;
      loop.spinOut(0.25);
      expect(fn).toHaveBeenCalledOnce();
      expect(loop.t).toBeGreaterThanOrEqual(due);
      expect(loop.t).toBeLessThan(due + 0.25 + 1e-9);
    },
  );

  it('fires a timer armed by a callback on a later turn, not in the same batch', () => {
    const { loop, timer } = setup(2);
    const fired: number[] = [];
    const again = () => {
      fired.push(loop.t);
      if (fired.length < 3) timer.setTimeout(again, 0);
    };
    timer.setTimeout(again, 0);
    loop.turn(0);
    expect(fired).toHaveLength(1);
    loop.turn(0);
    expect(fired).toHaveLength(2);
    loop.spinOut(0);
    expect(fired).toHaveLength(3);
  });

  it('still fires the other due timers when a callback throws', () => {
    const { loop, timer } = setup(2);
    const fired: string[] = [];
    timer.setTimeout(() => {
      throw new Error('boom');
    }, 1);
    timer.setTimeout(() => fired.push('after'), 1);
    expect(() => loop.turn(1)).toThrow('boom');
    expect(loop.liveImmediates).toBe(1);
    loop.spinOut(0.1);
    expect(fired).toEqual(['after']);
  });

  it('splits a delay beyond what Node can arm into steps', () => {
    const { loop, timer } = setup(2);
    const fn = vi.fn();
    const days40 = 40 * 24 * 3_600_000;
    timer.setTimeout(fn, days40);
    expect(loop.liveTimeouts[0]?.at).toBe(2 ** 31 - 1);
    loop.runTimeoutsUntil(2 ** 31 - 1);
    expect(loop.liveTimeouts[0]?.at).toBe(days40 - 2);
    expect(loop.liveTimeouts[0]?.unrefed).toBe(true);
    loop.runTimeoutsUntil(days40 - 2);
    loop.spinOut(1);
    expect(fn).toHaveBeenCalledOnce();
  });

  it('serves 10 000 timers with one shared loop, in deadline order, each on the turn after its deadline', () => {
    const { loop, timer } = setup(2);
    let seed = 7;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
      return seed / 2_147_483_648;
    };
    const fired: { deadline: number; at: number; order: number }[] = [];
    for (let i = 0; i < 10_000; i++) {
      // Many share a deadline (FIFO among them), the others spread over 50 ms.
      const deadline = i % 4 === 0 ? 20 : Math.round(random() * 500) / 10;
      timer.setTimeout(() => fired.push({ deadline, at: loop.t, order: i }), deadline);
    }
    let maxImmediates = 0;
    while (timer.pending > 0) {
      if (loop.immediates.length === 0) loop.runTimeoutsUntil(loop.nextTimeoutAt());
      else loop.turn(0.05);
      maxImmediates = Math.max(maxImmediates, loop.immediates.length);
    }
    expect(maxImmediates).toBe(1);
    expect(fired).toHaveLength(10_000);
    for (const [i, f] of fired.entries()) {
      expect(f.at).toBeGreaterThanOrEqual(f.deadline);
      expect(f.at).toBeLessThan(f.deadline + 0.05 + 1e-9);
      const prev = fired[i - 1];
      if (prev) expect(prev.deadline).toBeLessThanOrEqual(f.deadline);
      if (prev && prev.deadline === f.deadline) expect(prev.order).toBeLessThan(f.order);
    }
    // Turns ran only while a timer was within 2 ms of its deadline: ≤ 2 ms / 0.05 ms per deadline.
    const deadlines = new Set(fired.map((f) => f.deadline)).size;
    expect(loop.immediatesArmed).toBeLessThanOrEqual(deadlines * 41);
    expect(loop.liveImmediates).toBe(0);
  });

  it('rejects a negative or non-finite lead', () => {
    expect(() => createPreciseTimer({ leadMs: -1 })).toThrow(RangeError);
    expect(() => createPreciseTimer({ leadMs: Number.NaN })).toThrow(RangeError);
    expect(() => createPreciseTimer({ leadMs: Number.POSITIVE_INFINITY })).toThrow(RangeError);
  });
});

describe('systemClock timers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('run on Node timers and performance.now(), so default fake timers drive them', () => {
    vi.useFakeTimers();
    const fn = vi.fn();
    const handle = systemClock.setTimeout(fn, 50);
    const cancelled = vi.fn();
    systemClock.clearTimeout(systemClock.setTimeout(cancelled, 50));
    vi.advanceTimersByTime(49);
    expect(fn).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(fn).toHaveBeenCalledOnce();
    expect(cancelled).not.toHaveBeenCalled();
    systemClock.clearTimeout(handle);
  });
});
