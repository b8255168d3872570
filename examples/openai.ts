/**
 * KeyMesh with the official OpenAI SDK (openai@6), two ways:
 *
 * 1. `pool.withKey`: build a client per call with the leased key; KeyMesh settles the lease from
 *    the SDK's result or error (a 429's retry hints, a 401 revokes the key, …).
 * 2. `keymeshFetch`: one client whose `fetch` leases a key per request, retries a rate limit on
 *    another key, and learns from every response's headers. Streaming works unchanged.
 *
 * Runs against the local mock provider (127.0.0.1, fake keys): `npm run example:openai`.
 */
import OpenAI from 'openai';
import { KeyPool, keymeshFetch } from '../src/index.js'; // in your app: from 'keymesh'
import { EXAMPLE_KEYS, startLocalProvider } from './support/local-provider.js';
import { type Log, runIfMain } from './support/run.js';

export async function main(log: Log = console.log) {
  const provider = await startLocalProvider({ hints: 'openai', requestsPerSecond: 5 });
  const pool = await KeyPool.create({ keys: [...EXAMPLE_KEYS], maxConcurrentPerKey: 2 });
  try {
    // 1. One call, one lease: the client is built with the key KeyMesh chose.
    const first = await pool.withKey((key) =>
      new OpenAI({ apiKey: key, baseURL: `${provider.url}/v1`, maxRetries: 0 }).chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: 'Hello!' }],
      }),
    );
    log(`withKey: ${first.choices[0]?.message.content ?? ''}`);

    // 2. One client for everything. The SDK's own retries are off: KeyMesh retries a 429 on
    //    another key at once instead of sleeping on the throttled one.
    const openai = new OpenAI({
      apiKey: 'unused', // replaced per request by the leased key
      baseURL: `${provider.url}/v1`,
      maxRetries: 0,
      fetch: keymeshFetch(pool, { retries: 6 }),
    });
    const replies = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        openai.chat.completions.create({
          model: 'gpt-4o-mini',
          messages: [{ role: 'user', content: `Question ${i + 1}` }],
          max_tokens: 16,
        }),
      ),
    );
    log(`keymeshFetch: ${replies.length} replies over 3 keys allowed 5 requests/s each`);

    const stream = await openai.chat.completions.create({
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'Stream it' }],
      stream: true,
    });
    let streamed = '';
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
    log(`stream: ${streamed}`);

    const keys = pool
      .snapshot()
      .keys.map((k) => ({ keyId: k.keyId, successes: k.successes, rateLimits: k.rateLimits }));
    for (const k of keys) log(`  ${k.keyId}: ${k.successes} ok, ${k.rateLimits} rate limited`);
    return { first: first.choices[0]?.message.content ?? '', replies: replies.length, streamed, keys };
  } finally {
    await pool.close();
    await provider.close();
  }
}

runIfMain(import.meta.url, main);
