import { KeyPool } from 'keymesh';
import { startLocalProvider } from 'keymesh/sim';

const [keyA, keyB, keyC] = ['sk-fake-budget-key-a', 'sk-fake-budget-key-b', 'sk-fake-budget-key-c'] as const;
const provider = await startLocalProvider({ keys: [keyA, keyB, keyC] }); // a local stand-in for your provider

const pool = await KeyPool.create({
  keys: [
    { key: keyA, rpm: 500, tpm: 200_000, group: 'project-1' }, // budgets, and a shared quota group
    { key: keyB, rpm: 500, tpm: 200_000, group: 'project-1' },
    { key: keyC, rpd: 10_000 },
  ],
});
const lease = await pool.acquire({ tokens: 1_200 }); // reserve the estimate
const response = await fetch(`${provider.url}/v1/chat/completions`, {
  method: 'POST',
  headers: { authorization: `Bearer ${lease.key}`, 'content-type': 'application/json' },
  body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi!' }] }),
});
const { usage } = (await response.json()) as { usage: { prompt_tokens: number; completion_tokens: number } };
lease.release({
  headers: response.headers, // remaining / reset counters: the key rests before any 429
  usage: { inputTokens: usage.prompt_tokens, outputTokens: usage.completion_tokens },
});
await pool.close();
await provider.close();
