import { createPreciseTimer } from './precise-timer.js';

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
}

const realTimers = createPreciseTimer();

/**
 * The real clock. `now()` is `Date.now()` (whole epoch ms, the scale of stored deadlines).
 * Timers are precise: measured on the monotonic clock (`performance.now()`), never early, and
 * usually within 0.1 ms after their delay, where Node's own `setTimeout` is often 1–3 ms late: Node's
 * timer is armed 2 ms early and a shared `setImmediate` loop finishes the wait (see
 * `createPreciseTimer` in `src/precise-timer.ts`). Pending timers are `unref`ed, so a pool left
 * open never keeps a short script alive; only a timer in its last 2 ms holds the process open,
 * until it fires.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => realTimers.setTimeout(fn, ms),
  clearTimeout: (handle) => realTimers.clearTimeout(handle),
};

/**
 * The real clock with Node's own timers (`unref`ed): for timers whose precision does not matter —
 * storage flushes, watch polling, the mock provider's latency. A precise timer spins for its last
 * 2 ms; a storage writer flushing on every key state change would keep that loop running (and a
 * zero-delay one referenced) under load, for nothing.
 */
export const coarseSystemClock: Clock = {
  now: () => Date.now(),
  setTimeout(fn, ms) {
    const handle = setTimeout(fn, Math.max(0, ms));
    handle.unref?.();
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/** The clock for imprecise timers: {@link coarseSystemClock} in place of {@link systemClock}, any other clock as it is. */
export function coarse(clock: Clock): Clock {
  return clock === systemClock ? coarseSystemClock : clock;
}
