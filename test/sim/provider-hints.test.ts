import { describe, expect, it } from 'vitest';
import {
  type RateLimitHintStyle,
  SimulatedProvider,
  type SimulatedProviderOptions,
  type SimulatedResponse,
  VirtualClock,
} from '../../src/sim/index.js';

const KEY = 'sk-hints-00000000000000000001';
const T0 = 1_700_000_000_000;

function provider(options: Partial<SimulatedProviderOptions> = {}): {
  clock: VirtualClock;
  provider: SimulatedProvider;
} {
  const clock = new VirtualClock(T0);
  return {
    clock,
    provider: new SimulatedProvider({
      clock,
      keys: [{ key: KEY, limits: { requestsPerSecond: 2, tokensPerMinute: 1000 } }],
      ...options,
    }),
  };
}

/** Two admitted calls of 100 tokens at T0 and T0 + 100 ms, then a third at T0 + 200 ms: 429, 800 ms to wait. */
function thirdCallOfASecond(hints: RateLimitHintStyle): SimulatedResponse {
  const { clock, provider: sim } = provider({ hints });
  expect(sim.call(KEY, { tokens: 100 }).status).toBe(200);
  clock.advance(100);
  expect(sim.call(KEY, { tokens: 100 }).status).toBe(200);
  clock.advance(100);
  return sim.call(KEY, { tokens: 100 });
}

const OPENAI_RATE_LIMIT_BODY = {
  error: {
    message: expect.stringContaining(
      'requests per second (RPS): Limit 2, Used 2, Requested 1. Please try again in 800ms.',
    ),
    type: 'requests',
    param: null,
    code: 'rate_limit_exceeded',
  },
};

describe('429 hints', () => {
  it('states the exact wait and the limit that was reached', () => {
    const response = thirdCallOfASecond('retry-after');
    expect(response).toMatchObject({
      outcome: 'rate-limited',
      status: 429,
      retryAfterMs: 800,
      breach: { kind: 'requests', window: 'second', limit: 2, used: 2 },
    });
  });

  it("'retry-after' sends whole seconds, rounded up, and OpenAI's error body", () => {
    const response = thirdCallOfASecond('retry-after');
    expect(response.headers).toEqual({ 'retry-after': '1' });
    expect(response.body).toEqual(OPENAI_RATE_LIMIT_BODY);
  });

  it("'openai' sends x-ratelimit-* for requests and tokens, resets as Go durations", () => {
    const response = thirdCallOfASecond('openai');
    expect(response.headers).toEqual({
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '800ms',
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '800',
      'x-ratelimit-reset-tokens': '59.8s',
    });
    expect(response.body).toEqual(OPENAI_RATE_LIMIT_BODY);
  });

  it("'openai' names the token limit when tokens ran out", () => {
    const { provider: sim } = provider({ hints: 'openai' });
    expect(sim.call(KEY, { tokens: 600 }).status).toBe(200);
    const response = sim.call(KEY, { tokens: 600 });
    expect(response.headers).toMatchObject({
      'x-ratelimit-remaining-requests': '1',
      'x-ratelimit-remaining-tokens': '400',
      'x-ratelimit-reset-tokens': '1m0s',
    });
    expect(response.body).toEqual({
      error: {
        message: expect.stringContaining('tokens per min (TPM): Limit 1000, Used 600, Requested 600'),
        type: 'tokens',
        param: null,
        code: 'rate_limit_exceeded',
      },
    });
  });

  it("'anthropic' sends anthropic-ratelimit-* with RFC 3339 resets, retry-after and Anthropic's error body", () => {
    const response = thirdCallOfASecond('anthropic');
    expect(response.headers).toEqual({
      'anthropic-ratelimit-requests-limit': '2',
      'anthropic-ratelimit-requests-remaining': '0',
      'anthropic-ratelimit-requests-reset': new Date(T0 + 1000).toISOString(),
      'anthropic-ratelimit-tokens-limit': '1000',
      'anthropic-ratelimit-tokens-remaining': '800',
      'anthropic-ratelimit-tokens-reset': new Date(T0 + 60_000).toISOString(),
      'retry-after': '1',
    });
    expect(response.body).toEqual({
      type: 'error',
      error: {
        type: 'rate_limit_error',
        message: expect.stringContaining('rate limit of 2 requests per second'),
      },
    });
  });

  it("'gemini' sends RESOURCE_EXHAUSTED with a QuotaFailure and a RetryInfo delay", () => {
    const response = thirdCallOfASecond('gemini');
    expect(response.headers).toEqual({});
    expect(response.body).toEqual({
      error: {
        code: 429,
        status: 'RESOURCE_EXHAUSTED',
        message: expect.stringContaining('Please retry in 0.8s.'),
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
            violations: [
              expect.objectContaining({
                quotaId: 'GenerateRequestsPerSecondPerProjectPerModel',
                quotaValue: '2',
              }),
            ],
          },
          { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '0.8s' },
        ],
      },
    });
  });

  it("'none' sends a bare 429: no header, no hint in the body", () => {
    const response = thirdCallOfASecond('none');
    expect(response.status).toBe(429);
    expect(response.headers).toEqual({});
    expect(JSON.stringify(response.body)).not.toMatch(/retry|reset|limit/i);
  });
});

describe('success responses', () => {
  it('carry no rate-limit headers by default', () => {
    const { provider: sim } = provider();
    expect(sim.call(KEY).headers).toEqual({});
  });

  it('carry OpenAI remaining/reset headers with successHeaders', () => {
    const { clock, provider: sim } = provider({ successHeaders: true });
    sim.call(KEY, { tokens: 100 });
    clock.advance(250);
    expect(sim.call(KEY, { tokens: 50 }).headers).toEqual({
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '750ms',
      'x-ratelimit-limit-tokens': '1000',
      'x-ratelimit-remaining-tokens': '850',
      'x-ratelimit-reset-tokens': '59.75s',
    });
  });

  it('report the next reset while requests remain', () => {
    const { provider: sim } = provider({ successHeaders: true, hints: 'openai' });
    expect(sim.call(KEY).headers).toMatchObject({
      'x-ratelimit-remaining-requests': '1',
      'x-ratelimit-reset-requests': '1s',
    });
  });

  it("carry Anthropic headers with successHeaders and 'anthropic' hints", () => {
    const { provider: sim } = provider({ successHeaders: true, hints: 'anthropic' });
    expect(sim.call(KEY, { tokens: 10 }).headers).toEqual({
      'anthropic-ratelimit-requests-limit': '2',
      'anthropic-ratelimit-requests-remaining': '1',
      'anthropic-ratelimit-requests-reset': new Date(T0 + 1000).toISOString(),
      'anthropic-ratelimit-tokens-limit': '1000',
      'anthropic-ratelimit-tokens-remaining': '990',
      'anthropic-ratelimit-tokens-reset': new Date(T0 + 60_000).toISOString(),
    });
  });

  it('answer with a completion in the dialect of the hint style', () => {
    expect(provider({ hints: 'openai' }).provider.call(KEY, { tokens: 7 }).body).toMatchObject({
      id: expect.stringMatching(/^chatcmpl-/),
      object: 'chat.completion',
      created: T0 / 1000,
      choices: [
        { index: 0, message: { role: 'assistant', content: expect.any(String) }, finish_reason: 'stop' },
      ],
      usage: { prompt_tokens: 7 },
    });
    expect(provider({ hints: 'anthropic' }).provider.call(KEY).body).toMatchObject({
      id: expect.stringMatching(/^msg_/),
      type: 'message',
      role: 'assistant',
      content: [{ type: 'text', text: expect.any(String) }],
      stop_reason: 'end_turn',
    });
    expect(provider({ hints: 'gemini' }).provider.call(KEY).body).toMatchObject({
      candidates: [
        { content: { role: 'model', parts: [{ text: expect.any(String) }] }, finishReason: 'STOP' },
      ],
    });
  });
});
