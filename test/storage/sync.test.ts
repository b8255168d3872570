import { afterEach, describe, expect, it } from 'vitest';
import { type KeyPool, memoryStorage, VirtualClock } from '../../src/index.js';
import { createTestPool, flushMicrotasks } from '../helpers.js';

const open: KeyPool[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((pool) => pool.close()));
});

/** Two pools sharing one store behave like two processes sharing a database. */
async function twoProcesses() {
  const storage = memoryStorage();
  const clock = new VirtualClock();
  const a = await createTestPool(2, { storage, flushIntervalMs: 1_000 }, clock);
  const b = await createTestPool(2, { storage, flushIntervalMs: 1_000, seed: 9 }, clock);
  open.push(a.pool, b.pool);
  const settle = async () => {
    clock.advance(0); // the writer flushes state changes at the next tick
    await flushMicrotasks();
  };
  return { a: a.pool, b: b.pool, clock, settle };
}

describe('state shared through storage watch', () => {
  it('honours a rate limit another pool recorded', async () => {
    const { a, b, clock, settle } = await twoProcesses();
    const lease = await a.acquire();
    lease.rateLimited({ retryAfterMs: 600_000 });
    await settle();
    const seen = b.snapshot().keys.find((k) => k.keyId === lease.keyId);
    expect(seen).toMatchObject({
      state: 'cooling',
      reason: 'rate-limited',
      cooldownUntil: clock.now() + 600_000,
    });
    clock.advance(600_000);
    expect(b.snapshot().keys.find((k) => k.keyId === lease.keyId)?.state).toBe('available');
  });

  it('honours a revocation another pool recorded, and never resurrects it', async () => {
    const { a, b, settle } = await twoProcesses();
    const lease = await a.acquire();
    lease.fail(new Error('401'), { kind: 'revoked' });
    await settle();
    expect(b.snapshot().keys.find((k) => k.keyId === lease.keyId)).toMatchObject({
      state: 'exhausted',
      reason: 'revoked',
    });
  });

  it('ignores news that is older than what it knows', async () => {
    const { a, b, clock, settle } = await twoProcesses();
    const mine = await b.acquire();
    mine.rateLimited({ retryAfterMs: 60_000 });
    const theirs = await a.acquire();
    expect(theirs.keyId).toBe(mine.keyId);
    theirs.rateLimited({ retryAfterMs: 5_000 });
    await settle();
    expect(b.snapshot().keys.find((k) => k.keyId === mine.keyId)?.cooldownUntil).toBe(clock.now() + 60_000);
  });
});
