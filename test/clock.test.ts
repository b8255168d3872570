import { afterEach, describe, expect, it, vi } from 'vitest';
import { coarse, coarseSystemClock, systemClock } from '../src/clock.js';
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
