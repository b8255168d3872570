/**
 * KeyMesh with the official OpenAI SDK (openai@6), two ways:
 *
 * 1. `pool.withKey`: build a client per call with the leased key; KeyMesh settles the lease from
 *    the SDK's result or error (a 429's retry hints, a 401 revokes the key, …).
 * 2. `keymeshFetch`: one client whose `fetch` leases a key per request and learns from every
 *    response's headers. Streaming works unchanged.
 *
 * Runs against a local stand-in for the OpenAI API (127.0.0.1, fake keys): `npx tsx openai.ts`
 * (`npm run example:openai` in the KeyMesh repository). With real keys, drop `provider` and `baseURL`.
 */
import { KeyPool, keymeshFetch } from 'keymesh';
import { startLocalProvider } from 'keymesh/sim';
import OpenAI from 'openai';

const KEYS = ['sk-fake-example-openai-0001', 'sk-fake-example-openai-0002', 'sk-fake-example-openai-0003'];
// The stand-in admits 20 requests per second per key, and answers a 429 beyond.
const provider = await startLocalProvider({ keys: KEYS, requestsPerSecond: 20, hints: 'openai' });
// Telling KeyMesh each key's rate (8 a second, well under the provider's 20) lets it pace the keys:
// no request is ever refused, instead of finding the limit by 429s.
const pool = await KeyPool.create({ keys: KEYS.map((key) => ({ key, rpm: 480 })) });

try {
  // 1. One call, one lease: the client is built with the key KeyMesh chose.
  const first = await pool.withKey((key) =>
    new OpenAI({ apiKey: key, baseURL: `${provider.url}/v1`, maxRetries: 0 }).chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Hello!' }],
    }),
  );
  console.log(`withKey: ${first.choices[0]?.message.content}`);

  // 2. One client for everything. The SDK's own retries are off: KeyMesh would retry a 429 on
  //    another key at once (`retries`) instead of sleeping on the throttled one.
  const openai = new OpenAI({
    apiKey: 'unused', // replaced per request by the leased key
    baseURL: `${provider.url}/v1`,
    maxRetries: 0,
    fetch: keymeshFetch(pool),
  });
  const replies = await Promise.all(
    Array.from({ length: 30 }, (_, i) =>
      openai.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: `Question ${i + 1}` }],
        max_tokens: 16,
      }),
    ),
  );
  console.log(`keymeshFetch: ${replies.length} replies`);

  const stream = await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Stream it' }],
    stream: true,
  });
  let streamed = '';
  for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
  console.log(`stream: ${streamed}`);

  for (const k of pool.snapshot().keys) console.log(`  ${k.keyId}: ${k.successes} ok`);
  const m = pool.snapshot().metrics;
  console.log(
    `pool: ${m.acquires} leases, ${m.releases} ok, ${m.rateLimits} rate limited, ${m.failures} failed`,
  );
} finally {
  await pool.close();
  await provider.close();
}
