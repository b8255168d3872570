import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { KeyPool, VirtualClock } from '../../src/index.js';
import { fakeKeys, pools } from '../helpers.js';

const make = pools();

/** Key 0 has every budget, key 1 none. */
async function budgetPool() {
  const keys = fakeKeys(2, 'sk-test-budget-levels');
  const clock = new VirtualClock(1_700_000_000_000);
  const pool = make.track(
    await KeyPool.create({
      keys: [
        { key: keys[0] as string, label: 'metered', rpm: 60, tpm: 6_000, rpd: 1_000 },
        keys[1] as string,
      ],
      clock,
      seed: 5,
      strategy: 'round-robin',
    }),
  );
  return { pool, clock };
}

describe('budget levels', () => {
  it('shows a fresh key’s budgets as full and a key without budgets as null', async () => {
    const { pool, clock } = await budgetPool();
    const [metered, plain] = pool.snapshot().keys;
    expect(metered?.budget).toEqual({
      rpm: { limit: 60, remaining: 60 },
      tpm: { limit: 6_000, remaining: 6_000 },
      rpd: { limit: 1_000, remaining: 1_000 },
      readyAt: expect.any(Number),
    });
    expect(metered?.budget?.readyAt).toBeLessThanOrEqual(clock.now());
    expect(plain?.budget).toBeNull();
  });

  it('drains with a grant, refills as time passes, and follows the reconciled usage', async () => {
    const { pool, clock } = await budgetPool();
    const lease = await pool.acquire({ tokens: 1_200 });
    expect(pool.snapshot().keys[0]?.budget).toMatchObject({
      rpm: { remaining: 59 },
      tpm: { remaining: 4_800 },
      rpd: { remaining: 999 },
      readyAt: clock.now() + 12_000,
    });
    clock.advance(6_000);
    lease.release({ usage: { totalTokens: 1_800 } });
    expect(pool.snapshot().keys[0]?.budget).toMatchObject({
      rpm: { remaining: 60 },
      tpm: { remaining: 6_000 - 1_800 + 600 },
    });
  });

  it('exports the levels to Prometheus, per key and budget', async () => {
    const { pool } = await budgetPool();
    (await pool.acquire({ tokens: 600 })).release({ usage: { totalTokens: 600 } });
    const families = parsePrometheusTextFormat(pool.metrics.toPrometheus());
    const samples = (name: string) =>
      families
        .find((f) => f.name === name)
        ?.metrics.map((m) => [m.labels?.label ?? m.labels?.key, m.labels?.budget, Number(m.value)]);
    expect(samples('keymesh_key_budget_limit')).toEqual([
      ['metered', 'rpm', 60],
      ['metered', 'tpm', 6_000],
      ['metered', 'rpd', 1_000],
    ]);
    expect(samples('keymesh_key_budget_remaining')).toEqual([
      ['metered', 'rpm', 59],
      ['metered', 'tpm', 5_400],
      ['metered', 'rpd', 999],
    ]);
    expect(samples('keymesh_key_budget_ready_in_seconds')).toEqual([['metered', undefined, 6]]);
  });
});
