import { describe, expect, it } from 'vitest';
import { pools } from '../helpers.js';
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
