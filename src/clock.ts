import { createPreciseTimer } from './precise-timer.js';

/**
 * The longest wait (ms) a timer can hold: Node's `setTimeout` overflows beyond 2^31 − 1 ms (about
 * 24.8 days) and fires after 1 ms instead. Every duration option is bounded by it.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The one source of time in KeyMesh. Machines, the pool and storage read `now()` from it and
 * schedule through it; nothing in `src/` calls `Date.now()` or the global timers directly, so a
 * virtual clock can drive the whole library deterministically.
 *
 * It is also what XState's `createActor({ clock })` expects (`setTimeout` / `clearTimeout`).
 */
export interface Clock {
  /** Current time in epoch milliseconds. Stored deadlines use this scale. */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer scheduled with {@link Clock.setTimeout}; unknown handles are ignored. */
  clearTimeout(handle: unknown): void;
  /**
   * Optional: monotonic milliseconds (any origin) that never step, on the scale `setTimeout` waits
   * on. When given, a pool measures elapsed time on it, so a step of `now()` (an NTP correction, a
   * manual change of the system time) changes no wait, cooldown or pacing in a running pool; see
   * "Time and clock steps" in the README. Without it, `now()` is taken to never step.
   */
  monotonic?(): number;
  /**
   * Optional: holds the process open until the returned function is called. A pool calls it while
   * an `acquire()` is waiting, so that a script whose only pending work is that wait does not exit
   * (the pool's own timers are `unref`ed). A virtual clock leaves it out: its time moves only when
   * driven, and holding a process open for it would hang.
   */
  keepAlive?(): () => void;
}

/** What {@link createEpochNow} reads: Node's clocks by default, fakes in tests. */
export interface EpochSources {
  /** Wall-clock epoch ms, whole (`Date.now()`). */
  wall(): number;
  /** Monotonic ms with a fraction (`performance.now()`). */
  monotonic(): number;
  /** Epoch ms at which `monotonic()` read 0 (`performance.timeOrigin`). */
  readonly origin: number;
}

/** How often (monotonic ms) {@link createEpochNow} checks itself against the wall clock. */
export const EPOCH_CHECK_MS = 50;

/**
 * Epoch milliseconds with a fraction: the monotonic clock plus an offset kept within the wall
 * clock's current millisecond. `Date.now()` alone is whole milliseconds, so a deadline "200 ms from
 * now" stored on its scale can end up to 1 ms early or late against the instant it was asked at;
 * with this clock a deadline and the delay armed for it are exact to the microsecond.
 *
 * Every {@link EPOCH_CHECK_MS} of monotonic time it compares itself with `wall()`. If it has left
 * the wall clock's millisecond (the wall clock was stepped, the machine slept, the two clocks
 * drifted), the offset moves by just enough to come back into it, so over a long run it stays
 * within about a millisecond of the wall clock's true time, plus up to {@link EPOCH_CHECK_MS} after
 * a step (a sleeping machine's monotonic clock stands still). It costs one `performance.now()` per read.
 */
export function createEpochNow(sources?: EpochSources, checkEveryMs = EPOCH_CHECK_MS): () => number {
  const wall = sources ? () => sources.wall() : () => Date.now();
  const monotonic = sources ? () => sources.monotonic() : () => performance.now();
  let offset = sources ? sources.origin : performance.timeOrigin;
  let nextCheck = Number.NEGATIVE_INFINITY;
  return () => {
    const mono = monotonic();
    if (mono >= nextCheck) {
      nextCheck = mono + checkEveryMs;
      const whole = wall();
      const now = mono + offset;
      // The wall clock's millisecond [whole, whole + 1): move the offset into it, no further.
      if (now < whole) offset += whole - now;
      else if (now >= whole + 1) offset -= now - whole - 0.999;
    }
    return mono + offset;
  };
}

const realTimers = createPreciseTimer();
const epochNow = createEpochNow();

/**
 * The real clock. `now()` is epoch ms with a fraction (see {@link createEpochNow}): `Date.now()`'s
 * scale, the scale of stored deadlines, to the microsecond. Timers are precise: measured on the monotonic clock (`performance.now()`), never early, and
 * usually within 0.1 ms after their delay, where Node's own `setTimeout` is often 1–3 ms late: Node's
 * timer is armed 2 ms early and a shared `setImmediate` loop finishes the wait (see
 * `createPreciseTimer` in `src/precise-timer.ts`). Pending timers are `unref`ed, so a pool left
 * open never keeps a short script alive; only a timer in its last 2 ms holds the process open,
 * until it fires.
 */
export const systemClock: Clock = {
  now: epochNow,
  setTimeout: (fn, ms) => realTimers.setTimeout(fn, ms),
  clearTimeout: (handle) => realTimers.clearTimeout(handle),
  monotonic: () => performance.now(),
  keepAlive: holdProcessOpen,
};

/** A referenced timer that never fires in practice: what a pending `setTimeout` does to the event loop. */
function holdProcessOpen(): () => void {
  const handle = setInterval(() => {}, 2 ** 31 - 1);
  return () => clearInterval(handle);
}

/**
 * The real clock with Node's own timers (`unref`ed): for timers whose precision does not matter —
 * storage flushes, watch polling, the mock provider's latency. A precise timer spins for its last
 * 2 ms; a storage writer flushing on every key state change would keep that loop running (and a
 * zero-delay one referenced) under load, for nothing.
 */
export const coarseSystemClock: Clock = {
  now: epochNow,
  setTimeout(fn, ms) {
    const handle = setTimeout(fn, Math.max(0, ms));
    handle.unref?.();
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
  monotonic: () => performance.now(),
  keepAlive: holdProcessOpen,
};

/** The clock for imprecise timers: {@link coarseSystemClock} in place of {@link systemClock}, any other clock as it is. */
export function coarse(clock: Clock): Clock {
  return clock === systemClock ? coarseSystemClock : clock;
}

/** Why a clock reading is unusable (it threw, or is not a finite number), or `undefined` when it is fine. */
export function clockReadingFault(read: () => unknown): string | undefined {
  let value: unknown;
  try {
    value = read();
  } catch {
    return 'threw';
  }
  if (typeof value === 'number' && Number.isFinite(value)) return undefined;
  return `returned ${typeof value === 'number' ? String(value) : `a ${typeof value}`}, not a finite number of ms`;
}

/**
 * A pool's own view of time, built on the clock it was given (see "Time and clock steps" in the
 * README):
 *
 * - `now()` is the pool's time: epoch ms as the clock's `now()` read when the pool started,
 *   advanced by the clock's `monotonic()` when it has one, so it never steps; without
 *   `monotonic()` it is the clock's `now()`.
 * - `wallNow()` is the clock's `now()`; `toWall(t)` / `fromWall(t)` move an instant between the
 *   two scales, for what is persisted or shared with other processes (the wall clock's scale).
 *
 * A reading that throws or is not a finite number is replaced by the last good one (time stands
 * still, no deadline passes) and reported through `onFault`, once per run of bad readings.
 */
export interface PoolTime extends Clock {
  wallNow(): number;
  toWall(at: number): number;
  fromWall(at: number): number;
}

export function createPoolTime(clock: Clock, onFault: (message: string, cause: unknown) => void): PoolTime {
  const guarded = (name: string, read: () => number, first: number): (() => number) => {
    let last = first;
    let faulty = false;
    return () => {
      let value: unknown;
      try {
        value = read();
      } catch (cause) {
        if (!faulty) onFault(`clock.${name}() threw`, cause);
        faulty = true;
        return last;
      }
      if (typeof value === 'number' && Number.isFinite(value)) {
        faulty = false;
        last = value;
        return value;
      }
      if (!faulty) onFault(`clock.${name}() ${clockReadingFault(() => value)}`, undefined);
      faulty = true;
      return last;
    };
  };
  const wallNow = guarded('now', () => clock.now(), 0);
  const start = wallNow();
  const monotonic = clock.monotonic;
  if (typeof monotonic !== 'function') {
    return {
      now: wallNow,
      wallNow,
      toWall: (at) => at,
      fromWall: (at) => at,
      setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
      clearTimeout: (handle) => clock.clearTimeout(handle),
      ...keepAliveOf(clock),
    };
  }
  const elapsed = guarded('monotonic', () => monotonic.call(clock), 0);
  const base = start - elapsed();
  const now = (): number => base + elapsed();
  return {
    now,
    wallNow,
    toWall: (at) => at + (wallNow() - now()),
    fromWall: (at) => at - (wallNow() - now()),
    setTimeout: (fn, ms) => clock.setTimeout(fn, ms),
    clearTimeout: (handle) => clock.clearTimeout(handle),
    ...keepAliveOf(clock),
  };
}

function keepAliveOf(clock: Clock): Pick<Clock, 'keepAlive'> {
  const keepAlive = clock.keepAlive;
  return typeof keepAlive === 'function' ? { keepAlive: () => keepAlive.call(clock) } : {};
}
