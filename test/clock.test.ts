import { afterEach, describe, expect, it, vi } from 'vitest';
import { coarse, coarseSystemClock, createEpochNow, systemClock } from '../src/clock.js';
import { VirtualClock } from '../src/index.js';

describe('coarse clocks for imprecise timers', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('swaps the system clock for the Node-timer one and leaves any other clock alone', () => {
    const virtual = new VirtualClock();
    expect(coarse(systemClock)).toBe(coarseSystemClock);
    expect(coarse(virtual)).toBe(virtual);
    expect(coarse(coarseSystemClock)).toBe(coarseSystemClock);
  });

  it('fires once after the delay, never keeps the process alive, and can be cancelled', () => {
    vi.useFakeTimers();
    const fired: string[] = [];
    const handle = coarseSystemClock.setTimeout(() => fired.push('a'), 10) as NodeJS.Timeout;
    const cancelled = coarseSystemClock.setTimeout(() => fired.push('b'), 10);
    expect(handle.hasRef()).toBe(false);
    coarseSystemClock.clearTimeout(cancelled);
    vi.advanceTimersByTime(9);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['a']);
    // A negative delay counts as zero.
    coarseSystemClock.setTimeout(() => fired.push('c'), -5);
    vi.advanceTimersByTime(0);
    expect(fired).toEqual(['a', 'c']);
  });
});

describe('the epoch clock with a fraction', () => {
  /** Fake clocks: `real` is the true epoch time; the wall clock shows it floored, plus `step`. */
  function fakeSources(start: number) {
    const state = { real: start, step: 0, monotonicLag: 0 };
    const sources = {
      wall: () => Math.floor(state.real + state.step),
      monotonic: () => state.real - start - state.monotonicLag,
      origin: start,
    };
    return { state, sources };
  }

  it('keeps the fraction, so differences are exact', () => {
    const { state, sources } = fakeSources(1_700_000_000_000.25);
    const now = createEpochNow(sources, 50);
    const first = now();
    expect(first).toBe(1_700_000_000_000.25);
    state.real += 199.6;
    // Doubles near 1.7e12 carry about 0.25 µs: exact to the microsecond.
    expect(now() - first).toBeCloseTo(199.6, 3);
    expect(Number.isInteger(now())).toBe(false);
  });

  it('stays within a millisecond of the true time while the monotonic clock drifts from it', () => {
    const { state, sources } = fakeSources(1_700_000_000_000.9);
    // A monotonic clock running 0.1 % fast: 7.3 ms off after 7.3 s unless the checks correct it.
    const fast = { ...sources, monotonic: () => sources.monotonic() * 1.001 };
    const now = createEpochNow(fast, 50);
    for (let i = 0; i < 1_000; i++) {
      state.real += 7.3;
      // Each check moves it into the wall clock's millisecond, so it is within 1 ms of the true
      // time then; between two checks (about 50 ms apart) it drifts by about 0.05 ms more.
      expect(Math.abs(now() - state.real)).toBeLessThan(1.06);
    }
  });

  it('follows a wall clock stepped forward (a machine that slept) within one check', () => {
    const { state, sources } = fakeSources(1_700_000_000_000);
    const now = createEpochNow(sources, 50);
    now();
    // Asleep for an hour: the wall clock moved on, the monotonic clock did not.
    state.real += 3_600_000;
    state.monotonicLag = 3_600_000;
    state.real += 50;
    const reading = now();
    expect(reading).toBeGreaterThanOrEqual(sources.wall());
    expect(reading).toBeLessThan(sources.wall() + 1);
  });

  it('follows a wall clock stepped back by moving no further than into its millisecond', () => {
    const { state, sources } = fakeSources(1_700_000_000_000.5);
    const now = createEpochNow(sources, 50);
    now();
    state.step = -10_000;
    state.real += 60;
    const reading = now();
    expect(reading).toBeGreaterThanOrEqual(sources.wall());
    expect(reading).toBeLessThan(sources.wall() + 1);
  });

  it('is the system clock’s now: epoch milliseconds within about a millisecond of the wall clock', () => {
    const before = Date.now();
    const reading = systemClock.now();
    const after = Date.now();
    // Date.now() is the true time floored; the clock is within a millisecond of the true time.
    expect(reading).toBeGreaterThan(before - 1);
    expect(reading).toBeLessThan(after + 2);
    expect(coarseSystemClock.now).toBe(systemClock.now);
  });
});
