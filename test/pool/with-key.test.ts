import { describe, expect, it } from 'vitest';
import { pools } from '../helpers.js';

const make = pools();

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${status}`);
  }
}

describe('withKey', () => {
  it('passes the key, returns the result and releases the lease', async () => {
    const { pool, keys, clock } = await make(1);
    const result = await pool.withKey(async (key) => {
      clock.advance(120);
      return `used ${key === keys[0]}`;
    });
    expect(result).toBe('used true');
    expect(pool.snapshot().keys[0]).toMatchObject({ inFlight: 0, successes: 1, latencyEwma: 120 });
  });

  it('cools the key for the retry-after of a thrown 429 and re-throws it', async () => {
    const { pool, clock } = await make(1);
    const error = new HttpError(429, { 'retry-after': '7' });
    await expect(pool.withKey(() => Promise.reject(error))).rejects.toBe(error);
    expect(pool.snapshot().keys[0]).toMatchObject({
      state: 'cooling',
      reason: 'rate-limited',
      cooldownUntil: clock.now() + 7_000,
    });
  });

  it('revokes the key on a thrown 401', async () => {
    const { pool } = await make(2);
    await expect(
      pool.withKey(() => {
        throw new HttpError(401);
      }),
    ).rejects.toBeInstanceOf(HttpError);
    expect(pool.snapshot().keys.filter((k) => k.reason === 'revoked')).toHaveLength(1);
  });

  it('classifies a resolved error response (fetch does not throw on 429)', async () => {
    const { pool, clock } = await make(1);
    const response = new Response('{}', { status: 429, headers: { 'retry-after-ms': '1500' } });
    await expect(pool.withKey(async () => response)).resolves.toBe(response);
    expect(pool.snapshot().keys[0]?.cooldownUntil).toBe(clock.now() + 1_500);
  });

  it('counts any other error as a failure', async () => {
    const { pool } = await make(1);
    await expect(pool.withKey(() => Promise.reject(new TypeError('bug')))).rejects.toBeInstanceOf(TypeError);
    expect(pool.snapshot().keys[0]).toMatchObject({ failures: 1, inFlight: 0 });
  });

  it('keeps a settlement made inside fn', async () => {
    const { pool } = await make(1);
    await pool.withKey(async (_key, lease) => {
      lease.rateLimited({ retryAfterMs: 100 });
      return 'done';
    });
    expect(pool.snapshot().keys[0]).toMatchObject({ rateLimits: 1, successes: 0, inFlight: 0 });
  });
});
