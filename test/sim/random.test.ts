import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from '../../src/errors.js';
import { createRandom, fixedLatency, logNormalLatency } from '../../src/sim/index.js';

function draw(sample: () => number, count: number): number[] {
  return Array.from({ length: count }, sample);
}

describe('createRandom', () => {
  it('repeats the same sequence for the same seed', () => {
    const a = createRandom(42);
    const b = createRandom(42);
    expect(draw(() => a.next(), 1000)).toEqual(draw(() => b.next(), 1000));
  });

  it('gives different sequences for different seeds', () => {
    const a = createRandom(1);
    const b = createRandom(2);
    expect(draw(() => a.next(), 10)).not.toEqual(draw(() => b.next(), 10));
  });

  it('draws in [0, 1) with a mean near 1/2', () => {
    const rng = createRandom(7);
    const values = draw(() => rng.next(), 20_000);
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(1);
    const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
    expect(mean).toBeGreaterThan(0.49);
    expect(mean).toBeLessThan(0.51);
  });

  it('rejects a non-finite seed', () => {
    expect(() => createRandom(Number.NaN)).toThrow(InvalidConfigError);
  });
});

describe('latency samplers', () => {
  it('fixedLatency always answers the same duration', () => {
    const sample = fixedLatency(50);
    expect(draw(sample, 5)).toEqual([50, 50, 50, 50, 50]);
    expect(() => fixedLatency(-1)).toThrow(InvalidConfigError);
  });

  it('logNormalLatency matches the median and p99 it was given', () => {
    const sample = logNormalLatency({ medianMs: 400, p99Ms: 4000 }, createRandom(3));
    const sorted = draw(sample, 20_000).sort((a, b) => a - b);
    const median = sorted[10_000] ?? 0;
    const p99 = sorted[19_800] ?? 0;
    expect(median).toBeGreaterThan(400 * 0.95);
    expect(median).toBeLessThan(400 * 1.05);
    expect(p99).toBeGreaterThan(4000 * 0.85);
    expect(p99).toBeLessThan(4000 * 1.15);
    expect(sorted[0]).toBeGreaterThan(0);
  });

  it('logNormalLatency is repeatable for a seed', () => {
    const a = logNormalLatency({ medianMs: 100, p99Ms: 900 }, createRandom(9));
    const b = logNormalLatency({ medianMs: 100, p99Ms: 900 }, createRandom(9));
    expect(draw(a, 100)).toEqual(draw(b, 100));
  });

  it('logNormalLatency with p99 equal to the median has no spread', () => {
    const sample = logNormalLatency({ medianMs: 250, p99Ms: 250 }, createRandom(1));
    expect(new Set(draw(sample, 20))).toEqual(new Set([250]));
  });

  it('logNormalLatency rejects a p99 below the median', () => {
    expect(() => logNormalLatency({ medianMs: 100, p99Ms: 50 }, createRandom(1))).toThrow(InvalidConfigError);
  });
});
