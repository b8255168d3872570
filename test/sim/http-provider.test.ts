import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type MockProviderServer,
  SimulatedProvider,
  startMockProvider,
  VirtualClock,
} from '../../src/sim/index.js';

const OPENAI_KEY = 'sk-http-openai-000000000001';
const LIMITED_KEY = 'sk-http-limited-00000000002';
const ANTHROPIC_KEY = 'sk-ant-http-0000000000000003';

// The provider's clock stands still, so its limits are deterministic; latency is zero, so the server
// answers without waiting.
const provider = new SimulatedProvider({
  clock: new VirtualClock(),
  successHeaders: true,
  keys: [
    { key: OPENAI_KEY, limits: { requestsPerMinute: 100 } },
    { key: LIMITED_KEY, limits: { requestsPerMinute: 1 } },
    { key: ANTHROPIC_KEY },
  ],
});

let server: MockProviderServer;

beforeAll(async () => {
  server = await startMockProvider({ provider, port: 0 });
});

afterAll(async () => {
  await server.close();
});

function chat(key: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-sim', messages: [{ role: 'user', content: 'Hello there' }], ...body }),
  });
}

function messages(body: Record<string, unknown>): Promise<Response> {
  return fetch(`${server.url}/v1/messages`, {
    method: 'POST',
    headers: {
      'x-api-key': ANTHROPIC_KEY,
      'anthropic-version': '2023-06-01',
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      model: 'claude-sim',
      max_tokens: 5,
      messages: [{ role: 'user', content: 'Hi' }],
      ...body,
    }),
  });
}

/** The `data:` payloads and `event:` names of an SSE body. */
function parseSse(text: string): { events: string[]; data: string[] } {
  const events: string[] = [];
  const data: string[] = [];
  for (const block of text.split('\n\n').filter((b) => b.length > 0)) {
    for (const line of block.split('\n')) {
      if (line.startsWith('event: ')) events.push(line.slice('event: '.length));
      if (line.startsWith('data: ')) data.push(line.slice('data: '.length));
    }
  }
  return { events, data };
}

describe('mock provider over HTTP', () => {
  it('listens on 127.0.0.1 on a port chosen by the OS', () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
    expect(server.port).toBeGreaterThan(0);
  });

  it('answers an OpenAI chat completion as JSON with rate-limit headers', async () => {
    const res = await chat(OPENAI_KEY, {});
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('x-request-id')).toMatch(/^req_/);
    expect(res.headers.get('x-ratelimit-limit-requests')).toBe('100');
    expect(res.headers.get('x-ratelimit-remaining-requests')).toBe('99');
    const body = await res.json();
    expect(body).toMatchObject({
      id: expect.stringMatching(/^chatcmpl-/),
      object: 'chat.completion',
      model: 'gpt-sim',
      choices: [
        { index: 0, message: { role: 'assistant', content: expect.any(String) }, finish_reason: 'stop' },
      ],
      usage: { prompt_tokens: 3, completion_tokens: expect.any(Number), total_tokens: expect.any(Number) },
    });
  });

  it('streams an OpenAI chat completion as SSE chunks ending in [DONE]', async () => {
    const res = await chat(OPENAI_KEY, {
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 3,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const { data } = parseSse(await res.text());
    expect(data.at(-1)).toBe('[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    for (const chunk of chunks)
      expect(chunk).toMatchObject({ object: 'chat.completion.chunk', id: chunks[0].id });
    expect(chunks[0].choices[0].delta).toEqual({ role: 'assistant', content: '' });
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    expect(text.split(' ')).toHaveLength(3);
    expect(chunks.at(-2).choices[0].finish_reason).toBe('stop');
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 3 } });
  });

  it('answers 429 with retry-after and an OpenAI error body once the key is limited', async () => {
    expect((await chat(LIMITED_KEY, {})).status).toBe(200);
    const res = await chat(LIMITED_KEY, {});
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('60');
    expect(await res.json()).toMatchObject({ error: { type: 'requests', code: 'rate_limit_exceeded' } });
  });

  it('answers an Anthropic message as JSON, reading the key from x-api-key', async () => {
    const res = await messages({});
    expect(res.status).toBe(200);
    expect(res.headers.get('request-id')).toMatch(/^req_/);
    expect(await res.json()).toMatchObject({
      id: expect.stringMatching(/^msg_/),
      type: 'message',
      role: 'assistant',
      model: 'claude-sim',
      content: [{ type: 'text', text: expect.any(String) }],
      stop_reason: 'end_turn',
      usage: { input_tokens: 1, output_tokens: 5 },
    });
  });

  it("streams an Anthropic message with Anthropic's event types", async () => {
    const res = await messages({ stream: true });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const { events, data } = parseSse(await res.text());
    expect(events[0]).toBe('message_start');
    expect(events).toContain('content_block_delta');
    expect(events.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
    expect(data.map((d) => JSON.parse(d).type)).toEqual(events);
  });

  it('answers 401 to an unknown key and 404 to an unknown route', async () => {
    expect((await chat('sk-who-is-this', {})).status).toBe(401);
    const res = await fetch(`${server.url}/v1/nothing`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(404);
  });
});
