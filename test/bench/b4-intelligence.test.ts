/**
 * BENCH.md B4b (429s), B4c and B4e on the virtual clock (B4b's goodput is asserted with the other
 * goodput figures in b4-goodput.test.ts): the figures that depend on the pool reading the
 * provider (success headers), honouring configured budgets (`rpm`), and telling a dead key from a
 * provider-wide outage. Deterministic (seeded, simulated time), so the targets are asserted.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { B4_TARGETS, type B4Figures, runB4 } from '../../bench/scenarios/b4-limits.js';
import * as keymesh from '../../src/index.js';

describe('B4b: successes carry x-ratelimit-remaining-requests / x-ratelimit-reset-requests', () => {
  it(`provokes at most ${B4_TARGETS.B4b.max429Per1000} 429s per 1 000 successes`, async () => {
    const run = await runB4('B4b', 'keymesh', keymesh);
    expect(run.rateLimitedPer1000).toBeLessThanOrEqual(B4_TARGETS.B4b.max429Per1000);
  });
});

describe('B4c: the limits are configured in the pool as rpm budgets', () => {
  const target = B4_TARGETS.B4c;
  let run: B4Figures;
  beforeAll(async () => {
    run = await runB4('B4c', 'keymesh', keymesh);
  });

  it(`serves at least ${target.minGoodputRatio} of the provider's capacity`, () => {
    expect(run.goodputRatio).toBeGreaterThanOrEqual(target.minGoodputRatio);
  });

  it('never provokes a 429', () => {
    expect(run.rateLimited).toBe(0);
  });
});

describe('B4e: a revoked key, a flaky key and a provider-wide outage', () => {
  const target = B4_TARGETS.B4e;
  let run: B4Figures;
  beforeAll(async () => {
    run = await runB4('B4e', 'keymesh', keymesh);
  });

  it(`gives the revoked key at most ${target.maxCallsAfterFirst401} call after its first 401`, () => {
    expect(run.callsAfterFirst401).toBeLessThanOrEqual(target.maxCallsAfterFirst401);
  });

  it('exhausts no key because of the outage', () => {
    expect(run.keysExhaustedByOutage).toBe(target.maxKeysExhaustedByOutage);
  });

  it(`is back to ${target.recoveredGoodput} of the surviving capacity within ${target.maxRecoveryMs} ms of the outage's end`, () => {
    expect(run.recoveryMs).toBeLessThanOrEqual(target.maxRecoveryMs);
  });
});
