/**
 * A real-time timer that fires within a fraction of a millisecond after its deadline.
 *
 * Node's `setTimeout` fires on libuv's cached, whole-millisecond loop time: usually ≥ 1 ms late,
 * several ms on a loaded machine, and occasionally up to 1 ms *early* against `performance.now()`.
 * A precise timer arms Node's timer {@link PreciseTimerOptions.leadMs} before the deadline (the
 * coarse phase), then finishes on a `setImmediate` loop that reads the monotonic clock until the
 * deadline has passed (the final phase). All timers in their final phase share one loop, so
 * the CPU cost is one loop while any timer is due within `leadMs`, whatever the number of timers.
 */

import { type HeapSlot, IndexedHeap } from './indexed-heap.js';

/** The time sources a precise timer runs on: Node's by default, fakes in tests. */
export interface PreciseTimerSources {
  /** Monotonic time in (fractional) milliseconds. Default `performance.now()`. */
  now(): number;
  /** Schedules the coarse phase. Default Node's `setTimeout`; its handle is `unref`ed when it can be. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a handle returned by {@link PreciseTimerSources.setTimeout}. */
  clearTimeout(handle: unknown): void;
  /**
   * Schedules one turn of the final-phase loop. Default Node's `setImmediate` (or `setTimeout(fn, 0)`
   * where there is none). Its handle stays referenced: a loop with nothing to wait for would block
   * in the poll phase and the final phase would be as late as a plain timer.
   */
  setImmediate(fn: () => void): unknown;
  /** Cancels a handle returned by {@link PreciseTimerSources.setImmediate}. */
  clearImmediate(handle: unknown): void;
}

/** Options of {@link createPreciseTimer}; every source defaults to Node's. */
export interface PreciseTimerOptions extends Partial<PreciseTimerSources> {
  /**
   * How long before its deadline a timer leaves the coarse `setTimeout` for the final
   * `setImmediate` loop, in ms. Default `2`; `0` gives plain timers (a due timer still fires on the
   * next loop turn); must be finite and ≥ 0. A larger value absorbs later coarse timers at the cost
   * of spinning longer: the loop keeps one core busy, and the process alive, for at most `leadMs`
   * per deadline.
   */
  leadMs?: number;
}

/** A timer that fires after its deadline, as soon as the event loop allows; see {@link createPreciseTimer}. */
export interface PreciseTimer {
  /**
   * Calls `fn` once, never before `ms` milliseconds (on the monotonic clock) and never synchronously.
   * A negative, `NaN` or infinite `ms` counts as `0`. Returns a handle for
   * {@link PreciseTimer.clearTimeout}.
   */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a pending timer in either phase; fired, cancelled and foreign handles are ignored. */
  clearTimeout(handle: unknown): void;
  /** Timers neither fired nor cancelled (both phases). */
  readonly pending: number;
  /** Timers in the final phase, i.e. due within `leadMs` (diagnostics and tests). */
  readonly spinning: number;
}

/** Default {@link PreciseTimerOptions.leadMs}. */
export const DEFAULT_LEAD_MS = 2;

// Node clamps longer delays to 1 ms (with a warning); longer timers re-arm in steps of this.
const MAX_COARSE_MS = 2 ** 31 - 1;

// An entry's phase: waiting on its coarse timer, in the shared final loop, or fired/cancelled.
const Phase = { Coarse: 0, Final: 1, Done: 2 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

interface Entry extends HeapSlot {
  readonly owner: object;
  readonly deadline: number;
  readonly seq: number;
  readonly fn: () => void;
  phase: Phase;
  coarse: unknown;
}

const before = (a: Entry, b: Entry) =>
  a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);

function unref(handle: unknown): void {
  if (
    typeof handle === 'object' &&
    handle !== null &&
    'unref' in handle &&
    typeof handle.unref === 'function'
  ) {
    handle.unref();
  }
}

function nodeSources(): PreciseTimerSources {
  const immediate =
    typeof globalThis.setImmediate === 'function'
      ? {
          setImmediate: (fn: () => void): unknown => globalThis.setImmediate(fn),
          clearImmediate: (handle: unknown) => globalThis.clearImmediate(handle as NodeJS.Immediate),
        }
      : {
          setImmediate: (fn: () => void): unknown => globalThis.setTimeout(fn, 0),
          clearImmediate: (handle: unknown) => globalThis.clearTimeout(handle as NodeJS.Timeout),
        };
  return {
    now: () => performance.now(),
    setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
    clearTimeout: (handle) => globalThis.clearTimeout(handle as NodeJS.Timeout),
    ...immediate,
  };
}

/**
 * Builds a {@link PreciseTimer}. A timer due in more than `leadMs` waits on an `unref`ed coarse
 * `setTimeout` armed `leadMs` early (re-armed if it fires early, and in steps for delays beyond
 * Node's 2^31 − 1 ms limit), so pending timers never keep the process alive. Within `leadMs` of
 * its deadline it joins a min-heap served by one shared `setImmediate` loop, which fires every
 * due timer in deadline order (FIFO on ties) and stops as soon as the heap is empty, cancelled
 * timers included. Timers armed by a callback fire on a later turn, never in the same batch.
 */
export function createPreciseTimer(options: PreciseTimerOptions = {}): PreciseTimer {
  const leadMs = options.leadMs ?? DEFAULT_LEAD_MS;
  if (!(leadMs >= 0) || !Number.isFinite(leadMs)) {
    throw new RangeError(`createPreciseTimer: leadMs must be a finite number ≥ 0, got ${leadMs}`);
  }
  const defaults = nodeSources();
  const now = options.now ?? defaults.now;
  const coarseSet = options.setTimeout ?? defaults.setTimeout;
  const coarseClear = options.clearTimeout ?? defaults.clearTimeout;
  const spinSet = options.setImmediate ?? defaults.setImmediate;
  const spinClear = options.clearImmediate ?? defaults.clearImmediate;

  const owner = {};
  let nextSeq = 0;
  let pending = 0;
  // Final-phase entries on (deadline, seq); a cancelled one leaves at once.
  const heap = new IndexedHeap<Entry>(before);
  let spin: unknown = null;
  let spinArmed = false;

  // Fires the due final-phase timers, in deadline order, armed before this call.
  const flush = () => {
    const at = now();
    const armedBefore = nextSeq;
    for (let top = heap.peek(); top; top = heap.peek()) {
      if (top.deadline > at || top.seq >= armedBefore) return;
      heap.delete(top);
      top.phase = Phase.Done;
      pending--;
      top.fn();
    }
  };

  const turn = () => {
    spinArmed = false;
    spin = null;
    try {
      flush();
    } finally {
      keepSpinning();
    }
  };

  // Runs the loop while a timer is in its final phase; stops it when none is.
  const keepSpinning = () => {
    if (heap.size === 0) {
      if (spinArmed) {
        spinClear(spin);
        spinArmed = false;
        spin = null;
      }
    } else if (!spinArmed) {
      spinArmed = true;
      spin = spinSet(turn);
    }
  };

  const enterFinal = (entry: Entry) => {
    entry.phase = Phase.Final;
    entry.coarse = null;
    heap.add(entry);
  };

  const armCoarse = (entry: Entry, remaining: number) => {
    const handle = coarseSet(() => onCoarse(entry), Math.min(remaining - leadMs, MAX_COARSE_MS));
    unref(handle);
    entry.coarse = handle;
  };

  const onCoarse = (entry: Entry) => {
    if (entry.phase !== Phase.Coarse) return;
    const remaining = entry.deadline - now();
    if (remaining > leadMs) {
      armCoarse(entry, remaining);
      return;
    }
    enterFinal(entry);
    // Already due (a late coarse timer): fire now rather than one loop turn later.
    try {
      if (remaining <= 0) flush();
    } finally {
      keepSpinning();
    }
  };

  return {
    setTimeout(fn, ms) {
      const delay = Number.isFinite(ms) ? Math.max(0, ms) : 0;
      const entry: Entry = {
        owner,
        deadline: now() + delay,
        seq: nextSeq++,
        fn,
        phase: Phase.Coarse,
        coarse: null,
        heapPos: -1,
      };
      pending++;
      if (delay > leadMs) {
        armCoarse(entry, delay);
      } else {
        enterFinal(entry);
        keepSpinning();
      }
      return entry;
    },
    clearTimeout(handle) {
      if (typeof handle !== 'object' || handle === null || !('owner' in handle) || handle.owner !== owner)
        return;
      const entry = handle as Entry;
      if (entry.phase === Phase.Done) return;
      if (entry.phase === Phase.Coarse) {
        coarseClear(entry.coarse);
        entry.coarse = null;
      } else {
        heap.delete(entry);
        entry.phase = Phase.Done;
        keepSpinning();
      }
      entry.phase = Phase.Done;
      pending--;
    },
    get pending() {
      return pending;
    },
    get spinning() {
      return heap.size;
    },
  };
}
