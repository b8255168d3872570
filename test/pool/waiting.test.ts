import { describe, expect, it } from 'vitest';
import {
  AcquireAbortedError,
  NoAvailableKeyError,
  PoolClosedError,
  QueueFullError,
} from '../../src/index.js';
import { flushMicrotasks, pools, track } from '../helpers.js';

const make = pools();

describe('waiting for a key', () => {
  it('wakes the first waiter when a lease settles, in the same tick', async () => {
    const { pool } = await make(1, { maxConcurrentPerKey: 1 });
    const held = await pool.acquire();
    const waiter = track(pool.acquire());
    await flushMicrotasks();
    expect(waiter.state).toBe('pending');
    held.release();
    await flushMicrotasks();
    expect(waiter.state).toBe('fulfilled');
    expect(waiter.value?.keyId).toBe(held.keyId);
  });

  it('wakes the first waiter exactly when the cooldown ends, not before', async () => {
    const { pool, clock } = await make(1);
    (await pool.acquire()).rateLimited({ retryAfterMs: 200 });
    const waiter = track(pool.acquire());
    clock.advance(199);
    await flushMicrotasks();
    expect(waiter.state).toBe('pending');
    clock.advance(1);
    await flushMicrotasks();
    expect(waiter.state).toBe('fulfilled');
    expect(pool.snapshot().metrics.waitMs.max).toBe(200);
  });

  it('serves waiters by priority, FIFO within a priority', async () => {
    const { pool } = await make(1, { maxConcurrentPerKey: 1 });
    const held = await pool.acquire();
    const order: string[] = [];
    const waits = [
      ['low-1', 0],
      ['high-1', 5],
      ['low-2', 0],
      ['high-2', 5],
      ['mid', 1],
    ] as const;
    const leases = waits.map(([name, priority]) =>
      pool.acquire({ priority }).then((lease) => {
        order.push(name);
        return lease;
      }),
    );
    let current = held;
    for (let i = 0; i < waits.length; i++) {
      current.release();
      await flushMicrotasks();
      const next = await leases[waits.findIndex(([name]) => name === order[order.length - 1])];
      if (!next) throw new Error('no lease');
      current = next;
    }
    current.release();
    expect(order).toEqual(['high-1', 'high-2', 'mid', 'low-1', 'low-2']);
  });

  it('rejects at the deadline with NoAvailableKeyError carrying retryAfterMs and counts', async () => {
    const { pool, clock } = await make(2, { maxConcurrentPerKey: 1 });
    const a = await pool.acquire();
    (await pool.acquire()).rateLimited({ retryAfterMs: 5_000 });
    const waiter = track(pool.acquire({ timeoutMs: 1_000 }));
    clock.advance(999);
    await flushMicrotasks();
    expect(waiter.state).toBe('pending');
    clock.advance(1);
    await flushMicrotasks();
    expect(waiter.state).toBe('rejected');
    const error = waiter.error as NoAvailableKeyError;
    expect(error).toBeInstanceOf(NoAvailableKeyError);
    expect(error.code).toBe('NO_AVAILABLE_KEY');
    expect(error.retryAfterMs).toBe(4_000);
    expect(error.counts).toMatchObject({ busy: 1, cooling: 1, 'cooling:rate-limited': 1 });
    expect(error.message).toContain('within 1.0 s');
    expect(pool.snapshot().metrics.timeouts).toBe(1);
    a.release();
  });

  it('fails fast when every key is revoked', async () => {
    const { pool } = await make(2);
    (await pool.acquire()).fail(new Error('401'), { kind: 'revoked' });
    (await pool.acquire()).fail(new Error('401'), { kind: 'revoked' });
    const error = await pool.acquire({ timeoutMs: 60_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoAvailableKeyError);
    expect((error as NoAvailableKeyError).retryAfterMs).toBeUndefined();
    expect((error as NoAvailableKeyError).counts).toMatchObject({ exhausted: 2, 'exhausted:revoked': 2 });
  });

  it('fails fast when the earliest cooldown ends after the deadline (seed: all keys rate limited)', async () => {
    const { pool } = await make(3);
    for (let i = 0; i < 3; i++) (await pool.acquire()).rateLimited({ retryAfterMs: 9_999_000 });
    // The default 30 s timeout would leave this pending forever on a virtual clock: it must not wait.
    const error = await pool.acquire().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoAvailableKeyError);
    expect((error as NoAvailableKeyError).retryAfterMs).toBe(9_999_000);
    expect(pool.snapshot().metrics.waiting).toBe(0);
  });

  it('waits when the cooldown ends before the deadline', async () => {
    const { pool, clock } = await make(1);
    (await pool.acquire()).rateLimited({ retryAfterMs: 3_000 });
    const waiter = track(pool.acquire({ timeoutMs: 5_000 }));
    clock.advance(3_000);
    await flushMicrotasks();
    expect(waiter.state).toBe('fulfilled');
  });

  it('removes an aborted waiter at once and gives the key to the next one', async () => {
    const { pool } = await make(1, { maxConcurrentPerKey: 1 });
    const held = await pool.acquire();
    const controller = new AbortController();
    const first = track(pool.acquire({ signal: controller.signal }));
    const second = track(pool.acquire());
    controller.abort(new Error('user gave up'));
    await flushMicrotasks();
    expect(first.state).toBe('rejected');
    expect(first.error).toBeInstanceOf(AcquireAbortedError);
    expect((first.error as AcquireAbortedError).cause).toEqual(new Error('user gave up'));
    expect(pool.snapshot().metrics.waiting).toBe(1);
    held.release();
    await flushMicrotasks();
    expect(second.state).toBe('fulfilled');
    expect(pool.snapshot().metrics.aborts).toBe(1);
  });

  it('rejects an already aborted signal without queueing', async () => {
    const { pool } = await make(1);
    const controller = new AbortController();
    controller.abort('stop');
    await expect(pool.acquire({ signal: controller.signal })).rejects.toBeInstanceOf(AcquireAbortedError);
  });

  it('rejects with QueueFullError beyond maxWaiters', async () => {
    const { pool } = await make(1, { maxConcurrentPerKey: 1, maxWaiters: 2 });
    const held = await pool.acquire();
    const a = track(pool.acquire());
    const b = track(pool.acquire());
    await expect(pool.acquire()).rejects.toBeInstanceOf(QueueFullError);
    held.release();
    await flushMicrotasks();
    expect(a.state).toBe('fulfilled');
    expect(b.state).toBe('pending');
    expect(pool.snapshot().metrics.queueFull).toBe(1);
  });

  it('emits waiting and timeout events', async () => {
    const { pool, clock } = await make(1, { maxConcurrentPerKey: 1 });
    const events: string[] = [];
    pool.on('waiting', (e) => events.push(`waiting:${e.waiting}`));
    pool.on('timeout', (e) => events.push(`timeout:${e.waitedMs}`));
    await pool.acquire();
    const waiter = track(pool.acquire({ timeoutMs: 50 }));
    clock.advance(50);
    await flushMicrotasks();
    expect(waiter.state).toBe('rejected');
    expect(events).toEqual(['waiting:1', 'timeout:50']);
  });

  it('rejects waiters with PoolClosedError on close and leaves no timer behind', async () => {
    const { pool, clock } = await make(1, { maxConcurrentPerKey: 1 });
    await pool.acquire();
    const waiter = track(pool.acquire({ timeoutMs: 10_000 }));
    await pool.close();
    await flushMicrotasks();
    expect(waiter.error).toBeInstanceOf(PoolClosedError);
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolClosedError);
    expect(clock.pendingTimers).toBe(0);
  });
});

describe('eta()', () => {
  it('is 0 while a key is eligible', async () => {
    const { pool } = await make(1);
    expect(pool.eta()).toBe(0);
  });

  it('is the time until the earliest cooldown ends', async () => {
    const { pool, clock } = await make(2);
    (await pool.acquire()).rateLimited({ retryAfterMs: 4_000 });
    (await pool.acquire()).rateLimited({ retryAfterMs: 9_000 });
    clock.advance(1_000);
    expect(pool.eta()).toBe(3_000);
  });

  it('estimates a busy key from its latency EWMA', async () => {
    const { pool, clock } = await make(1, { maxConcurrentPerKey: 1 });
    (await pool.acquire()).release({ latencyMs: 800 });
    await pool.acquire();
    clock.advance(300);
    expect(pool.eta()).toBe(500);
  });

  it('is Infinity when no key will come back by itself', async () => {
    const { pool } = await make(1);
    (await pool.acquire()).fail(undefined, { kind: 'disabled' });
    expect(pool.eta()).toBe(Number.POSITIVE_INFINITY);
  });
});
