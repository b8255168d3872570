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

/**
 * The real clock: `Date.now()` and Node's timers. Timers are `unref`ed so that a pool left open
 * never keeps a short script alive.
 */
export const systemClock: Clock = {
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
