import Anthropic from '@anthropic-ai/sdk';
import { KeyPool, keymeshFetch } from 'keymesh';
import { startLocalProvider } from 'keymesh/sim';
import OpenAI from 'openai';

const keys = ['sk-fake-client-key-a', 'sk-fake-client-key-b'];
const provider = await startLocalProvider({ keys }); // a local stand-in: drop `baseURL` for the real APIs
const pool = await KeyPool.create({ keys });

const openai = new OpenAI({ apiKey: 'unused', baseURL: `${provider.url}/v1`, fetch: keymeshFetch(pool) }); // Bearer
const claude = new Anthropic({
  apiKey: 'unused',
  baseURL: provider.url,
  fetch: keymeshFetch(pool, { inject: 'x-api-key' }),
});

const chat = await openai.chat.completions.create({
  model: 'gpt-4o-mini',
  messages: [{ role: 'user', content: 'Hi!' }],
});
const message = await claude.messages.create({
  model: 'claude-sonnet-4-6',
  max_tokens: 64,
  messages: [{ role: 'user', content: 'Hi!' }],
});
console.log(chat.choices[0]?.message.content, message.content[0]?.type);
await pool.close();
await provider.close();
