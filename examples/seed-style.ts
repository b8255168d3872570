/**
 * Coming from the Python seed: the same calls, with a raw key string.
 *
 *   seed (Python)                                KeyMesh
 *   key = await pool.acquire()                   const key = (await pool.acquire()).key
 *   await pool.release(key, latency=0.3)         pool.release(key, { latencyMs: 300 })
 *   await pool.mark_rate_limited(key, cooldown=20)  pool.markRateLimited(key, { cooldownMs: 20_000 })
 *   await pool.mark_failed(key)                  pool.markFailed(key, error)
 *   pool.status()                                pool.snapshot()
 *
 * A raw key settles the oldest outstanding lease on that key. `markFailed` returns the key's new
 * state instead of throwing `KeyExhaustedError`. See docs/migrating-from-python.md.
 *
 * Runs against the local mock provider (127.0.0.1, fake keys): `npm run example:seed-style`.
 */
import { KeyPool } from '../src/index.js'; // in your app: from 'keymesh'
import { EXAMPLE_KEYS, startLocalProvider } from './support/local-provider.js';
import { type Log, runIfMain } from './support/run.js';

export async function main(log: Log = console.log) {
  const provider = await startLocalProvider({ hints: 'retry-after', requestsPerSecond: 3 });
  const pool = await KeyPool.create({
    keys: [...EXAMPLE_KEYS],
    strategy: 'least-busy',
    acquireTimeoutMs: 30_000,
  });
  const outcomes = { ok: 0, rateLimited: 0, failed: 0 };
  /** One attempt with one key; true when it was served. */
  const call = async (question: string): Promise<boolean> => {
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
  };
  /** As seed users did: try again; acquire() waits (without polling) for a key that has rested. */
  const ask = async (question: string): Promise<void> => {
    for (let attempt = 0; attempt < 5 && !(await call(question)); attempt++);
  };
  try {
    await Promise.all(Array.from({ length: 18 }, (_, i) => ask(`Question ${i + 1}`)));
    log(
      `seed style: 18 questions, ${outcomes.ok} answered; ${outcomes.rateLimited} attempts rate limited, ${outcomes.failed} failed`,
    );
    const status = pool.snapshot(); // the seed's status(): per-key state and pool metrics, no secrets
    for (const k of status.keys) log(`  ${k.mask} ${k.state.padEnd(9)} ${k.successes} ok`);
    log(`available now: ${pool.availableCount()} of ${status.keys.length}`);
    return { outcomes, status };
  } finally {
    await pool.close();
    await provider.close();
  }
}

runIfMain(import.meta.url, main);
