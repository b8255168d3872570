import { describe, expect, it } from 'vitest';
import { pools } from '../helpers.js';

const make = pools();

describe('eta()', () => {
  it('does not say 0 while a pool-wide outage backoff keeps every key from being granted', async () => {
    const { pool, clock } = await make(2);
    const [a, b] = [await pool.acquire(), await pool.acquire()];
    a.fail(new Error('503'), { kind: 'provider' });
    b.fail(new Error('503'), { kind: 'provider' });
    const outage = pool.snapshot().outage;
    expect(outage).not.toBeNull();
    const left = (outage?.until ?? 0) - clock.now();
    expect(left).toBeGreaterThan(0);
    expect(pool.availableCount()).toBeGreaterThan(0);
    expect(pool.eta()).toBe(left);

    const waiting = pool.acquire({ timeoutMs: left });
    clock.advance(left);
    (await waiting).release({ latencyMs: 1 });
    expect(pool.eta()).toBe(0);
  });
});
