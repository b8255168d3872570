import { describe, expect, it } from 'vitest';
import { memoryStorage, UnknownKeyError } from '../../src/index.js';
import { flushMicrotasks, pools, track } from '../helpers.js';

const make = pools();

const EXTRA = 'sk-test-fake-extra-000000000001';

describe('keys at runtime', () => {
  it('adds a key that the next acquire can use (seed: add_key)', async () => {
    const { pool } = await make(1, { maxConcurrentPerKey: 1 });
    await pool.acquire();
    const keyId = await pool.addKey({ key: EXTRA, label: 'extra' });
    const lease = pool.tryAcquire();
    expect(lease?.keyId).toBe(keyId);
    expect(lease?.label).toBe('extra');
    expect(pool.snapshot().keys.map((k) => k.label)).toEqual([null, 'extra']);
  });

  it('wakes a waiter when a key is added', async () => {
    const { pool } = await make(1, { maxConcurrentPerKey: 1 });
    const events: string[] = [];
    pool.on('key-added', (e) => events.push(e.keyId));
    await pool.acquire();
    const waiter = track(pool.acquire());
    const keyId = await pool.addKey(EXTRA);
    await flushMicrotasks();
    expect(waiter.state).toBe('fulfilled');
    expect(waiter.value?.keyId).toBe(keyId);
    expect(events).toEqual([keyId]);
  });

  it('removes an idle key at once', async () => {
    const { pool, keys } = await make(2);
    const removed: string[] = [];
    pool.on('key-removed', (e) => removed.push(e.keyId));
    await pool.removeKey(keys[0] as string);
    expect(pool.snapshot().keys).toHaveLength(1);
    expect(removed).toHaveLength(1);
    await expect(pool.removeKey(keys[0] as string)).rejects.toBeInstanceOf(UnknownKeyError);
  });

  it('drains a key with leases out: no new lease, removed when the last settles', async () => {
    const { pool } = await make(2);
    const a = await pool.acquire();
    const b = await pool.acquire();
    await pool.removeKey(a.keyId);
    expect(pool.snapshot().keys.find((k) => k.keyId === a.keyId)?.state).toBe('draining');
    for (let i = 0; i < 3; i++) {
      const lease = await pool.acquire();
      expect(lease.keyId).toBe(b.keyId);
    }
    expect(a.release()).toBe('draining');
    expect(pool.snapshot().keys.map((k) => k.keyId)).toEqual([b.keyId]);
  });

  it('counts a draining key settles exactly', async () => {
    const { pool } = await make(1);
    const a = await pool.acquire();
    const b = await pool.acquire();
    await pool.removeKey(a.keyId);
    a.fail(new Error('x'));
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'draining', inFlight: 1, failures: 1 });
    b.rateLimited({ retryAfterMs: 1_000 });
    expect(pool.snapshot().keys).toHaveLength(0);
  });

  it('resets an exhausted key at runtime', async () => {
    const { pool } = await make(1, { maxFailures: 1 });
    const lease = await pool.acquire();
    lease.fail(new Error('500'));
    expect(pool.availableCount()).toBe(0);
    await pool.resetKey(lease.keyId);
    expect(pool.snapshot().keys[0]).toMatchObject({
      state: 'available',
      consecutiveFailures: 0,
      reason: null,
    });
  });

  it('restores a re-added key from storage', async () => {
    const storage = memoryStorage();
    const { pool, clock } = await make(1, { storage, flushIntervalMs: 0 });
    (await pool.acquire()).release({ latencyMs: 40 });
    await pool.close();
    const again = await make(1, { storage }, clock);
    expect(again.pool.snapshot().keys[0]).toMatchObject({ successes: 1, latencyEwma: 40 });
  });

  it('rejects unknown keys and ids without echoing a secret', async () => {
    const { pool } = await make(1);
    const error = await pool.resetKey('sk-test-not-in-pool-00000000001').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownKeyError);
    expect(String((error as Error).message)).not.toContain('sk-test-not-in-pool');
    await expect(pool.removeKey('k_0000000000000000')).rejects.toBeInstanceOf(UnknownKeyError);
  });
});
