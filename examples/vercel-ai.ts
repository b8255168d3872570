/**
 * KeyMesh with the Vercel AI SDK (ai@6 + @ai-sdk/openai): the provider is given
 * `keymeshFetch(pool)` as its custom `fetch`, so `generateText` and `streamText` spread their
 * requests over the pool's keys.
 *
 * Runs against a local stand-in for the OpenAI API (127.0.0.1, fake keys): `npx tsx vercel-ai.ts`
 * (`npm run example:vercel-ai` in the KeyMesh repository). With real keys, drop `provider` and `baseURL`.
 */
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';
import { KeyPool, keymeshFetch } from 'keymesh';
import { startLocalProvider } from 'keymesh/sim';

const KEYS = ['sk-fake-example-vercel-0001', 'sk-fake-example-vercel-0002', 'sk-fake-example-vercel-0003'];
// The stand-in admits 10 requests per second per key, and answers a 429 beyond.
const provider = await startLocalProvider({ keys: KEYS, requestsPerSecond: 10, hints: 'openai' });
// Each key's rate (4 a second, well under the provider's 10), so that KeyMesh paces the keys: no 429s.
const pool = await KeyPool.create({ keys: KEYS.map((key) => ({ key, rpm: 240 })) });

try {
  const openai = createOpenAI({
    apiKey: 'unused', // replaced per request by the leased key
    baseURL: `${provider.url}/v1`,
    fetch: keymeshFetch(pool),
  });
  // `.chat(…)` selects the Chat Completions API (the stand-in serves it; `openai(…)` would use Responses).
  const model = openai.chat('gpt-4o-mini');

  const results = await Promise.all(
    Array.from({ length: 12 }, (_, i) => generateText({ model, prompt: `Question ${i + 1}`, maxRetries: 0 })),
  );
  console.log(`generateText: ${results.length} replies; the first says "${results[0]?.text}"`);

  const stream = streamText({ model, prompt: 'Stream it', maxRetries: 0 });
  let streamed = '';
  for await (const text of stream.textStream) streamed += text;
  console.log(`streamText: ${streamed}`);

  const m = pool.snapshot().metrics;
  console.log(
    `pool: ${m.acquires} leases, ${m.releases} ok, ${m.rateLimits} rate limited, ${m.failures} failed`,
  );
} finally {
  await pool.close();
  await provider.close();
}
