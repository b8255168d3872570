import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { keymeshFetch } from '../../src/fetch.js';
import { Lease } from '../../src/index.js';
import { fetchKey, type MockSetup, mockProviders } from './support.js';

const start = mockProviders();
const [K1, K2] = [fetchKey(11), fetchKey(12)] as const;

afterEach(() => {
  vi.restoreAllMocks();
});

function openai({ pool, clock, url }: MockSetup): OpenAI {
  return new OpenAI({
    apiKey: 'unused',
    baseURL: `${url}/v1`,
    fetch: keymeshFetch(pool, { clock }),
    maxRetries: 0,
  });
}

function anthropic({ pool, clock, url }: MockSetup): Anthropic {
  return new Anthropic({
    apiKey: 'unused',
    baseURL: url,
    fetch: keymeshFetch(pool, { clock, inject: 'x-api-key' }),
    maxRetries: 0,
  });
}

const messages = [{ role: 'user' as const, content: 'Hello there' }];

describe('keymeshFetch with the openai SDK', () => {
  it('answers a chat completion and releases the lease', async () => {
    const setup = await start([{ key: K1 }]);
    const completion = await openai(setup).chat.completions.create({ model: 'gpt-sim', messages });

    expect(completion.choices[0]?.message.content).toEqual(expect.any(String));
    expect(completion.usage?.prompt_tokens).toBe(3);
    expect(setup.provider.keyStats(K1).successes).toBe(1);
    expect(setup.pool.snapshot().keys[0]).toMatchObject({ inFlight: 0, successes: 1 });
  });

  it('streams a chat completion; the lease is out until the stream ends', async () => {
    const setup = await start([{ key: K1 }]);
    const stream = await openai(setup).chat.completions.create({
      model: 'gpt-sim',
      messages,
      max_tokens: 4,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(setup.pool.snapshot().keys[0]?.inFlight).toBe(1);
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';

    expect(text.split(' ')).toHaveLength(4);
    expect(setup.pool.snapshot().keys[0]).toMatchObject({ inFlight: 0, successes: 1 });
  });

  it('gets the answer of another key when the first is rate limited', async () => {
    const setup = await start([{ key: K1, limits: { requestsPerMinute: 1 } }, { key: K2 }]);
    setup.provider.call(K1);
    const completion = await openai(setup).chat.completions.create({ model: 'gpt-sim', messages });

    expect(completion.object).toBe('chat.completion');
    expect(setup.pool.snapshot().keys.map((k) => k.state)).toEqual(['cooling', 'available']);
  });
});

describe('keymeshFetch with the @anthropic-ai/sdk SDK', () => {
  it('answers a message and releases the lease with its usage', async () => {
    const setup = await start([{ key: K1 }], { provider: { hints: 'anthropic' } });
    const release = vi.spyOn(Lease.prototype, 'release');
    const message = await anthropic(setup).messages.create({ model: 'claude-sim', max_tokens: 5, messages });

    expect(message.content[0]).toMatchObject({ type: 'text', text: expect.any(String) });
    expect(release).toHaveBeenCalledWith({
      headers: expect.any(Headers),
      usage: { inputTokens: 3, outputTokens: 5 },
    });
    expect(setup.pool.snapshot().keys[0]).toMatchObject({ inFlight: 0, successes: 1 });
  });

  it('streams a message; the lease is released with the usage the events carried', async () => {
    const setup = await start([{ key: K1 }], { provider: { hints: 'anthropic' } });
    const release = vi.spyOn(Lease.prototype, 'release');
    const stream = await anthropic(setup).messages.create({
      model: 'claude-sim',
      max_tokens: 3,
      messages,
      stream: true,
    });
    expect(setup.pool.snapshot().keys[0]?.inFlight).toBe(1);
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);

    expect(types.at(-1)).toBe('message_stop');
    expect(release).toHaveBeenCalledWith({
      headers: expect.any(Headers),
      usage: { inputTokens: 3, outputTokens: 3 },
    });
    expect(setup.pool.snapshot().keys[0]).toMatchObject({ inFlight: 0, successes: 1 });
  });

  it('collects a streamed message with the helper, after a revoked key', async () => {
    const setup = await start([{ key: K1, revokedAt: 0 }, { key: K2 }], { provider: { hints: 'anthropic' } });
    const message = await anthropic(setup)
      .messages.stream({ model: 'claude-sim', max_tokens: 2, messages })
      .finalMessage();

    expect(message.stop_reason).toBe('end_turn');
    expect(setup.pool.snapshot().keys[0]).toMatchObject({ state: 'exhausted', reason: 'revoked' });
  });
});
