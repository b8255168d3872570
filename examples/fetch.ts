/**
 * KeyMesh with nothing but `fetch`, two ways:
 *
 * 1. `keymeshFetch(pool)`: a drop-in `fetch` that leases a key per request, puts it on the request,
 *    settles the lease from the response and retries a rate limit on another key.
 * 2. By hand: `acquire` a lease, put `lease.key` on your request, and report what the provider
 *    said — `release({ headers })` for a success (the pool learns the remaining/reset counters),
 *    `rateLimited({ headers })` for a 429 (the key rests for the provider's hint), `fail()` else.
 *
 * Runs against the local mock provider (127.0.0.1, fake keys): `npm run example:fetch`.
 */
import { KeyPool, keymeshFetch } from '../src/index.js'; // in your app: from 'keymesh'
import { EXAMPLE_KEYS, startLocalProvider } from './support/local-provider.js';
import { type Log, runIfMain } from './support/run.js';

interface ChatCompletion {
  readonly choices: ReadonlyArray<{ readonly message: { readonly content: string } }>;
}

export async function main(log: Log = console.log) {
  const provider = await startLocalProvider({ hints: 'openai', requestsPerSecond: 5 });
  const pool = await KeyPool.create({ keys: [...EXAMPLE_KEYS], maxConcurrentPerKey: 2 });
  const url = `${provider.url}/v1/chat/completions`;
  const body = (content: string) =>
    JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], max_tokens: 16 });
  try {
    // 1. The drop-in fetch.
    const pooledFetch = keymeshFetch(pool, { retries: 6 });
    const statuses = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const response = await pooledFetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: body(`Question ${i + 1}`),
        });
        await response.json();
        return response.status;
      }),
    );
    log(`keymeshFetch: ${statuses.filter((s) => s === 200).length} of ${statuses.length} answered 200`);

    // 2. By hand, with the lease.
    const lease = await pool.acquire({ timeoutMs: 10_000 });
    const response = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${lease.key}`, 'content-type': 'application/json' },
      body: body('By hand'),
    });
    if (response.status === 429) lease.rateLimited({ headers: response.headers });
    else if (response.ok) lease.release({ headers: response.headers });
    else lease.fail(new Error(`HTTP ${response.status}`));
    const reply = response.ok
      ? ((await response.json()) as ChatCompletion).choices[0]?.message.content
      : undefined;
    log(`by hand with ${lease.keyId}: ${response.status} ${reply ?? ''}`);

    return { statuses, manualStatus: response.status, reply, snapshot: pool.snapshot() };
  } finally {
    await pool.close();
    await provider.close();
  }
}

runIfMain(import.meta.url, main);
