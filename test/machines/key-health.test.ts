import { describe, expect, it } from 'vitest';
import type { KeyPool, KeyPoolEventMap } from '../../src/index.js';
import { flushMicrotasks, pools, track } from '../helpers.js';

const make = pools();

function record(pool: KeyPool, names: Array<keyof KeyPoolEventMap>): string[] {
  const seen: string[] = [];
  for (const name of names) pool.on(name, () => seen.push(name));
  return seen;
}

describe('failures and exhaustion', () => {
  it('exhausts a key after maxFailures consecutive failures and returns its new state (seed: mark_failed)', async () => {
    const { pool } = await make(1, { maxFailures: 2 });
    expect((await pool.acquire()).fail(new Error('500'))).toBe('available');
    expect((await pool.acquire()).fail(new Error('500'))).toBe('exhausted');
    expect(pool.snapshot().keys[0]).toMatchObject({
      state: 'exhausted',
      reason: 'failures',
      consecutiveFailures: 2,
    });
    expect(pool.availableCount()).toBe(0);
  });

  it('resets the consecutive count on success, so occasional errors never exhaust a healthy key', async () => {
    const { pool } = await make(1, { maxFailures: 2 });
    for (let i = 0; i < 10; i++) {
      (await pool.acquire()).fail(new Error('flaky'));
      (await pool.acquire()).release();
    }
    expect(pool.snapshot().keys[0]).toMatchObject({
      state: 'available',
      failures: 10,
      consecutiveFailures: 0,
    });
  });

  it('resets the consecutive count on a rate limit (the key is valid, only throttled)', async () => {
    const { pool, clock } = await make(1, { maxFailures: 2 });
    (await pool.acquire()).fail(new Error('500'));
    (await pool.acquire()).rateLimited({ retryAfterMs: 10 });
    clock.advance(10);
    (await pool.acquire()).fail(new Error('500'));
    // Not exhausted (maxFailures 2): the 429 between the failures reset the count. The key may rest
    // at the pace the 429 taught, but it is not out.
    expect(pool.snapshot().keys[0]?.consecutiveFailures).toBe(1);
    expect(pool.snapshot().keys[0]?.state).not.toBe('exhausted');
  });

  it('admits exactly one probe after the recovery delay; success brings the key back', async () => {
    const { pool, clock } = await make(1, {
      maxFailures: 1,
      recovery: { initialDelayMs: 1_000, maxDelayMs: 8_000 },
    });
    const events = record(pool, ['exhausted', 'recovered']);
    (await pool.acquire()).fail(new Error('500'));
    const recoveryAt = pool.snapshot().keys[0]?.recoveryAt ?? 0;
    // ±20 % jitter around 1 s.
    expect(recoveryAt - clock.now()).toBeGreaterThanOrEqual(800);
    expect(recoveryAt - clock.now()).toBeLessThanOrEqual(1_200);
    expect(pool.tryAcquire()).toBeUndefined();
    clock.advanceTo(recoveryAt);
    const probe = pool.tryAcquire();
    expect(probe?.probe).toBe(true);
    expect(pool.tryAcquire()).toBeUndefined(); // only one probe
    expect(probe?.release()).toBe('available');
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'available', reason: null, recoveryAt: 0 });
    expect(events).toEqual(['exhausted', 'recovered']);
  });

  it('doubles the recovery delay after a failed probe, up to the cap', async () => {
    const { pool, clock } = await make(1, {
      maxFailures: 1,
      recovery: { initialDelayMs: 1_000, maxDelayMs: 3_000 },
    });
    (await pool.acquire()).fail(new Error('500'));
    const delays: number[] = [];
    for (let i = 0; i < 4; i++) {
      const at = pool.snapshot().keys[0]?.recoveryAt ?? 0;
      clock.advanceTo(at);
      const probe = pool.tryAcquire();
      expect(probe?.probe).toBe(true);
      probe?.fail(new Error('still down'));
      delays.push((pool.snapshot().keys[0]?.recoveryAt ?? 0) - clock.now());
    }
    // Bases 2 s, 3 s (cap), 3 s, 3 s with ±20 % jitter, never above the cap.
    expect(delays[0]).toBeGreaterThanOrEqual(1_600);
    expect(delays[0]).toBeLessThanOrEqual(2_400);
    for (const delay of delays.slice(1)) {
      expect(delay).toBeGreaterThanOrEqual(2_400);
      expect(delay).toBeLessThanOrEqual(3_000);
    }
  });

  it('wakes a waiter when the probe becomes due', async () => {
    const { pool, clock } = await make(1, {
      maxFailures: 1,
      recovery: { initialDelayMs: 1_000, maxDelayMs: 1_000 },
    });
    (await pool.acquire()).fail(new Error('500'));
    const waiter = track(pool.acquire({ timeoutMs: 5_000 }));
    clock.advance(1_000);
    await flushMicrotasks();
    expect(waiter.state).toBe('fulfilled');
    expect(waiter.value?.probe).toBe(true);
  });

  it('keeps a revoked key out until resetKey', async () => {
    const { pool, clock, keys } = await make(2);
    const events = record(pool, ['revoked', 'recovered']);
    const lease = await pool.acquire();
    expect(lease.fail(new Error('401'), { kind: 'revoked' })).toBe('exhausted');
    clock.advance(24 * 3_600_000);
    const snap = pool.snapshot().keys.find((k) => k.keyId === lease.keyId);
    expect(snap).toMatchObject({ state: 'exhausted', reason: 'revoked' });
    expect(pool.availableCount()).toBe(1);
    await pool.resetKey(lease.key === keys[0] ? (keys[0] as string) : lease.keyId);
    expect(pool.availableCount()).toBe(2);
    expect(events).toEqual(['revoked', 'recovered']);
  });

  it('brings a disabled key back through addKey', async () => {
    const { pool, keys } = await make(1);
    (await pool.acquire()).fail(undefined, { kind: 'disabled' });
    expect(pool.snapshot().keys[0]?.reason).toBe('disabled');
    await pool.addKey(keys[0] as string);
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'available', reason: null });
  });
});

describe('rate limits and cooldowns', () => {
  it('takes a rate-limited key out of the available count (seed behaviour)', async () => {
    const { pool } = await make(3, { strategy: 'round-robin' });
    (await pool.acquire()).rateLimited({ cooldownMs: 9_999_000 });
    expect(pool.availableCount()).toBe(2);
  });

  it('extends a cooldown, never shortens it', async () => {
    const { pool, clock } = await make(1);
    const a = await pool.acquire();
    const b = await pool.acquire();
    a.rateLimited({ retryAfterMs: 10_000 });
    b.rateLimited({ retryAfterMs: 1_000 });
    expect(pool.snapshot().keys[0]?.cooldownUntil).toBe(clock.now() + 10_000);
    clock.advance(9_999);
    expect(pool.snapshot().keys[0]?.state).toBe('cooling');
    clock.advance(1);
    expect(pool.snapshot().keys[0]?.state).toBe('available');
  });

  it('re-arms the timer when a cooldown is extended', async () => {
    const { pool, clock } = await make(1);
    const a = await pool.acquire();
    const b = await pool.acquire();
    a.rateLimited({ retryAfterMs: 1_000 });
    clock.advance(500);
    b.rateLimited({ retryAfterMs: 2_000 });
    clock.advance(500);
    expect(pool.snapshot().keys[0]?.state).toBe('cooling');
    clock.advance(1_500);
    expect(pool.snapshot().keys[0]?.state).toBe('available');
  });

  it('treats a zero or negative hint as now', async () => {
    const { pool } = await make(1);
    expect((await pool.acquire()).rateLimited({ retryAfterMs: 0 })).toBe('available');
    expect((await pool.acquire()).rateLimited({ retryAfterMs: -5 })).toBe('available');
  });

  it('escalates cooldowns without a hint 1 s, 2 s, 4 s … up to defaultCooldownMs, reset by success', async () => {
    const { pool, clock } = await make(1, { defaultCooldownMs: 5_000 });
    const cooldowns: number[] = [];
    for (let i = 0; i < 5; i++) {
      (await pool.acquire()).rateLimited();
      const until = pool.snapshot().keys[0]?.cooldownUntil ?? 0;
      cooldowns.push(until - clock.now());
      clock.advanceTo(until);
    }
    expect(cooldowns).toEqual([1_000, 2_000, 4_000, 5_000, 5_000]);
    (await pool.acquire()).release();
    // Reset by the success: a second at most again (a key that got calls through rests less while
    // the episode is young — an eighth of its length — to place the freed slot; this one is 16 s old).
    const slow = await pool.acquire();
    clock.advance(16_000);
    slow.rateLimited();
    expect((pool.snapshot().keys[0]?.cooldownUntil ?? 0) - clock.now()).toBe(1_000);
  });

  it('emits cooling and available events with the deadline', async () => {
    const { pool, clock } = await make(1);
    const seen: Array<KeyPoolEventMap['cooling'] | KeyPoolEventMap['available']> = [];
    pool.on('cooling', (e) => seen.push(e));
    pool.on('available', (e) => seen.push(e));
    (await pool.acquire()).rateLimited({ retryAfterMs: 100 });
    clock.advance(100);
    expect(seen).toEqual([
      expect.objectContaining({ reason: 'rate-limited', cooldownUntil: clock.now() }),
      expect.objectContaining({ keyId: pool.snapshot().keys[0]?.keyId }),
    ]);
  });

  it('counts a lease settled while its key cools, without ending the cooldown', async () => {
    const { pool } = await make(1);
    const a = await pool.acquire();
    const b = await pool.acquire();
    a.rateLimited({ retryAfterMs: 1_000 });
    expect(b.release({ latencyMs: 20 })).toBe('cooling');
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', inFlight: 0, successes: 1 });
  });
});

describe('concurrency caps', () => {
  it('marks a key busy at its cap and available again when a lease settles', async () => {
    const { pool } = await make(1, { maxConcurrentPerKey: 2 });
    await pool.acquire();
    const second = await pool.acquire();
    expect(pool.snapshot().keys[0]?.state).toBe('busy');
    expect(pool.tryAcquire()).toBeUndefined();
    expect(second.release()).toBe('available');
  });

  it('honours a per-key cap over the pool default', async () => {
    const { pool, keys } = await make(0, {
      keys: [{ key: 'sk-test-fake-cap-1-000000000001', maxConcurrent: 1 }, 'sk-test-fake-cap-2-000000000002'],
      maxConcurrentPerKey: 3,
    });
    expect(keys).toHaveLength(0);
    const leases = [await pool.acquire(), await pool.acquire(), await pool.acquire(), await pool.acquire()];
    expect(leases.map((l) => l.key.slice(0, 20))).toEqual([
      'sk-test-fake-cap-1-0',
      'sk-test-fake-cap-2-0',
      'sk-test-fake-cap-2-0',
      'sk-test-fake-cap-2-0',
    ]);
    expect(pool.tryAcquire()).toBeUndefined();
  });
});
