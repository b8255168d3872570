/**
 * Coming from the Python seed: the same calls, with a raw key string.
 *
 *   seed (Python)                                   KeyMesh
 *   key = await pool.acquire()                      const key = (await pool.acquire()).key
 *   await pool.release(key, latency=0.3)            pool.release(key, { latencyMs: 300 })
 *   await pool.mark_rate_limited(key, cooldown=20)  pool.markRateLimited(key, { cooldownMs: 20_000 })
 *   await pool.mark_failed(key)                     pool.markFailed(key, error)
 *   pool.status()                                   pool.snapshot()
 *
 * A raw key settles the oldest outstanding lease on that key. `markFailed` returns the key's new
 * state instead of throwing `KeyExhaustedError`. See docs/migrating-from-python.md.
 *
 * Runs against a local stand-in for the OpenAI API (127.0.0.1, fake keys): `npx tsx seed-style.ts`
 * (`npm run example:seed-style` in the KeyMesh repository).
 */
import { KeyPool } from 'keymesh';
import { startLocalProvider } from 'keymesh/sim';

const KEYS = ['sk-fake-example-seed-0001', 'sk-fake-example-seed-0002', 'sk-fake-example-seed-0003'];
// The stand-in admits 5 requests per second per key and answers a 429 with `retry-after` beyond.
const provider = await startLocalProvider({ keys: KEYS, requestsPerSecond: 5, hints: 'retry-after' });
// The seed had no budgets. Telling KeyMesh each key's rate (2 a second, under the provider's 5)
// keeps every key under its limit.
const pool = await KeyPool.create({
  keys: KEYS.map((key) => ({ key, rpm: 120 })),
  strategy: 'least-busy',
  acquireTimeoutMs: 30_000,
});

const outcomes = { ok: 0, rateLimited: 0, failed: 0 };
/** One attempt with one key; true when it was served. */
async function call(question: string): Promise<boolean> {
  const key = (await pool.acquire()).key; // the seed returned the raw key; a Lease carries it
  const started = performance.now();
  try {
    const response = await fetch(`${provider.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: question }] }),
    });
    await response.arrayBuffer();
    if (response.status === 429) {
      const seconds = Number(response.headers.get('retry-after') ?? '1');
      pool.markRateLimited(key, { cooldownMs: seconds * 1_000 });
      outcomes.rateLimited++;
      return false;
    }
    if (response.ok) {
      pool.release(key, { latencyMs: performance.now() - started });
      outcomes.ok++;
      return true;
    }
    pool.markFailed(key, new Error(`HTTP ${response.status}`)); // returns the new state; never throws for exhaustion
    outcomes.failed++;
    return false;
  } catch (error) {
    pool.markFailed(key, error);
    outcomes.failed++;
    return false;
  }
}

try {
  // As seed users did: try again when a call was not served; acquire() waits (without polling).
  await Promise.all(
    Array.from({ length: 12 }, async (_, i) => {
      for (let attempt = 0; attempt < 5 && !(await call(`Question ${i + 1}`)); attempt++);
    }),
  );
  console.log(`seed style: 12 questions, ${outcomes.ok} answered`);
  const status = pool.snapshot(); // the seed's status(): per-key state and pool metrics, no secrets
  for (const k of status.keys) console.log(`  ${k.mask} ${k.state.padEnd(9)} ${k.successes} ok`);
  console.log(`available now: ${pool.availableCount()} of ${status.keys.length}`);
  const m = status.metrics;
  console.log(
    `pool: ${m.acquires} leases, ${m.releases} ok, ${m.rateLimits} rate limited, ${m.failures} failed`,
  );
} finally {
  await pool.close();
  await provider.close();
}
