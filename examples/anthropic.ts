/**
 * KeyMesh with the official Anthropic SDK: one client whose `fetch` is `keymeshFetch`, putting the
 * leased key in the `x-api-key` header. Messages and a stream.
 *
 * Runs against a local stand-in for the Anthropic API (127.0.0.1, fake keys): `npx tsx anthropic.ts`
 * (`npm run example:anthropic` in the KeyMesh repository). With real keys, drop `provider` and `baseURL`.
 */
import Anthropic from '@anthropic-ai/sdk';
import { KeyPool, keymeshFetch } from 'keymesh';
import { startLocalProvider } from 'keymesh/sim';

const KEYS = ['sk-ant-fake-example-0001', 'sk-ant-fake-example-0002', 'sk-ant-fake-example-0003'];
// The stand-in admits 10 requests per second per key, and answers a 429 beyond.
const provider = await startLocalProvider({ keys: KEYS, requestsPerSecond: 10, hints: 'anthropic' });
// Each key's rate (4 a second, well under the provider's 10), so that KeyMesh paces the keys: no 429s.
const pool = await KeyPool.create({
  keys: KEYS.map((key, i) => ({ key, label: `anthropic-${i + 1}`, rpm: 240 })),
});

try {
  const anthropic = new Anthropic({
    apiKey: 'unused', // replaced per request by the leased key
    baseURL: provider.url,
    maxRetries: 0, // KeyMesh would retry on another key instead
    fetch: keymeshFetch(pool, { inject: 'x-api-key' }),
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
  console.log(
    `messages: ${messages.length} replies; the first says "${first?.type === 'text' ? first.text : ''}"`,
  );

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
  console.log(`stream: ${streamed}`);

  for (const k of pool.snapshot().keys) console.log(`  ${k.label}: ${k.successes} ok`);
  const m = pool.snapshot().metrics;
  console.log(
    `pool: ${m.acquires} leases, ${m.releases} ok, ${m.rateLimits} rate limited, ${m.failures} failed`,
  );
} finally {
  await pool.close();
  await provider.close();
}
