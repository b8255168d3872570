/**
 * BENCH.md B4a, B4b, B4d and B4f on the virtual clock: goodput under provider limits that the pool
 * has to discover — from 429s alone, from the rate-limit headers of successes, with heavy-tailed
 * latency. Deterministic (seeded, simulated time), so the targets are asserted. The same scenarios
 * run in `npm run bench` against the production build.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { B4_TARGETS, type B4Figures, runB4 } from '../../bench/scenarios/b4-limits.js';
import * as keymesh from '../../src/index.js';

describe('B4a: 5 keys × 10 req/s, 100 workers, limits unknown, 429 with retry-after', () => {
  const target = B4_TARGETS.B4a;
  let run: B4Figures;
  beforeAll(async () => {
    run = await runB4('B4a', 'keymesh', keymesh);
  });

  it(`serves at least ${target.minGoodputRatio} of the provider's capacity`, () => {
    expect(run.goodputRatio).toBeGreaterThanOrEqual(target.minGoodputRatio);
  });

  it(`provokes at most ${target.max429Per1000} 429s per 1 000 successes`, () => {
    expect(run.rateLimitedPer1000).toBeLessThanOrEqual(target.max429Per1000);
  });

  it(`starves no worker: the longest acquire wait is at most ${target.maxWaitOverP50} × the median`, () => {
    expect(run.maxWaitOverP50).toBeLessThanOrEqual(target.maxWaitOverP50);
  });
  it('spreads the successes evenly over equal keys', () => {
    for (const share of run.shares) expect(share).toBeCloseTo(0.2, 1);
  });

  it('repeats bit for bit', async () => {
    const again = await runB4('B4a', 'keymesh', keymesh);
    expect(again.report).toEqual(run.report);
  });
});

describe('B4b: successes carry x-ratelimit-remaining-requests / x-ratelimit-reset-requests', () => {
  it(`serves at least ${B4_TARGETS.B4b.minGoodputRatio} of the provider's capacity`, async () => {
    const run = await runB4('B4b', 'keymesh', keymesh);
    expect(run.goodputRatio).toBeGreaterThanOrEqual(B4_TARGETS.B4b.minGoodputRatio);
  });
});

describe('B4d: keys at 1:2:5:10:20 req/s, log-normal latency, 200 workers', () => {
  const target = B4_TARGETS.B4d;
  let run: B4Figures;
  beforeAll(async () => {
    run = await runB4('B4d', 'keymesh', keymesh);
  });

  it(`serves at least ${target.minGoodputRatio} of the provider's capacity`, () => {
    expect(run.goodputRatio).toBeGreaterThanOrEqual(target.minGoodputRatio);
  });

  it('gives each key the share its limit allows', () => {
    const rps = [1, 2, 5, 10, 20];
    const total = rps.reduce((a, b) => a + b, 0);
    for (const [i, share] of run.shares.entries()) expect(share).toBeCloseTo((rps[i] ?? 0) / total, 1);
  });
});

describe('B4f: 429s without any hint', () => {
  it(`serves at least ${B4_TARGETS.B4f.minGoodputRatio} of the provider's capacity (escalating cooldowns, not a fixed 60 s)`, async () => {
    const run = await runB4('B4f', 'keymesh', keymesh);
    expect(run.goodputRatio).toBeGreaterThanOrEqual(B4_TARGETS.B4f.minGoodputRatio);
  });
});
