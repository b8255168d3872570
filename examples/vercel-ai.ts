/**
 * KeyMesh with the Vercel AI SDK (ai@6 + @ai-sdk/openai): the provider is given
 * `keymeshFetch(pool)` as its custom `fetch`, so `generateText` and `streamText` spread their
 * requests over the pool's keys, with rate limits retried on another key.
 *
 * Runs against the local mock provider (127.0.0.1, fake keys): `npm run example:vercel-ai`.
 */
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText } from 'ai';
import { KeyPool, keymeshFetch } from '../src/index.js'; // in your app: from 'keymesh'
import { EXAMPLE_KEYS, startLocalProvider } from './support/local-provider.js';
import { type Log, runIfMain } from './support/run.js';

export async function main(log: Log = console.log) {
  const provider = await startLocalProvider({ hints: 'openai', requestsPerSecond: 5 });
  const pool = await KeyPool.create({ keys: [...EXAMPLE_KEYS], maxConcurrentPerKey: 2 });
  try {
    const openai = createOpenAI({
      apiKey: 'unused', // replaced per request by the leased key
      baseURL: `${provider.url}/v1`,
      fetch: keymeshFetch(pool, { retries: 6 }),
    });
    // `.chat(…)` selects the Chat Completions API (the mock serves it; `openai(…)` would use Responses).
    const model = openai.chat('gpt-4o-mini');

    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        generateText({ model, prompt: `Question ${i + 1}`, maxRetries: 0 }),
      ),
    );
    log(`generateText: ${results.length} replies; the first says "${results[0]?.text ?? ''}"`);

    const stream = streamText({ model, prompt: 'Stream it', maxRetries: 0 });
    let streamed = '';
    for await (const text of stream.textStream) streamed += text;
    log(`streamText: ${streamed}`);

    const { metrics } = pool.snapshot();
    log(
      `pool: ${metrics.acquires} leases, ${metrics.releases} successes, ${metrics.rateLimits} rate limited`,
    );
    return { replies: results.length, first: results[0]?.text ?? '', streamed, metrics };
  } finally {
    await pool.close();
    await provider.close();
  }
}

runIfMain(import.meta.url, main);
