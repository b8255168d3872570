import { describe, expect, it } from 'vitest';
import { KeyPool, LeaseNotFoundError, LeaseSettledError, UnknownKeyError } from '../../src/index.js';
import { fakeKeys, pools } from '../helpers.js';

const make = pools();

describe('acquire and release', () => {
  it('leases one of the configured keys and reports it safely', async () => {
    const { pool, keys } = await make(3);
    const lease = await pool.acquire();
    expect(keys).toContain(lease.key);
    expect(lease.keyId).toMatch(/^k_[0-9a-f]{16}$/);
    expect(JSON.stringify(lease)).not.toContain(lease.key);
    expect(lease.release()).toBe('available');
  });

  it('counts acquires and releases in the snapshot (seed: release updates metrics)', async () => {
    const { pool } = await make(3, { strategy: 'round-robin' });
    const lease = await pool.acquire();
    lease.release({ latencyMs: 300 });
    const { metrics } = pool.snapshot();
    expect(metrics.acquires).toBe(1);
    expect(metrics.releases).toBe(1);
    expect(pool.snapshot().keys).toHaveLength(3);
  });

  it('settles every lease exactly once', async () => {
    const { pool } = await make(1);
    const lease = await pool.acquire();
    lease.release();
    expect(() => lease.fail(new Error('late'))).toThrow(LeaseSettledError);
    expect(() => lease.release()).toThrow(LeaseSettledError);
    const key = pool.snapshot().keys[0];
    expect(key?.inFlight).toBe(0);
    expect(key?.successes).toBe(1);
    expect(key?.failures).toBe(0);
  });

  it('settles the oldest outstanding lease when given a raw key', async () => {
    const { pool, keys } = await make(1);
    const first = await pool.acquire();
    const second = await pool.acquire();
    pool.release(keys[0] as string, { latencyMs: 10 });
    expect(first.settled).toBe(true);
    expect(second.settled).toBe(false);
    pool.markFailed(keys[0] as string, new Error('boom'));
    expect(second.outcome).toBe('failed');
    expect(() => pool.release(keys[0] as string)).toThrow(LeaseNotFoundError);
  });

  it('rejects a raw key it does not know without echoing it', async () => {
    const { pool } = await make(1);
    const unknown = 'sk-test-unknown-000000000000000';
    let caught: unknown;
    try {
      pool.release(unknown);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UnknownKeyError);
    expect(String((caught as Error).message)).not.toContain(unknown);
  });

  it('tryAcquire leases synchronously or returns undefined, never waits', async () => {
    const { pool } = await make(1, { maxConcurrentPerKey: 1 });
    const lease = pool.tryAcquire();
    expect(lease).toBeDefined();
    expect(pool.tryAcquire()).toBeUndefined();
    lease?.release();
    expect(pool.tryAcquire()).toBeDefined();
  });

  it('refuses a synchronous tryAcquire from inside an event listener (the pool is mid-step)', async () => {
    const { pool } = await make(2);
    let caught: unknown;
    pool.on('acquired', () => {
      try {
        pool.tryAcquire();
      } catch (error) {
        caught = error;
      }
    });
    await pool.acquire();
    expect(caught).toMatchObject({ code: 'INVALID_CALL' });
  });

  it('can be created synchronously with the memory store', async () => {
    const pool = new KeyPool({ keys: fakeKeys(2) });
    make.track(pool);
    expect(pool.availableCount()).toBe(2);
  });
});

describe('strategies', () => {
  it('round-robin covers every key in configured order', async () => {
    const { pool, keys } = await make(3, { strategy: 'round-robin' });
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      const lease = await pool.acquire();
      seen.push(lease.key);
      lease.release();
    }
    expect(seen).toEqual([...keys, ...keys]);
  });

  it('round-robin skips an ineligible key without disturbing the rotation', async () => {
    const { pool, keys } = await make(3, { strategy: 'round-robin' });
    const a = await pool.acquire();
    a.rateLimited({ retryAfterMs: 60_000 }); // key 0 cools
    const order: string[] = [];
    for (let i = 0; i < 4; i++) {
      const lease = await pool.acquire();
      order.push(lease.key);
      lease.release();
    }
    expect(order).toEqual([keys[1], keys[2], keys[1], keys[2]]);
  });

  it('least-busy picks the key with the fewest leases, then the least recently leased', async () => {
    const { pool, keys } = await make(3);
    const a = await pool.acquire();
    const b = await pool.acquire();
    const c = await pool.acquire();
    expect([a.key, b.key, c.key]).toEqual(keys);
    b.release();
    const d = await pool.acquire();
    expect(d.key).toBe(keys[1]);
    a.release();
    c.release();
    // key 0 was leased before key 2: it is the least recently leased of the idle ones.
    const e = await pool.acquire();
    expect(e.key).toBe(keys[0]);
  });

  it('weighted follows the configured proportions exactly and spreads heavy keys', async () => {
    const keys = fakeKeys(3);
    const { pool } = await make(0, {
      keys: [
        { key: keys[0] as string, weight: 5 },
        { key: keys[1] as string, weight: 1 },
        { key: keys[2] as string, weight: 1 },
      ],
      strategy: 'weighted',
    });
    const picks: string[] = [];
    for (let i = 0; i < 7; i++) {
      const lease = await pool.acquire();
      picks.push(lease.key);
      lease.release();
    }
    expect(picks.filter((k) => k === keys[0])).toHaveLength(5);
    expect(picks.filter((k) => k === keys[1])).toHaveLength(1);
    // Smooth WRR: the heavy key is never chosen more than twice in a row.
    expect(picks.join(',')).not.toContain([keys[0], keys[0], keys[0]].join(','));
  });

  it('weighted never chooses a key of weight 0', async () => {
    const keys = fakeKeys(2);
    const { pool } = await make(0, {
      keys: [{ key: keys[0] as string, weight: 0 }, keys[1] as string],
      strategy: 'weighted',
    });
    for (let i = 0; i < 5; i++) {
      const lease = await pool.acquire();
      expect(lease.key).toBe(keys[1]);
      lease.release();
    }
  });

  it('latency prefers the faster key and is repeatable from a seed', async () => {
    const run = async () => {
      const { pool, keys } = await make(2, { strategy: 'latency', seed: 7 });
      // Teach the pool that key 0 is slow and key 1 fast.
      for (const [index, latencyMs] of [
        [0, 900],
        [1, 50],
      ] as const) {
        for (;;) {
          const lease = await pool.acquire();
          if (lease.key === keys[index]) {
            lease.release({ latencyMs });
            break;
          }
          lease.release({ latencyMs: index === 0 ? 50 : 900 });
        }
      }
      const picks: string[] = [];
      for (let i = 0; i < 20; i++) {
        const lease = await pool.acquire();
        picks.push(lease.key === keys[1] ? 'fast' : 'slow');
        lease.release({ latencyMs: lease.key === keys[1] ? 50 : 900 });
      }
      return picks;
    };
    const first = await run();
    expect(first.filter((p) => p === 'fast').length).toBe(20);
    expect(await run()).toEqual(first);
  });

  it('a custom strategy chooses among read-only snapshots', async () => {
    const { pool, keys } = await make(3, {
      strategy: (candidates) => candidates[candidates.length - 1]?.keyId,
    });
    const lease = await pool.acquire();
    expect(lease.key).toBe(keys[2]);
  });

  it('a custom strategy that throws rejects that acquire only', async () => {
    let calls = 0;
    const { pool } = await make(2, {
      strategy: (candidates) => {
        calls++;
        if (calls === 1) throw new Error('bad strategy');
        return candidates[0]?.keyId;
      },
    });
    await expect(pool.acquire()).rejects.toMatchObject({ code: 'STRATEGY_FAILED' });
    await expect(pool.acquire()).resolves.toBeDefined();
  });

  it('a custom strategy cannot mutate what it is shown', async () => {
    const { pool } = await make(2, {
      strategy: (candidates) => {
        expect(Object.isFrozen(candidates)).toBe(true);
        expect(Object.isFrozen(candidates[0])).toBe(true);
        return candidates[0]?.keyId;
      },
    });
    await expect(pool.acquire()).resolves.toBeDefined();
  });
});

describe('latency', () => {
  it('keeps an EWMA of successful calls only: 0.5 then 1.0 gives 0.6 (seed behaviour)', async () => {
    const { pool } = await make(1);
    (await pool.acquire()).release({ latencyMs: 0.5 });
    (await pool.acquire()).release({ latencyMs: 1.0 });
    (await pool.acquire()).fail(new Error('slow failure'));
    (await pool.acquire()).rateLimited({ retryAfterMs: 0 });
    expect(pool.snapshot().keys[0]?.latencyEwma).toBeCloseTo(0.6, 10);
  });

  it('measures latency on the pool clock when none is given', async () => {
    const { pool, clock } = await make(1);
    const lease = await pool.acquire();
    clock.advance(250);
    lease.release();
    expect(pool.snapshot().keys[0]?.latencyEwma).toBe(250);
  });
});
