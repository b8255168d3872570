import { describe, expect, it } from 'vitest';
import {
  fixedLatency,
  runWorkload,
  SimulatedProvider,
  type SimulatedProviderOptions,
  successesBetween,
  VirtualClock,
  type WorkloadLease,
  type WorkloadPool,
} from '../../src/sim/index.js';

const KEY = 'sk-driver-fake-0000000000000001';

type Settle =
  | { readonly type: 'release'; readonly at: number; readonly latencyMs: number | undefined }
  | { readonly type: 'rateLimited'; readonly at: number; readonly retryAfterMs: number | undefined }
  | { readonly type: 'fail'; readonly at: number; readonly kind: string | undefined };

/** A pool of one key that never says no, optionally after a fixed wait; it records every settle. */
function onePool(clock: VirtualClock, waitMs = 0): WorkloadPool & { readonly settles: Settle[] } {
  const settles: Settle[] = [];
  const lease = (): WorkloadLease => ({
    key: KEY,
    release: (o) => settles.push({ type: 'release', at: clock.now(), latencyMs: o?.latencyMs }),
    rateLimited: (o) => settles.push({ type: 'rateLimited', at: clock.now(), retryAfterMs: o?.retryAfterMs }),
    fail: (_error, o) => settles.push({ type: 'fail', at: clock.now(), kind: o?.kind }),
  });
  return {
    settles,
    acquire: () =>
      waitMs === 0
        ? Promise.resolve(lease())
        : new Promise((resolve) => {
            clock.setTimeout(() => resolve(lease()), waitMs);
          }),
  };
}

function setup(key: Partial<SimulatedProviderOptions['keys'][number]> = {}) {
  const clock = new VirtualClock(0);
  const provider = new SimulatedProvider({
    clock,
    latency: fixedLatency(100),
    keys: [{ key: KEY, label: 'only', limits: { requestsPerSecond: 2 }, ...key }],
  });
  return { clock, provider };
}

describe('runWorkload', () => {
  it('computes goodput, 429s per 1 000 and the timeline of a worker calling back to back', async () => {
    const { clock, provider } = setup();
    const report = await runWorkload({
      clock,
      provider,
      pool: onePool(clock),
      load: { kind: 'workers', workers: 1 },
      durationMs: 3_000,
    });
    // Calls at 0, 100, …, 2 900 ms; the sliding second admits those at 0, 100, 1 000, 1 100, 2 000, 2 100.
    expect(report.calls).toBe(30);
    expect(report.successes).toBe(6);
    expect(report.rateLimited).toBe(24);
    expect(report.capacity).toBe(6);
    expect(report.goodputRatio).toBe(1);
    expect(report.rateLimitedPer1000).toBe(4_000);
    expect(report.waitMs).toMatchObject({ count: 30, p50: 0, p99: 0, max: 0 });
    expect(report.keys).toEqual([
      expect.objectContaining({ label: 'only', calls: 30, successes: 6, rateLimited: 24, share: 1 }),
    ]);
    expect(successesBetween(report, 1_000, 2_000)).toBe(2);
    expect(successesBetween(report, 200, 1_000)).toBe(0);
    expect(report.timeline.successes.length).toBe(30);
    expect(clock.now()).toBe(3_000);
  });

  it('settles each lease from the classified response, once its latency has passed', async () => {
    const { clock, provider } = setup();
    const pool = onePool(clock);
    await runWorkload({ clock, provider, pool, load: { kind: 'workers', workers: 1 }, durationMs: 300 });
    expect(pool.settles).toEqual([
      { type: 'release', at: 100, latencyMs: 100 },
      { type: 'release', at: 200, latencyMs: 100 },
      // The 429 of the call at 200 ms says retry-after 1 s (the window frees at 1 000 ms, rounded up).
      { type: 'rateLimited', at: 300, retryAfterMs: 1_000 },
    ]);
  });

  it('measures acquire waits on the virtual clock', async () => {
    const { clock, provider } = setup({ limits: {} });
    const report = await runWorkload({
      clock,
      provider,
      pool: onePool(clock, 50),
      load: { kind: 'workers', workers: 2 },
      durationMs: 1_500,
    });
    // Each cycle: 50 ms waiting for the lease, 100 ms of call: 10 cycles per worker.
    expect(report.waitMs).toMatchObject({ count: 20, p50: 50, p99: 50, max: 50 });
    expect(report.successes).toBe(20);
    expect(report.capacity).toBe(Number.POSITIVE_INFINITY);
  });

  it('counts the calls a revoked key still gets after its first 401 came back', async () => {
    const { clock, provider } = setup({ limits: {}, revokedAt: 1_000 });
    const pool = onePool(clock);
    const report = await runWorkload({
      clock,
      provider,
      pool,
      load: { kind: 'workers', workers: 1 },
      durationMs: 3_000,
    });
    // The call at 1 000 ms gets the first 401 at 1 100 ms; the calls at 1 100 … 2 900 ms come after it.
    expect(report.keys[0]).toMatchObject({
      firstUnauthorizedAt: 1_100,
      callsAfterUnauthorized: 19,
      errors: 20,
    });
    expect(pool.settles.find((s) => s.type === 'fail')).toEqual({ type: 'fail', at: 1_100, kind: 'revoked' });
  });

  it('drives an open workload: requests arrive at a rate and retry until they succeed', async () => {
    const { clock, provider } = setup({ limits: { requestsPerSecond: 5 } });
    const report = await runWorkload({
      clock,
      provider,
      pool: onePool(clock),
      load: { kind: 'arrivals', perSecond: 10, poisson: false, maxAttempts: 1 },
      durationMs: 2_000,
    });
    // One arrival every 100 ms; the sliding second admits the first 5 of every 10, the others give up.
    expect(report.requests).toMatchObject({ arrived: 20, succeeded: 10, abandoned: 10 });
    expect(report.requests?.latencyMs).toMatchObject({ p50: 100, max: 100 });
  });

  it('repeats bit for bit with the same seed', async () => {
    const run = async () => {
      const { clock, provider } = setup({ limits: { requestsPerSecond: 3 } });
      return runWorkload({
        clock,
        provider,
        pool: onePool(clock, 7),
        load: { kind: 'workers', workers: 5, startSpreadMs: 400 },
        tokens: (random) => Math.floor(random.next() * 1_000),
        durationMs: 5_000,
        seed: 9,
      });
    };
    expect(await run()).toEqual(await run());
  });

  it('ends the run with the error a worker hits', async () => {
    const { clock, provider } = setup();
    const stray: WorkloadLease = {
      key: 'sk-unknown-to-the-provider-0001',
      release: () => undefined,
      rateLimited: () => undefined,
      fail: () => undefined,
    };
    const pool: WorkloadPool = { acquire: async () => stray };
    await expect(
      runWorkload({ clock, provider, pool, load: { kind: 'workers', workers: 1 }, durationMs: 1_000 }),
    ).rejects.toThrow(/unknown key/);
  });

  it('refuses a duration that is not a positive finite number', async () => {
    const { clock, provider } = setup();
    await expect(
      runWorkload({
        clock,
        provider,
        pool: onePool(clock),
        load: { kind: 'workers', workers: 1 },
        durationMs: 0,
      }),
    ).rejects.toThrow(RangeError);
  });
});

describe('runWorkload steady figures', () => {
  it('count only the calls started and the acquires granted from steadyFromMs on', async () => {
    const { clock, provider } = setup();
    // One worker, 100 ms calls, 2 per sliding second: 2 successes then a 429 every second.
    const report = await runWorkload({
      clock,
      provider,
      pool: onePool(clock),
      load: { kind: 'workers', workers: 1 },
      durationMs: 10_000,
      steadyFromMs: 4_000,
    });
    const steady = report.steady;
    expect(steady?.fromMs).toBe(4_000);
    expect(steady?.successes).toBe(successesBetween(report, 4_000, 10_000));
    expect(steady?.capacity).toBe(12);
    expect(steady?.goodputRatio).toBe((steady?.successes ?? 0) / 12);
    expect(steady?.rateLimited).toBeGreaterThan(0);
    expect(steady?.rateLimited).toBeLessThan(report.rateLimited);
    expect(steady?.waitMs.count).toBeLessThan(report.waitMs.count);
  });

  it('count what a bucket banked before the steady part as capacity, and what it still holds at the end as not', async () => {
    const clock = new VirtualClock(0);
    // 4 per 10 s, refilled continuously; the pool uses the key at 2 s, 9.5 s, 12 s and 13 s only.
    const provider = new SimulatedProvider({
      clock,
      keys: [{ key: KEY, limits: { requests: { shape: 'token-bucket', limit: 4, windowMs: 10_000 } } }],
    });
    const at = [2_000, 9_500, 12_000, 13_000];
    const pool: WorkloadPool = {
      acquire: () =>
        new Promise((resolve) => {
          const next = at.shift();
          if (next !== undefined)
            clock.setTimeout(() => resolve(onePool(clock).acquire()), next - clock.now());
        }),
    };
    const report = await runWorkload({
      clock,
      provider,
      pool,
      load: { kind: 'workers', workers: 1 },
      durationMs: 20_000,
      steadyFromMs: 10_000,
    });
    // 0.4 units a second: full again at 4.5 s; the call at 9.5 s leaves 3.2 at 10 s (banked). The calls at
    // 12 s and 13 s leave 2.4, full again (4) by 20 s. Capacity = 4 (10 s at the rate) + 3.2 − 4.
    expect(report.steady?.successes).toBe(2);
    expect(report.steady?.capacity).toBeCloseTo(3.2, 9);
  });
});
