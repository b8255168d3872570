import { describe, expect, it } from 'vitest';
import {
  type HeadersInput,
  parseDurationString,
  parseRateLimitHeaders,
  parseRetryAfter,
  readHeader,
} from '../../src/limits/index.js';
import { anthropicInputExhaustedHeaders, anthropicSuccessHeaders } from './fixtures/anthropic.js';
import { azurePlaceholderHeaders } from './fixtures/azure.js';
import { httpDateAfter, isoAfter, NOW } from './fixtures/clock.js';
import { openAiSuccessHeaders } from './fixtures/openai.js';

describe('parseDurationString', () => {
  for (const { name, value, ms } of [
    { name: 'reads OpenAI minutes-and-seconds resets', value: '6m0s', ms: 360_000 },
    { name: 'reads fractional seconds', value: '1.5s', ms: 1_500 },
    { name: 'reads milliseconds without confusing them with minutes', value: '20ms', ms: 20 },
    { name: 'reads hours, minutes and fractional seconds together', value: '1h2m3.5s', ms: 3_723_500 },
    { name: 'reads a Gemini retryDelay', value: '46s', ms: 46_000 },
    { name: 'reads the long delay Gemini puts in per-day messages', value: '10h17m5.7s', ms: 37_025_700 },
    { name: 'reads a bare zero as Go does', value: '0', ms: 0 },
    { name: 'does not add a millisecond for float noise', value: '0.1s', ms: 100 },
    { name: 'rounds sub-millisecond remainders up', value: '1.000340s', ms: 1_001 },
    { name: 'reads microseconds', value: '1500us', ms: 2 },
    { name: 'ignores surrounding whitespace', value: ' 2s ', ms: 2_000 },
  ]) {
    it(name, () => {
      expect(parseDurationString(value)).toBe(ms);
    });
  }

  it.each(['', 'soon', '5', '-1s', '5 s', '5x', '1m-2s', 's', '1.2.3s', 'Infinitys'])(
    'rejects %j as not a duration',
    (value) => {
      expect(parseDurationString(value)).toBeUndefined();
    },
  );
});

describe('parseRetryAfter', () => {
  for (const { name, value, ms } of [
    { name: 'reads delay-seconds', value: '30', ms: 30_000 },
    { name: 'reads fractional seconds some gateways send', value: '1.5', ms: 1_500 },
    { name: 'reads zero as retry now', value: '0', ms: 0 },
    { name: 'reads a number as seconds', value: 2, ms: 2_000 },
    { name: 'trims whitespace around the value', value: ' 7 ', ms: 7_000 },
    { name: 'reads an IMF-fixdate in the future as ms from now', value: httpDateAfter(90_000), ms: 90_000 },
    { name: 'clamps an HTTP-date in the past to 0', value: httpDateAfter(-60_000), ms: 0 },
    { name: 'reads the obsolete RFC 850 date form', value: 'Wednesday, 01-Jan-25 12:00:10 GMT', ms: 10_000 },
    { name: 'reads an asctime date as GMT, not local time', value: 'Wed Jan  1 12:00:05 2025', ms: 5_000 },
  ]) {
    it(name, () => {
      expect(parseRetryAfter(value, NOW)).toBe(ms);
    });
  }

  for (const { name, value } of [
    { name: 'ignores words', value: 'soon' },
    { name: 'ignores negative seconds, which HTTP does not allow', value: '-5' },
    { name: 'ignores an empty value', value: '' },
    { name: 'ignores a missing value', value: undefined },
    { name: 'ignores a non-finite number', value: Number.NaN },
    { name: 'ignores an ISO timestamp, which is not an HTTP-date', value: isoAfter(1_000) },
    { name: 'ignores a date-like string V8 would otherwise guess at', value: 'Jan 1' },
  ]) {
    it(name, () => {
      expect(parseRetryAfter(value, NOW)).toBeUndefined();
    });
  }
});

describe('readHeader', () => {
  const record = { 'Retry-After': '12', 'x-ratelimit-remaining-requests': 7, 'set-cookie': ['a=1', 'b=2'] };
  const sources: { kind: string; headers: HeadersInput }[] = [
    { kind: 'a WHATWG Headers', headers: new Headers({ 'Retry-After': '12' }) },
    { kind: 'a plain object', headers: record },
    { kind: 'a Map', headers: new Map([['Retry-After', '12']]) },
  ];

  for (const { kind, headers } of sources) {
    it(`reads a header from ${kind} whatever the case of the name`, () => {
      expect(readHeader(headers, 'retry-after')).toBe('12');
      expect(readHeader(headers, 'RETRY-AFTER')).toBe('12');
    });
  }

  it('reads numbers from a plain object as strings', () => {
    expect(readHeader(record, 'X-RateLimit-Remaining-Requests')).toBe('7');
  });

  it('takes the first value of a repeated header', () => {
    expect(readHeader(record, 'set-cookie')).toBe('a=1');
  });

  it('treats a missing header, an empty value and missing headers as absent', () => {
    expect(readHeader(record, 'x-missing')).toBeUndefined();
    expect(readHeader({ 'retry-after': '  ' }, 'retry-after')).toBeUndefined();
    expect(readHeader(undefined, 'retry-after')).toBeUndefined();
    expect(readHeader(null, 'retry-after')).toBeUndefined();
  });

  it('treats a throwing get() as an absent header instead of throwing', () => {
    const hostile: HeadersInput = {
      get() {
        throw new Error('boom');
      },
    };
    expect(readHeader(hostile, 'retry-after')).toBeUndefined();
  });
});

describe('parseRateLimitHeaders', () => {
  it('reads the full OpenAI header set with Go-duration resets', () => {
    expect(parseRateLimitHeaders(openAiSuccessHeaders, NOW)).toStrictEqual({
      limitRequests: 5000,
      remainingRequests: 4999,
      resetRequestsMs: 12,
      limitTokens: 800_000,
      remainingTokens: 799_412,
      resetTokensMs: 44,
    });
  });

  it('reads Anthropic RFC 3339 resets and reports the tightest token bucket', () => {
    // Output tokens have 79 000 left, fewer than input (397 000) or total (476 000).
    expect(parseRateLimitHeaders(new Headers(anthropicSuccessHeaders), NOW)).toStrictEqual({
      limitRequests: 4000,
      remainingRequests: 3999,
      resetRequestsMs: 15,
      limitTokens: 80_000,
      remainingTokens: 79_000,
      resetTokensMs: 750,
    });
  });

  it('reports the exhausted input bucket, not the output bucket that still has room', () => {
    expect(parseRateLimitHeaders(anthropicInputExhaustedHeaders, NOW)).toMatchObject({
      remainingTokens: 0,
      limitTokens: 50_000,
      resetTokensMs: 37_000,
    });
  });

  it('waits for the later reset when two token buckets are empty at once', () => {
    const headers = {
      'anthropic-ratelimit-input-tokens-remaining': '0',
      'anthropic-ratelimit-input-tokens-reset': isoAfter(10_000),
      'anthropic-ratelimit-output-tokens-remaining': '0',
      'anthropic-ratelimit-output-tokens-reset': isoAfter(30_000),
    };
    expect(parseRateLimitHeaders(headers, NOW)).toStrictEqual({ remainingTokens: 0, resetTokensMs: 30_000 });
  });

  it('clamps an Anthropic reset already in the past to 0', () => {
    const headers = {
      'anthropic-ratelimit-requests-remaining': '0',
      'anthropic-ratelimit-requests-reset': isoAfter(-5_000),
    };
    expect(parseRateLimitHeaders(headers, NOW)).toStrictEqual({ remainingRequests: 0, resetRequestsMs: 0 });
  });

  it('ignores Azure placeholders instead of reading them as an empty window', () => {
    expect(parseRateLimitHeaders(azurePlaceholderHeaders, NOW)).toStrictEqual({});
  });

  for (const { name, headers, ms } of [
    {
      name: 'prefers retry-after-ms over retry-after',
      headers: { 'retry-after': '3', 'retry-after-ms': '2500' },
      ms: 2_500,
    },
    {
      name: 'reads the Azure x-ms-retry-after-ms header',
      headers: { 'x-ms-retry-after-ms': '1800' },
      ms: 1_800,
    },
    { name: 'falls back to retry-after seconds', headers: { 'retry-after': '4' }, ms: 4_000 },
    {
      name: 'falls back to retry-after when retry-after-ms is garbage',
      headers: { 'retry-after-ms': 'x', 'retry-after': '4' },
      ms: 4_000,
    },
  ]) {
    it(name, () => {
      expect(parseRateLimitHeaders(headers, NOW).retryAfterMs).toBe(ms);
    });
  }

  it('ignores garbage values and keeps the readable ones', () => {
    const headers = {
      'retry-after': 'later',
      'x-ratelimit-limit-requests': 'many',
      'x-ratelimit-remaining-requests': '12',
      'x-ratelimit-reset-requests': 'whenever',
      'x-ratelimit-remaining-tokens': '1e9',
      'x-ratelimit-reset-tokens': '-3s',
    };
    expect(parseRateLimitHeaders(headers, NOW)).toStrictEqual({ remainingRequests: 12 });
  });

  it('returns an empty object when there are no rate-limit headers or no headers at all', () => {
    expect(parseRateLimitHeaders({ 'content-type': 'application/json' }, NOW)).toStrictEqual({});
    expect(parseRateLimitHeaders(undefined, NOW)).toStrictEqual({});
  });

  it('gives the same answer from a Headers, a Map and a plain object', () => {
    const entries = Object.entries(openAiSuccessHeaders).map(
      ([name, value]) => [name.toUpperCase(), value] as const,
    );
    const expected = parseRateLimitHeaders(openAiSuccessHeaders, NOW);
    expect(parseRateLimitHeaders(new Headers(Object.fromEntries(entries)), NOW)).toStrictEqual(expected);
    expect(parseRateLimitHeaders(new Map(entries), NOW)).toStrictEqual(expected);
    expect(parseRateLimitHeaders(Object.fromEntries(entries), NOW)).toStrictEqual(expected);
  });
});

describe('parseRateLimitHeaders on APIs that are neither OpenAI nor Anthropic', () => {
  const inSeconds = (seconds: number) => String(Math.floor(NOW / 1000) + seconds);

  it("reads GitHub's X-RateLimit-* with the reset as an epoch second", () => {
    expect(
      parseRateLimitHeaders(
        { 'X-RateLimit-Limit': '5000', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': inSeconds(60) },
        Math.floor(NOW / 1000) * 1000,
      ),
    ).toStrictEqual({ limitRequests: 5000, remainingRequests: 0, resetRequestsMs: 60_000 });
  });

  it('reads a gateway X-RateLimit-Reset in delta-seconds, and an epoch second just past as now', () => {
    expect(
      parseRateLimitHeaders({ 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '30' }, NOW),
    ).toStrictEqual({ remainingRequests: 3, resetRequestsMs: 30_000 });
    expect(
      parseRateLimitHeaders({ 'x-ratelimit-reset': inSeconds(-2) }, Math.floor(NOW / 1000) * 1000),
    ).toStrictEqual({ resetRequestsMs: 0 });
  });

  it("reads the IETF draft's RateLimit-* fields, a quota policy after the limit included", () => {
    expect(
      parseRateLimitHeaders(
        { 'RateLimit-Limit': '100, 100;w=60', 'RateLimit-Remaining': '0', 'RateLimit-Reset': '7' },
        NOW,
      ),
    ).toStrictEqual({ limitRequests: 100, remainingRequests: 0, resetRequestsMs: 7_000 });
  });

  it("reads the IETF draft's single RateLimit field in both of its forms", () => {
    expect(parseRateLimitHeaders({ RateLimit: 'limit=100, remaining=50, reset=30' }, NOW)).toStrictEqual({
      limitRequests: 100,
      remainingRequests: 50,
      resetRequestsMs: 30_000,
    });
    // Two policies: the one with less remaining binds, with its own reset.
    expect(parseRateLimitHeaders({ RateLimit: '"burst";r=40;t=1, "daily";r=2;t=3600' }, NOW)).toStrictEqual({
      remainingRequests: 2,
      resetRequestsMs: 3_600_000,
    });
  });

  it('takes the tighter of OpenAI-style and generic counters when a gateway adds its own', () => {
    expect(
      parseRateLimitHeaders(
        {
          'x-ratelimit-remaining-requests': '40',
          'x-ratelimit-reset-requests': '1s',
          'x-ratelimit-remaining': '0',
          'x-ratelimit-reset': '5',
        },
        NOW,
      ),
    ).toStrictEqual({ remainingRequests: 0, resetRequestsMs: 5_000 });
  });

  it('ignores garbage in the generic fields', () => {
    expect(
      parseRateLimitHeaders(
        { RateLimit: 'limit=-1, remaining=abc', 'x-ratelimit-remaining': '-1', 'ratelimit-reset': 'soon' },
        NOW,
      ),
    ).toStrictEqual({});
  });
});
