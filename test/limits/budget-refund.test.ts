import { describe, expect, it } from 'vitest';
import { flushMicrotasks, pools } from '../helpers.js';

const make = pools();

/** One key with `tpm: 6000`: a token costs 10 ms of the meter, 3 000 tokens 30 s. */
async function tokenPool() {
  const made = await make(1);
  const { pool, keys } = made;
  await pool.removeKey(keys[0] as string);
  await pool.addKey({ key: keys[0] as string, tpm: 6_000 });
  return made;
}

describe('tpm budget: a refund at release shortens the rest at once', () => {
  it('rests only for the tokens the call used, not for the estimate', async () => {
    const { pool, clock } = await tokenPool();
    const lease = await pool.acquire({ tokens: 3_000 });
    expect(pool.snapshot().keys[0]).toMatchObject({
      state: 'cooling',
      reason: 'budget',
      cooldownUntil: clock.now() + 30_000,
    });

    lease.release({ usage: { inputTokens: 100, outputTokens: 200 } });
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: clock.now() + 3_000 });
    clock.advance(3_000);
    expect(pool.snapshot().keys[0]?.state).toBe('available');
  });

  it('wakes a waiter when the refund frees the budget, not 27 s later', async () => {
    const { pool, clock } = await tokenPool();
    const lease = await pool.acquire({ tokens: 3_000 });
    let granted = false;
    const waiting = pool.acquire({ tokens: 100 }).then((next) => {
      granted = true;
      return next;
    });
    clock.advance(1_000);
    lease.release({ usage: { totalTokens: 300 } });
    clock.advance(2_000);
    await flushMicrotasks();
    expect(granted).toBe(true);
    (await waiting).release({ usage: { totalTokens: 100 } });
  });

  it('frees the key at once when the call used no more than has refilled', async () => {
    const { pool, clock } = await tokenPool();
    const lease = await pool.acquire({ tokens: 3_000 });
    clock.advance(5_000);
    let granted = false;
    const waiting = pool.acquire().then((next) => {
      granted = true;
      return next;
    });
    lease.release({ usage: { totalTokens: 400 } });
    await flushMicrotasks();
    expect(granted).toBe(true);
    expect(pool.snapshot().keys[0]).toMatchObject({ inFlight: 1 });
    (await waiting).release();
  });

  it('keeps a rest that a rate limit set beyond the budget', async () => {
    const { pool, clock } = await tokenPool();
    const first = await pool.acquire({ tokens: 100 });
    clock.advance(1_000);
    const second = await pool.acquire({ tokens: 3_000 });
    first.rateLimited({ retryAfterMs: 60_000 });
    const until = pool.snapshot().keys[0]?.cooldownUntil;
    expect(until).toBeGreaterThan(clock.now() + 30_000);
    second.release({ usage: { totalTokens: 1 } });
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: until });
  });
});
