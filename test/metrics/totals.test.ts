import { APIConnectionTimeoutError } from 'openai';
import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import type { FailOptions, KeyPool, Lease } from '../../src/index.js';
import { pools } from '../helpers.js';

const make = pools();

const FAIL_KINDS: ReadonlyArray<FailOptions | undefined> = [
  undefined,
  { kind: 'failure' },
  { kind: 'provider' },
  { kind: 'quota' },
  { kind: 'quota', retryAfterMs: 5_000 },
  { kind: 'aborted' },
  { kind: 'revoked' },
  { kind: 'disabled' },
];

function sum(family: ParsedFamily | undefined): number {
  return (family?.metrics ?? []).reduce((total, sample) => total + Number(sample.value), 0);
}

function poolTotalsMatchKeyTotals(pool: KeyPool): void {
  const { keys, metrics } = pool.snapshot();
  const perKey = {
    successes: keys.reduce((total, k) => total + k.successes, 0),
    failures: keys.reduce((total, k) => total + k.failures, 0),
    rateLimits: keys.reduce((total, k) => total + k.rateLimits, 0),
  };
  expect(perKey).toEqual({
    successes: metrics.releases,
    failures: metrics.failures,
    rateLimits: metrics.rateLimits,
  });
  const families = new Map(parsePrometheusTextFormat(pool.metrics.toPrometheus()).map((f) => [f.name, f]));
  const total = (name: string) => sum(families.get(name));
  expect({
    successes: total('keymesh_key_successes_total'),
    failures: total('keymesh_key_failures_total'),
    rateLimits: total('keymesh_key_rate_limits_total'),
  }).toEqual({
    successes: total('keymesh_releases_total'),
    failures: total('keymesh_failures_total'),
    rateLimits: total('keymesh_rate_limits_total'),
  });
}

describe('per-key totals add up to the pool’s', () => {
  it('after a spent quota reported with fail(…, { kind: "quota" })', async () => {
    const { pool } = await make(2);
    (await pool.acquire()).fail(new Error('insufficient_quota'), { kind: 'quota' });
    poolTotalsMatchKeyTotals(pool);
    expect(pool.snapshot().metrics.failures).toBe(1);
  });

  it('after every kind of settle, in every state a key passes through', async () => {
    const { pool, clock } = await make(4, { maxFailures: 2, recovery: { initialDelayMs: 1_000 } });
    const settles: ReadonlyArray<(lease: Lease) => void> = [
      (lease) => lease.release({ latencyMs: 20 }),
      (lease) => lease.rateLimited({ retryAfterMs: 2_000 }),
      (lease) => lease.rateLimited(),
      ...FAIL_KINDS.map((options) => (lease: Lease) => lease.fail(new Error('boom'), options)),
    ];
    let step = 0;
    for (let round = 0; round < 6; round++) {
      const leases: Lease[] = [];
      for (let lease = pool.tryAcquire(); lease !== undefined; lease = pool.tryAcquire()) {
        leases.push(lease);
        if (leases.length >= 3) break;
      }
      for (const lease of leases) {
        const settle = settles[step++ % settles.length];
        settle?.(lease);
      }
      await pool
        .withKey(() => Promise.reject(new APIConnectionTimeoutError()), { timeoutMs: 0 })
        .catch(() => undefined);
      poolTotalsMatchKeyTotals(pool);
      clock.advance(5_000);
      if (round === 3) for (const key of pool.snapshot().keys) await pool.resetKey(key.keyId);
    }
    const { metrics } = pool.snapshot();
    expect(metrics.releases + metrics.failures + metrics.rateLimits).toBeGreaterThan(15);
  });
});
