/**
 * KeyMesh with the official Anthropic SDK (@anthropic-ai/sdk): the client's `fetch` is
 * `keymeshFetch(pool, { inject: 'x-api-key' })`, so each request carries a leased key in the
 * `x-api-key` header, a 429 (with Anthropic's `anthropic-ratelimit-*-reset` hints) cools that key
 * and is retried on another, and streams release their lease when they end.
 *
 * Runs against the local mock provider (127.0.0.1, fake keys): `npm run example:anthropic`.
 */
import Anthropic from '@anthropic-ai/sdk';
import { KeyPool, keymeshFetch } from '../src/index.js'; // in your app: from 'keymesh'
import { EXAMPLE_KEYS, startLocalProvider } from './support/local-provider.js';
import { type Log, runIfMain } from './support/run.js';

export async function main(log: Log = console.log) {
  const provider = await startLocalProvider({ hints: 'anthropic', requestsPerSecond: 4 });
  const pool = await KeyPool.create({
    keys: EXAMPLE_KEYS.map((key, i) => ({ key, label: `anthropic-${i + 1}` })),
    maxConcurrentPerKey: 2,
  });
  try {
    const anthropic = new Anthropic({
      apiKey: 'unused', // replaced per request by the leased key
      baseURL: provider.url,
      maxRetries: 0, // KeyMesh retries on another key instead
      fetch: keymeshFetch(pool, { inject: 'x-api-key', retries: 6 }),
    });

    const messages = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        anthropic.messages.create({
          model: 'claude-sonnet-4-6',
          max_tokens: 32,
          messages: [{ role: 'user', content: `Question ${i + 1}` }],
        }),
      ),
    );
    const first = messages[0]?.content[0];
    log(`messages: ${messages.length} replies; the first says "${first?.type === 'text' ? first.text : ''}"`);

    const stream = anthropic.messages.stream({
      model: 'claude-sonnet-4-6',
      max_tokens: 32,
      messages: [{ role: 'user', content: 'Stream it' }],
    });
    let streamed = '';
    stream.on('text', (text) => {
      streamed += text;
    });
    await stream.finalMessage();
    log(`stream: ${streamed}`);

    const keys = pool
      .snapshot()
      .keys.map((k) => ({ label: k.label, successes: k.successes, rateLimits: k.rateLimits }));
    for (const k of keys) log(`  ${k.label}: ${k.successes} ok, ${k.rateLimits} rate limited`);
    return { replies: messages.length, first: first?.type === 'text' ? first.text : '', streamed, keys };
  } finally {
    await pool.close();
    await provider.close();
  }
}

runIfMain(import.meta.url, main);
