import { describe, expect, it } from 'vitest';
import { classifyOutcome, InvalidConfigError, keymeshFetch } from '../../src/index.js';
import { parseDurationString, parseRateLimitHeaders, parseRetryAfter } from '../../src/limits/index.js';
import { pools } from '../helpers.js';
import { NOW } from './fixtures/clock.js';
import { geminiZeroLimitBody } from './fixtures/gemini.js';
import { googleGenAiError } from './fixtures/sdk-errors.js';

const make = pools();

describe("withKey: a provider's stated wait", () => {
  it("keeps a Gemini 'limit: 0' key out until its stated retryDelay, then probes it", async () => {
    const { pool, clock } = await make(2);
    const refused = googleGenAiError(429, geminiZeroLimitBody);
    await expect(pool.withKey(() => Promise.reject(refused))).rejects.toBe(refused);
    const [key] = pool.snapshot().keys;
    expect(key).toMatchObject({ state: 'exhausted', reason: 'quota', recoveryAt: clock.now() + 10_000 });
    clock.advance(10_000);
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'exhausted', probe: true });
  });
});

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const nines = '9'.repeat(400);

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly headers: Record<string, string>,
  ) {
    super(`HTTP ${status}`);
  }
}

describe('provider hints are bounded', () => {
  it('reads every parse of a huge number as a finite wait', () => {
    for (const value of [nines, `${nines}.5`, '99999999999']) {
      const waits = [parseRetryAfter(value, NOW), parseDurationString(`${value}s`)];
      for (const wait of waits) expect(Number.isFinite(wait)).toBe(true);
    }
    const info = parseRateLimitHeaders(
      {
        'x-ratelimit-remaining-requests': nines,
        'x-ratelimit-reset-requests': nines,
        'anthropic-ratelimit-tokens-reset': `${nines}-01-01T00:00:00Z`,
        'retry-after-ms': nines,
      },
      NOW,
    );
    for (const value of Object.values(info)) expect(Number.isFinite(value)).toBe(true);
    expect(info.remainingRequests).toBeUndefined();
  });

  it('leaves an absurd retry-after out of the classified outcome', () => {
    const outcome = classifyOutcome({ status: 429, headers: { 'retry-after': '99999999999' } }, { now: NOW });
    expect(outcome).toStrictEqual({ kind: 'rate-limited', scope: 'key', status: 429 });
    const tight = classifyOutcome(
      { status: 429, headers: { 'retry-after': '20' } },
      { now: NOW, maxRetryAfterMs: 10_000 },
    );
    expect(tight).not.toHaveProperty('retryAfterMs');
  });

  it('keeps a 429 with retry-after: 99999999999 to the no-hint escalation, and counts it', async () => {
    const { pool, clock } = await make(1);
    const refused = new HttpError(429, { 'retry-after': '99999999999' });
    await expect(pool.withKey(() => Promise.reject(refused))).rejects.toBe(refused);
    const { keys, metrics } = pool.snapshot();
    expect(keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: clock.now() + 1_000 });
    expect(metrics.ignoredHints).toBe(1);
    expect(pool.metrics.toPrometheus()).toContain('keymesh_ignored_hints_total 1\n');
  });

  it('bounds and counts the hints keymeshFetch reads, by the pool’s own bounds', async () => {
    const { pool, clock } = await make(1, { maxRetryAfterMs: 2 * DAY_MS });
    const answers = ['99999999999', String((36 * HOUR_MS) / 1_000)];
    const provider: typeof fetch = async () =>
      new Response('{}', { status: 429, headers: { 'retry-after': answers.shift() ?? '0' } });
    const pooledFetch = keymeshFetch(pool, { fetch: provider, retries: 0, clock });
    expect((await pooledFetch('http://127.0.0.1:9/v1/models')).status).toBe(429);
    expect(pool.snapshot().metrics.ignoredHints).toBe(1);
    clock.advance(60_000);
    expect((await pooledFetch('http://127.0.0.1:9/v1/models')).status).toBe(429);
    expect(pool.snapshot().keys[0]?.cooldownUntil).toBe(clock.now() + 36 * HOUR_MS);
  });

  it('does not rest a key on a success whose reset header is 400 nines', async () => {
    const { pool } = await make(1);
    const lease = await pool.acquire();
    lease.release({
      headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': nines },
    });
    const { keys, metrics } = pool.snapshot();
    expect(keys[0]).toMatchObject({ state: 'available', cooldownUntil: 0 });
    expect(metrics.ignoredHints).toBe(1);
  });

  it('ignores a non-finite or absurd retryAfterMs given to rateLimited(), and counts each', async () => {
    const { pool, clock } = await make(1, { maxRetryAfterMs: HOUR_MS });
    for (const retryAfterMs of [Number.NaN, Number.POSITIVE_INFINITY, 2 * HOUR_MS]) {
      (await pool.acquire({ timeoutMs: Number.POSITIVE_INFINITY })).rateLimited({ retryAfterMs });
      expect(pool.snapshot().keys[0]?.cooldownUntil).toBeLessThanOrEqual(clock.now() + 60_000);
      clock.advance(60_000);
    }
    (await pool.acquire()).rateLimited({ retryAfterMs: HOUR_MS });
    expect(pool.snapshot().keys[0]?.cooldownUntil).toBe(clock.now() + HOUR_MS);
    expect(pool.snapshot().metrics.ignoredHints).toBe(3);
  });

  it('honours a quota reset within maxQuotaResetMs and probes instead beyond it', async () => {
    const { pool, clock } = await make(2);
    const [first, second] = [await pool.acquire(), await pool.acquire()];
    first.fail(undefined, { kind: 'quota', retryAfterMs: 31 * DAY_MS });
    second.fail(undefined, { kind: 'quota', retryAfterMs: 40 * DAY_MS });
    const byId = new Map(pool.snapshot().keys.map((k) => [k.keyId, k]));
    expect(byId.get(first.keyId)?.recoveryAt).toBe(clock.now() + 31 * DAY_MS);
    // The recovery schedule's first delay (30 s by default, ±20 % jitter).
    expect(byId.get(second.keyId)?.recoveryAt).toBeLessThanOrEqual(clock.now() + 36_000);
    expect(pool.snapshot().metrics.ignoredHints).toBe(1);
  });

  it('rejects a negative or non-finite bound', async () => {
    for (const bad of [{ maxRetryAfterMs: -1 }, { maxQuotaResetMs: Number.POSITIVE_INFINITY }]) {
      await expect(make(1, bad)).rejects.toBeInstanceOf(InvalidConfigError);
    }
  });
});
