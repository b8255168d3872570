import { describe, expect, it } from 'vitest';
import {
  FAMILY_CALLERS,
  FAMILY_MAX_RATE_PER_SECOND,
  FAMILY_RESETS,
  FAMILY_SHAPES,
  FAMILY_WINDOWS_MS,
  type FamilyMember,
  familyKey,
  familyProvider,
  hasHints,
  type SimulatedProvider,
  sampleFamilyMember,
  startMockProvider,
  VirtualClock,
} from '../../src/sim/index.js';

const SAMPLE = Array.from({ length: 400 }, (_, i) => sampleFamilyMember(i + 1));

describe('sampleFamilyMember', () => {
  it('draws the same member from the same seed, as plain JSON', () => {
    expect(sampleFamilyMember(17)).toEqual(sampleFamilyMember(17));
    expect(JSON.parse(JSON.stringify(sampleFamilyMember(17)))).toEqual(sampleFamilyMember(17));
    expect(sampleFamilyMember(17)).not.toEqual(sampleFamilyMember(18));
  });

  it('covers every value of every dimension', () => {
    const seen = (pick: (m: FamilyMember) => unknown) => new Set(SAMPLE.map(pick));
    expect(seen((m) => m.shape)).toEqual(new Set(FAMILY_SHAPES));
    expect(seen((m) => m.reset)).toEqual(new Set(FAMILY_RESETS));
    expect(seen((m) => m.windowMs)).toEqual(new Set(FAMILY_WINDOWS_MS));
    expect(seen((m) => m.callers)).toEqual(new Set(FAMILY_CALLERS));
    expect(seen((m) => m.latency)).toEqual(new Set(['fixed-40ms', 'log-normal-400ms']));
    expect(seen((m) => m.retryAfter)).toEqual(new Set(['ms', 'seconds', 'both', 'none']));
    expect(seen((m) => m.successHeaders)).toEqual(new Set(['none', 'requests', 'requests-and-tokens']));
    const hintless = SAMPLE.filter((m) => !hasHints(m)).length / SAMPLE.length;
    expect(hintless).toBeGreaterThan(0.12);
    expect(hintless).toBeLessThan(0.28);
  });

  it('draws unequal integer limits of 2 … 1 000 per window that the callers can saturate twice over', () => {
    for (const member of SAMPLE) {
      expect(member.limits.length).toBeGreaterThanOrEqual(2);
      for (const limit of member.limits) {
        expect(Number.isInteger(limit) && limit >= 2 && limit <= 1_000).toBe(true);
      }
      expect(new Set(member.limits).size).toBeGreaterThan(1);
      const perSecond = (member.limits.reduce((a, b) => a + b, 0) * 1_000) / member.windowMs;
      const meanLatencyMs = member.latency === 'fixed-40ms' ? 40 : 652;
      expect(perSecond).toBeLessThanOrEqual(FAMILY_MAX_RATE_PER_SECOND);
      expect(perSecond * 2).toBeLessThanOrEqual((member.callers * 1_000) / meanLatencyMs);
    }
    expect(Math.max(...SAMPLE.flatMap((m) => m.limits))).toBeGreaterThan(500);
  });
});

const member = (overrides: Partial<FamilyMember>): FamilyMember => ({
  seed: 1,
  shape: 'sliding-log',
  reset: 'next-slot',
  retryAfter: 'both',
  successHeaders: 'requests',
  windowMs: 1_000,
  limits: [2, 3],
  latency: 'fixed-40ms',
  callers: 8,
  ...overrides,
});

/** Two successes and a 429 on k1 (limit 2 per second), 300 ms apart. */
function twoAndARejection(overrides: Partial<FamilyMember>) {
  const clock = new VirtualClock(0);
  const provider = familyProvider(member(overrides), { clock });
  const first = provider.call(familyKey(0), { tokens: 500 });
  clock.advance(300);
  const second = provider.call(familyKey(0), { tokens: 500 });
  clock.advance(300);
  return { clock, provider, first, second, third: provider.call(familyKey(0), { tokens: 500 }) };
}

describe('familyProvider: the headers a member sends', () => {
  it('requests only: x-ratelimit-*-requests with Go-duration resets, on successes and 429s', () => {
    const { second, third } = twoAndARejection({ retryAfter: 'both' });
    expect(second.headers).toEqual({
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '700ms',
    });
    expect(third.status).toBe(429);
    expect(third.headers).toEqual({
      'x-ratelimit-limit-requests': '2',
      'x-ratelimit-remaining-requests': '0',
      'x-ratelimit-reset-requests': '400ms',
      'retry-after': '1',
      'retry-after-ms': '400',
    });
  });

  it('requests and tokens: the token figures too', () => {
    const { first } = twoAndARejection({
      successHeaders: 'requests-and-tokens',
      reset: 'full',
      windowMs: 10_000,
    });
    expect(first.headers).toMatchObject({
      'x-ratelimit-remaining-requests': '1',
      'x-ratelimit-reset-requests': '10s',
      'x-ratelimit-limit-tokens': '4000',
      'x-ratelimit-remaining-tokens': '3500',
      'x-ratelimit-reset-tokens': '10s',
    });
  });

  it('no success headers: successes say nothing; 429s carry the retry headers asked for, exact or rounded up', () => {
    const exact = twoAndARejection({ successHeaders: 'none', retryAfter: 'ms' });
    expect(exact.second.headers).toEqual({});
    expect(exact.third.headers).toEqual({ 'retry-after-ms': '400' });
    exact.clock.advance(399);
    expect(exact.provider.call(familyKey(0)).status).toBe(429);
    exact.clock.advance(1);
    expect(exact.provider.call(familyKey(0)).status).toBe(200);
    expect(twoAndARejection({ successHeaders: 'none', retryAfter: 'seconds' }).third.headers).toEqual({
      'retry-after': '1',
    });
  });

  it('no hints at all: a bare 429', () => {
    const { second, third } = twoAndARejection({ successHeaders: 'none', retryAfter: 'none' });
    expect(second.headers).toEqual({});
    expect(third.status).toBe(429);
    expect(third.headers).toEqual({});
    expect(third.body).toEqual({ error: { message: 'Too many requests' } });
  });

  it('answers 429s in 40 ms and successes at the member latency', () => {
    const { first, third } = twoAndARejection({ latency: 'log-normal-400ms' });
    expect(third.latencyMs).toBe(40);
    expect(first.latencyMs).not.toBe(40);
  });

  it('starts fixed windows at its origin (a run’s start, by default)', () => {
    const clock = new VirtualClock(123_456);
    const provider = familyProvider(member({ shape: 'fixed-window', limits: [2, 3] }), { clock });
    const admitted = (key: string): number => {
      let n = 0;
      while (provider.call(key).status === 200) n++;
      return n;
    };
    expect(admitted(familyKey(0))).toBe(2);
    expect(admitted(familyKey(1))).toBe(3);
    clock.advance(999);
    expect(provider.call(familyKey(0)).status).toBe(429);
    clock.advance(1);
    expect(admitted(familyKey(0))).toBe(2);
  });

  it('reports its capacity and what its buckets bank', () => {
    const clock = new VirtualClock(0);
    const bucket: SimulatedProvider = familyProvider(member({ shape: 'token-bucket', limits: [4, 6] }), {
      clock,
    });
    expect(bucket.capacity(10_000)).toBe(100);
    expect(bucket.banked()).toBe(10);
    bucket.call(familyKey(0));
    expect(bucket.banked()).toBe(9);
    expect(familyProvider(member({}), { clock }).banked()).toBe(0);
  });
});

describe('a member over HTTP', () => {
  it('is served by the mock provider with its own headers', async () => {
    const clock = new VirtualClock(0);
    const provider = familyProvider(member({ retryAfter: 'ms', limits: [2, 3] }), {
      clock,
      latency: () => 0,
    });
    const server = await startMockProvider({ provider });
    try {
      const call = () =>
        fetch(`${server.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${familyKey(0)}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
        });
      const statuses = [];
      let last: Response | undefined;
      for (let i = 0; i < 3; i++) {
        last = await call();
        statuses.push(last.status);
        await last.json();
      }
      expect(statuses).toEqual([200, 200, 429]);
      expect(last?.headers.get('retry-after-ms')).toBe('1000');
      expect(last?.headers.get('retry-after')).toBeNull();
      expect(last?.headers.get('x-ratelimit-remaining-requests')).toBe('0');
    } finally {
      await server.close();
    }
  });
});
