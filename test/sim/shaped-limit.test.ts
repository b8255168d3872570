import { describe, expect, it } from 'vitest';
import {
  createRandom,
  createShapedLimit,
  type ResetMeaning,
  type ShapedLimitSpec,
  type WindowShape,
} from '../../src/sim/index.js';

/** Offers calls at seeded random instants (bursts, short gaps, a few long jumps); returns the admitted instants. */
function offer(spec: ShapedLimitSpec, seed: number, count: number): number[] {
  const limit = createShapedLimit(spec);
  const rng = createRandom(seed);
  const admitted: number[] = [];
  let now = 0;
  for (let i = 0; i < count; i++) {
    const shape = rng.next();
    now +=
      shape < 0.4
        ? 0
        : shape < 0.97
          ? rng.next() * (spec.windowMs / spec.limit) * 2
          : rng.next() * spec.windowMs;
    if (limit.admitAt(now, 1) <= now) {
      limit.record(now, 1);
      admitted.push(now);
    }
  }
  return admitted;
}

/** Admitted instants in `[from, to]`. */
const between = (admitted: readonly number[], from: number, to: number) =>
  admitted.filter((t) => t >= from && t <= to).length;

const SEEDS = [1, 2, 3, 4, 5, 6];

describe('shaped limits never admit more than their shape allows', () => {
  it.each(SEEDS)('sliding log: at most `limit` in any window (seed %i)', (seed) => {
    const admitted = offer({ shape: 'sliding-log', limit: 7, windowMs: 1_000 }, seed, 3_000);
    expect(admitted.length).toBeGreaterThan(100);
    let most = 0;
    for (const t of admitted) most = Math.max(most, between(admitted, t - 1_000 + 1e-9, t));
    expect(most).toBe(7);
  });

  it.each(SEEDS)('fixed window: at most `limit` per window from the origin (seed %i)', (seed) => {
    const admitted = offer({ shape: 'fixed-window', limit: 5, windowMs: 1_000, origin: 300 }, seed, 3_000);
    const perWindow = new Map<number, number>();
    for (const t of admitted) {
      const window = Math.floor((t - 300) / 1_000);
      perWindow.set(window, (perWindow.get(window) ?? 0) + 1);
    }
    expect(Math.max(...perWindow.values())).toBe(5);
  });

  it.each([
    ['token-bucket', 12],
    ['gcra', 2],
  ] as const)('%s: at most its bucket (%i) plus the refill over any span', (shape, size) => {
    for (const seed of SEEDS) {
      // 12 per 1 000 ms; GCRA lets 2 go back to back.
      const admitted = offer({ shape, limit: 12, windowMs: 1_000, burst: 2 }, seed, 3_000);
      let excess = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < admitted.length; i++) {
        for (let j = i; j < Math.min(admitted.length, i + 40); j++) {
          const span = (admitted[j] ?? 0) - (admitted[i] ?? 0);
          excess = Math.max(excess, j - i + 1 - (size + (span * 12) / 1_000));
        }
      }
      expect(excess).toBeLessThanOrEqual(1e-9);
      expect(excess).toBeGreaterThan(-1);
    }
  });
});

describe('a rejected call is admitted at the instant admitAt names, not before', () => {
  it.each(['fixed-window', 'sliding-log', 'token-bucket', 'gcra'] as const)('%s', (shape: WindowShape) => {
    const limit = createShapedLimit({ shape, limit: 3, windowMs: 1_000 });
    let now = 0;
    while (limit.admitAt(now, 1) <= now) {
      limit.record(now, 1);
      now += 90;
    }
    const at = limit.admitAt(now, 1);
    expect(at).toBeGreaterThan(now);
    expect(limit.admitAt(at - 0.5, 1)).toBeGreaterThan(at - 0.5);
    expect(limit.admitAt(at, 1)).toBeLessThanOrEqual(at);
  });
});

function viewAfter(spec: ShapedLimitSpec, calls: readonly number[], at: number) {
  const limit = createShapedLimit(spec);
  for (const t of calls) {
    expect(limit.admitAt(t, 1)).toBeLessThanOrEqual(t);
    limit.record(t, 1);
  }
  return limit.view(at);
}

describe('what the reset points at', () => {
  const sliding = (reset: ResetMeaning) =>
    ({ shape: 'sliding-log', limit: 3, windowMs: 1_000, reset }) as const;

  it('sliding log: the next slot when the oldest call leaves; full and window-end when the newest does', () => {
    expect(viewAfter(sliding('next-slot'), [0, 100, 200], 200)).toEqual({
      limit: 3,
      remaining: 0,
      resetAt: 1_000,
    });
    expect(viewAfter(sliding('full'), [0, 100, 200], 200)).toEqual({
      limit: 3,
      remaining: 0,
      resetAt: 1_200,
    });
    expect(viewAfter(sliding('window-end'), [0, 100, 200], 200)).toEqual({
      limit: 3,
      remaining: 0,
      resetAt: 1_200,
    });
    expect(viewAfter(sliding('next-slot'), [0, 100, 200], 1_050)).toEqual({
      limit: 3,
      remaining: 1,
      resetAt: 1_100,
    });
    expect(viewAfter(sliding('full'), [], 50)).toEqual({ limit: 3, remaining: 3, resetAt: 50 });
  });

  it('fixed window: its end, whatever the meaning; with nothing counted only window-end still points there', () => {
    const fixed = (reset: ResetMeaning) =>
      ({ shape: 'fixed-window', limit: 3, windowMs: 1_000, reset }) as const;
    for (const reset of ['next-slot', 'full', 'window-end'] as const) {
      expect(viewAfter(fixed(reset), [100, 200], 200)).toEqual({ limit: 3, remaining: 1, resetAt: 1_000 });
    }
    expect(viewAfter(fixed('window-end'), [100, 200], 1_500)).toEqual({
      limit: 3,
      remaining: 3,
      resetAt: 2_000,
    });
    expect(viewAfter(fixed('next-slot'), [100, 200], 1_500)).toEqual({
      limit: 3,
      remaining: 3,
      resetAt: 1_500,
    });
  });

  it('token bucket: the next whole token, or when it is full', () => {
    // 4 per 1 000 ms: a token every 250 ms.
    const bucket = (reset: ResetMeaning) =>
      ({ shape: 'token-bucket', limit: 4, windowMs: 1_000, reset }) as const;
    expect(viewAfter(bucket('next-slot'), [0, 0, 0, 0], 100)).toEqual({
      limit: 4,
      remaining: 0,
      resetAt: 250,
    });
    expect(viewAfter(bucket('full'), [0, 0, 0, 0], 100)).toEqual({ limit: 4, remaining: 0, resetAt: 1_000 });
    expect(viewAfter(bucket('window-end'), [0, 0, 0, 0], 100)).toEqual({
      limit: 4,
      remaining: 0,
      resetAt: 1_000,
    });
    expect(viewAfter(bucket('next-slot'), [0, 0, 0, 0], 600)).toEqual({
      limit: 4,
      remaining: 2,
      resetAt: 750,
    });
  });

  it('GCRA: a burst of `burst`, then one call per emission interval', () => {
    const gcra = { shape: 'gcra', limit: 10, windowMs: 1_000, burst: 2 } as const;
    const limit = createShapedLimit(gcra);
    limit.record(0, 1);
    limit.record(0, 1);
    expect(limit.admitAt(0, 1)).toBe(100);
    expect(limit.view(0)).toEqual({ limit: 10, remaining: 0, resetAt: 100 });
    expect(createShapedLimit({ ...gcra, reset: 'full' }).view(0)).toEqual({
      limit: 10,
      remaining: 2,
      resetAt: 0,
    });
    expect(viewAfter({ ...gcra, reset: 'full' }, [0, 0], 0)).toEqual({
      limit: 10,
      remaining: 0,
      resetAt: 200,
    });
  });
});

describe('banked: what a bucket holds beyond the long-run rate', () => {
  it('is a full bucket at first, nothing after a burst, and nothing for windows', () => {
    const bucket = createShapedLimit({ shape: 'token-bucket', limit: 4, windowMs: 1_000 });
    expect(bucket.banked(0)).toBe(4);
    for (let i = 0; i < 4; i++) bucket.record(0, 1);
    expect(bucket.banked(0)).toBe(0);
    expect(bucket.banked(500)).toBe(2);
    const window = createShapedLimit({ shape: 'sliding-log', limit: 4, windowMs: 1_000 });
    expect(window.banked(0)).toBe(0);
  });
});

describe('createShapedLimit', () => {
  it('refuses a limit, window or burst that is not a positive finite number', () => {
    expect(() => createShapedLimit({ shape: 'sliding-log', limit: 0, windowMs: 1_000 })).toThrow(/limit/);
    expect(() => createShapedLimit({ shape: 'fixed-window', limit: 2, windowMs: Infinity })).toThrow(
      /windowMs/,
    );
    expect(() => createShapedLimit({ shape: 'gcra', limit: 2, windowMs: 1_000, burst: 0.5 })).toThrow(
      /burst/,
    );
  });
});
