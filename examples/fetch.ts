/**
 * KeyMesh with nothing but `fetch`, two ways:
 *
 * 1. `keymeshFetch(pool)`: a drop-in `fetch` that leases a key per request, puts it on the request,
 *    settles the lease from the response and retries a rate limit on another key.
 * 2. By hand: `acquire` a lease, put `lease.key` on your request, and report what the provider
 *    said — `release({ headers })` for a success (the pool learns the remaining/reset counters),
 *    `rateLimited({ headers })` for a 429 (the key rests for the provider's hint), `fail()` else.
 *
 * Runs against a local stand-in for the OpenAI API (127.0.0.1, fake keys): `npx tsx fetch.ts`
 * (`npm run example:fetch` in the KeyMesh repository). With real keys, use the real URL.
 */
import { KeyPool, keymeshFetch } from 'keymesh';
import { startLocalProvider } from 'keymesh/sim';

const KEYS = ['sk-fake-example-fetch-0001', 'sk-fake-example-fetch-0002', 'sk-fake-example-fetch-0003'];
// The stand-in admits 10 requests per second per key, and answers a 429 beyond.
const provider = await startLocalProvider({ keys: KEYS, requestsPerSecond: 10, hints: 'openai' });
// Each key's rate (4 a second, well under the provider's 10), so that KeyMesh paces the keys: no 429s.
const pool = await KeyPool.create({ keys: KEYS.map((key) => ({ key, rpm: 240 })) });

interface ChatCompletion {
  readonly choices: ReadonlyArray<{ readonly message: { readonly content: string } }>;
}
const url = `${provider.url}/v1/chat/completions`;
const body = (content: string) =>
  JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }], max_tokens: 16 });

try {
  // 1. The drop-in fetch.
  const pooledFetch = keymeshFetch(pool);
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
  console.log(`keymeshFetch: ${statuses.filter((s) => s === 200).length} of ${statuses.length} answered 200`);

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
  const reply = response.ok ? ((await response.json()) as ChatCompletion).choices[0]?.message.content : '';
  console.log(`by hand with ${lease.keyId}: ${response.status} ${reply}`);

  const m = pool.snapshot().metrics;
  console.log(
    `pool: ${m.acquires} leases, ${m.releases} ok, ${m.rateLimits} rate limited, ${m.failures} failed`,
  );
} finally {
  await pool.close();
  await provider.close();
}
