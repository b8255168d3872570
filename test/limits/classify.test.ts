import { describe, expect, it } from 'vitest';
import { classifyOutcome, type Outcome } from '../../src/limits/index.js';
import {
  anthropicApiErrorBody,
  anthropicAuthenticationBody,
  anthropicBillingBody,
  anthropicCreditTooLowBody,
  anthropicInputExhaustedHeaders,
  anthropicInvalidRequestBody,
  anthropicOverloadedBody,
  anthropicPermissionBody,
  anthropicRateLimitBody,
  anthropicSuccessHeaders,
  anthropicWorkspaceLimitBody,
} from './fixtures/anthropic.js';
import {
  azure429Body,
  azure429Headers,
  azureOnlyMsRetryHeaders,
  azurePlaceholderHeaders,
} from './fixtures/azure.js';
import { httpDateAfter, NOW } from './fixtures/clock.js';
import {
  geminiInvalidArgumentBody,
  geminiInvalidKeyBody,
  geminiPerDayBody,
  geminiPerDayMessageOnlyBody,
  geminiPerMinuteBody,
  geminiPermissionDeniedBody,
  geminiUnavailableBody,
  geminiZeroLimitBody,
  geminiZeroQuotaValueBody,
} from './fixtures/gemini.js';
import {
  openAiBillingNotActiveBody,
  openAiContextLengthBody,
  openAiInsufficientQuotaBody,
  openAiInvalidKeyBody,
  openAiModelNotFoundBody,
  openAiRequestsExhaustedHeaders,
  openAiRpdBody,
  openAiRpmBody,
  openAiServerErrorBody,
  openAiSuccessHeaders,
  openAiTpmBody,
} from './fixtures/openai.js';
import {
  aiSdkApiCallError,
  aiSdkRetryError,
  anthropicSdkError,
  axiosError,
  fetchFailed,
  googleGenAiError,
  googleLegacyFetchError,
  gotHttpError,
  openAiSdkError,
  systemError,
} from './fixtures/sdk-errors.js';

interface Case {
  readonly name: string;
  readonly input: unknown;
  readonly expected: Outcome;
}

function classifies(cases: readonly Case[]): void {
  for (const { name, input, expected } of cases) {
    it(name, () => {
      expect(classifyOutcome(input, { now: NOW })).toStrictEqual(expected);
    });
  }
}

describe('classifyOutcome: OpenAI', () => {
  classifies([
    {
      name: 'reads a 2xx SDK response as success with its rate-limit counters',
      input: { status: 200, headers: openAiSuccessHeaders },
      expected: {
        kind: 'success',
        rateLimit: {
          limitRequests: 5000,
          remainingRequests: 4999,
          resetRequestsMs: 12,
          limitTokens: 800_000,
          remainingTokens: 799_412,
          resetTokensMs: 44,
        },
      },
    },
    {
      name: 'cools the whole organisation for an RPM limit, for as long as the message says',
      input: openAiSdkError(429, openAiRpmBody, {}),
      expected: { kind: 'rate-limited', retryAfterMs: 20_000, scope: 'group', status: 429 },
    },
    {
      name: 'prefers the retry-after-ms header over the message',
      input: openAiSdkError(429, openAiTpmBody, { 'retry-after-ms': '2350', 'retry-after': '3' }),
      expected: { kind: 'rate-limited', retryAfterMs: 2_350, scope: 'group', status: 429 },
    },
    {
      name: 'waits for the reset of the exhausted request window when a bare 429 has no retry hint',
      input: { status: 429, headers: openAiRequestsExhaustedHeaders },
      expected: { kind: 'rate-limited', retryAfterMs: 19_500, scope: 'key', status: 429 },
    },
    {
      name: 'reads a requests-per-day limit as a spent quota with the stated wait',
      input: openAiSdkError(429, openAiRpdBody, {}),
      expected: { kind: 'quota', retryAfterMs: 432_000, scope: 'group', status: 429 },
    },
    {
      name: 'reads insufficient_quota as the organisation quota spent, with no wait stated',
      input: openAiSdkError(429, openAiInsufficientQuotaBody, {}),
      expected: { kind: 'quota', scope: 'group', status: 429 },
    },
    {
      name: 'reads insufficient_quota from a bare JSON body without a status',
      input: openAiInsufficientQuotaBody,
      expected: { kind: 'quota', scope: 'group' },
    },
    {
      name: 'reads billing_not_active as a disabled account even though it comes as a 429',
      input: openAiSdkError(429, openAiBillingNotActiveBody, {}),
      expected: { kind: 'disabled', status: 429 },
    },
    {
      name: 'reads invalid_api_key as revoked',
      input: openAiSdkError(401, openAiInvalidKeyBody, {}),
      expected: { kind: 'revoked', status: 401 },
    },
    {
      name: 'reads a 500 server_error as a provider error',
      input: openAiSdkError(500, openAiServerErrorBody, {}),
      expected: { kind: 'provider-error', status: 500 },
    },
    {
      name: 'does not blame the key for an unknown model',
      input: openAiSdkError(404, openAiModelNotFoundBody, {}),
      expected: { kind: 'failed', status: 404 },
    },
    {
      name: 'does not blame the key for a request over the context length',
      input: openAiSdkError(400, openAiContextLengthBody, {}),
      expected: { kind: 'failed', status: 400 },
    },
    {
      name: 'reads the OpenAI SDK connection error as a provider error',
      input: Object.assign(new Error('Connection error.'), { name: 'APIConnectionError', status: undefined }),
      expected: { kind: 'provider-error' },
    },
    {
      name: 'reads the OpenAI SDK timeout as a provider error',
      input: Object.assign(new Error('Request timed out.'), { name: 'APIConnectionTimeoutError' }),
      expected: { kind: 'provider-error' },
    },
  ]);
});

describe('classifyOutcome: Azure OpenAI', () => {
  classifies([
    {
      name: 'takes the ms-precision retry header over retry-after seconds and the message',
      input: { status: 429, headers: azure429Headers, error: azure429Body.error },
      expected: { kind: 'rate-limited', retryAfterMs: 2_500, scope: 'key', status: 429 },
    },
    {
      name: 'reads x-ms-retry-after-ms when it is the only hint',
      input: new Response(null, { status: 429, headers: azureOnlyMsRetryHeaders }),
      expected: { kind: 'rate-limited', retryAfterMs: 1_800, scope: 'key', status: 429 },
    },
    {
      name: 'reads "retry after 3 seconds" from the message when the headers are lost',
      input: { status: 429, error: azure429Body.error },
      expected: { kind: 'rate-limited', retryAfterMs: 3_000, scope: 'key', status: 429 },
    },
    {
      name: 'reports no counters on a success that carries only -1 and 0 placeholders',
      input: { status: 200, headers: azurePlaceholderHeaders },
      expected: { kind: 'success' },
    },
  ]);
});

describe('classifyOutcome: Anthropic', () => {
  classifies([
    {
      name: 'reads a success with counters from a WHATWG Headers',
      input: new Response('{}', { status: 200, headers: anthropicSuccessHeaders }),
      expected: {
        kind: 'success',
        rateLimit: {
          limitRequests: 4000,
          remainingRequests: 3999,
          resetRequestsMs: 15,
          limitTokens: 80_000,
          remainingTokens: 79_000,
          resetTokensMs: 750,
        },
      },
    },
    {
      name: 'reads rate_limit_error for the organisation as a group cooldown of retry-after seconds',
      input: anthropicSdkError(429, anthropicRateLimitBody, {
        'retry-after': '15',
        ...anthropicInputExhaustedHeaders,
      }),
      expected: { kind: 'rate-limited', retryAfterMs: 15_000, scope: 'group', status: 429 },
    },
    {
      name: 'waits for the exhausted input-token bucket when retry-after is missing',
      input: { status: 429, headers: anthropicInputExhaustedHeaders },
      expected: { kind: 'rate-limited', retryAfterMs: 37_000, scope: 'key', status: 429 },
    },
    {
      name: 'reads 529 overloaded_error as a provider error, not a rate limit',
      input: anthropicSdkError(529, anthropicOverloadedBody, {}),
      expected: { kind: 'provider-error', status: 529 },
    },
    {
      name: 'reads overloaded_error in a stream, with no status, as a provider error',
      input: anthropicSdkError(undefined, anthropicOverloadedBody),
      expected: { kind: 'provider-error' },
    },
    {
      name: 'reads a 500 api_error as a provider error',
      input: anthropicSdkError(500, anthropicApiErrorBody, {}),
      expected: { kind: 'provider-error', status: 500 },
    },
    {
      name: 'reads authentication_error as revoked',
      input: anthropicSdkError(401, anthropicAuthenticationBody, {}),
      expected: { kind: 'revoked', status: 401 },
    },
    {
      name: 'reads permission_error as revoked',
      input: anthropicSdkError(403, anthropicPermissionBody, {}),
      expected: { kind: 'revoked', status: 403 },
    },
    {
      name: 'reads billing_error as a disabled account',
      input: anthropicSdkError(402, anthropicBillingBody, {}),
      expected: { kind: 'disabled', status: 402 },
    },
    {
      name: 'reads "credit balance is too low" as a disabled account although it is a 400',
      input: anthropicSdkError(400, anthropicCreditTooLowBody, {}),
      expected: { kind: 'disabled', status: 400 },
    },
    {
      name: 'reads a workspace spend limit as a group quota until the stated date',
      input: anthropicSdkError(400, anthropicWorkspaceLimitBody, {}),
      // 2025-02-01T00:00Z is 30.5 days after NOW.
      expected: { kind: 'quota', retryAfterMs: 30.5 * 86_400_000, scope: 'group', status: 400 },
    },
    {
      name: 'reads the error body alone, as the SDK embeds it in the message',
      input: new Error(`429 ${JSON.stringify(anthropicRateLimitBody)}`),
      expected: { kind: 'rate-limited', scope: 'group' },
    },
    {
      name: 'does not blame the key for an invalid request',
      input: anthropicSdkError(400, anthropicInvalidRequestBody, {}),
      expected: { kind: 'failed', status: 400 },
    },
  ]);
});

describe('classifyOutcome: Gemini', () => {
  classifies([
    {
      name: 'reads a per-minute per-project quota as a group cooldown of RetryInfo.retryDelay',
      input: googleGenAiError(429, geminiPerMinuteBody),
      expected: { kind: 'rate-limited', retryAfterMs: 46_000, scope: 'group', status: 429 },
    },
    {
      name: 'reads a per-day quota as a spent quota until the stated retryDelay',
      input: googleGenAiError(429, geminiPerDayBody),
      expected: { kind: 'quota', retryAfterMs: 37_025_000, scope: 'group', status: 429 },
    },
    {
      name: 'reads the per-day wait from "Please retry in 10h17m5.7s" when RetryInfo is absent',
      input: geminiPerDayMessageOnlyBody,
      expected: { kind: 'quota', retryAfterMs: 37_025_700, scope: 'group', status: 429 },
    },
    {
      name: 'reads "limit: 0" as a spent quota until the stated retryDelay',
      input: googleGenAiError(429, geminiZeroLimitBody),
      expected: { kind: 'quota', retryAfterMs: 10_000, scope: 'group', status: 429 },
    },
    {
      name: 'reads quotaValue "0" as a spent quota until the stated retryDelay',
      input: { status: 429, body: JSON.stringify(geminiZeroQuotaValueBody) },
      expected: { kind: 'quota', retryAfterMs: 5_000, scope: 'key', status: 429 },
    },
    {
      name: 'reads API_KEY_INVALID as revoked although Gemini sends it as a 400',
      input: googleGenAiError(400, geminiInvalidKeyBody),
      expected: { kind: 'revoked', status: 400 },
    },
    {
      name: 'reads PERMISSION_DENIED as revoked',
      input: googleGenAiError(403, geminiPermissionDeniedBody),
      expected: { kind: 'revoked', status: 403 },
    },
    {
      name: 'reads 503 UNAVAILABLE (model overloaded) as a provider error',
      input: googleGenAiError(503, geminiUnavailableBody),
      expected: { kind: 'provider-error', status: 503 },
    },
    {
      name: 'does not blame the key for an invalid argument',
      input: googleGenAiError(400, geminiInvalidArgumentBody),
      expected: { kind: 'failed', status: 400 },
    },
    {
      name: 'reads the legacy SDK errorDetails array',
      input: googleLegacyFetchError(429, 'Too Many Requests', geminiPerMinuteBody),
      expected: { kind: 'rate-limited', retryAfterMs: 46_000, scope: 'group', status: 429 },
    },
    {
      name: 'reads a raw REST body with the HTTP status only in error.code',
      input: geminiPerMinuteBody,
      expected: { kind: 'rate-limited', retryAfterMs: 46_000, scope: 'group', status: 429 },
    },
    {
      name: 'reads RetryInfo decoded into { seconds, nanos }',
      input: {
        error: {
          code: 429,
          status: 'RESOURCE_EXHAUSTED',
          details: [
            {
              '@type': 'type.googleapis.com/google.rpc.RetryInfo',
              retryDelay: { seconds: 3, nanos: 250_000_000 },
            },
          ],
        },
      },
      expected: { kind: 'rate-limited', retryAfterMs: 3_250, scope: 'key', status: 429 },
    },
  ]);
});

describe('classifyOutcome: plain HTTP', () => {
  classifies([
    {
      name: 'reads a 429 with retry-after seconds as a key cooldown',
      input: new Response(null, { status: 429, headers: { 'Retry-After': '30' } }),
      expected: { kind: 'rate-limited', retryAfterMs: 30_000, scope: 'key', status: 429 },
    },
    {
      name: 'reads a 429 with an HTTP-date retry-after as ms from now',
      input: { status: 429, headers: new Map([['Retry-After', httpDateAfter(45_000)]]) },
      expected: { kind: 'rate-limited', retryAfterMs: 45_000, scope: 'key', status: 429 },
    },
    {
      name: 'clamps a retry-after date in the past to 0',
      input: { status: 429, headers: { 'retry-after': httpDateAfter(-10_000) } },
      expected: { kind: 'rate-limited', retryAfterMs: 0, scope: 'key', status: 429 },
    },
    {
      name: 'leaves the wait out of a 429 that states none',
      input: { status: 429, headers: { 'retry-after': 'tomorrow-ish' } },
      expected: { kind: 'rate-limited', scope: 'key', status: 429 },
    },
    {
      name: 'reads a 429 whose generic X-RateLimit-* headers say nothing remains until a delta-seconds reset',
      input: { status: 429, headers: { 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '5' } },
      expected: { kind: 'rate-limited', retryAfterMs: 5_000, scope: 'key', status: 429 },
    },
    {
      name: 'reads a 429 whose IETF RateLimit field (draft 08 form) says nothing remains for 7 s',
      input: new Response(null, { status: 429, headers: { RateLimit: '"default";r=0;t=7' } }),
      expected: { kind: 'rate-limited', retryAfterMs: 7_000, scope: 'key', status: 429 },
    },
    {
      name: 'reads a bare status number',
      input: 429,
      expected: { kind: 'rate-limited', scope: 'key', status: 429 },
    },
    {
      name: 'reads a 2xx without rate-limit headers as a plain success',
      input: new Response(null, { status: 204 }),
      expected: { kind: 'success' },
    },
    { name: 'reads 401 as revoked', input: { status: 401 }, expected: { kind: 'revoked', status: 401 } },
    { name: 'reads 403 as revoked', input: { statusCode: 403 }, expected: { kind: 'revoked', status: 403 } },
    { name: 'reads 402 as disabled', input: { status: '402' }, expected: { kind: 'disabled', status: 402 } },
    {
      name: 'reads a 503 with retry-after as a provider error with that wait',
      input: new Response('busy', { status: 503, headers: { 'retry-after': '120' } }),
      expected: { kind: 'provider-error', retryAfterMs: 120_000, status: 503 },
    },
    {
      name: 'reads 502 as a provider error',
      input: { status: 502 },
      expected: { kind: 'provider-error', status: 502 },
    },
    {
      name: 'reads 408 as a provider error',
      input: { status: 408 },
      expected: { kind: 'provider-error', status: 408 },
    },
    { name: 'reads 404 as failed', input: { status: 404 }, expected: { kind: 'failed', status: 404 } },
    { name: 'reads 413 as failed', input: { status: 413 }, expected: { kind: 'failed', status: 413 } },
    {
      name: 'reads an Axios error from its response, never from the request headers',
      input: axiosError(429, openAiRpmBody, { 'x-ratelimit-remaining-requests': '0' }),
      expected: { kind: 'rate-limited', retryAfterMs: 20_000, scope: 'group', status: 429 },
    },
    {
      name: 'reads a got error from response.statusCode and a raw JSON string body',
      input: gotHttpError(429, JSON.stringify(openAiInsufficientQuotaBody), { 'retry-after': '60' }),
      expected: { kind: 'quota', retryAfterMs: 60_000, scope: 'group', status: 429 },
    },
    {
      name: 'reads a Vercel AI SDK APICallError from statusCode, responseHeaders and responseBody',
      input: aiSdkApiCallError(429, anthropicRateLimitBody, { 'retry-after': '12' }),
      expected: { kind: 'rate-limited', retryAfterMs: 12_000, scope: 'group', status: 429 },
    },
    {
      name: 'reads the last attempt of a Vercel AI SDK RetryError',
      input: aiSdkRetryError(aiSdkApiCallError(401, openAiInvalidKeyBody, {})),
      expected: { kind: 'revoked', status: 401 },
    },
    {
      name: 'reads a node-fetch request-timeout FetchError as a provider error',
      input: Object.assign(new Error('network timeout at: https://api.example.com'), {
        name: 'FetchError',
        type: 'request-timeout',
      }),
      expected: { kind: 'provider-error' },
    },
    {
      name: 'reads a gateway that sends the error as a bare string code',
      input: { status: 429, data: { error: 'insufficient_quota' } },
      expected: { kind: 'quota', scope: 'group', status: 429 },
    },
  ]);
});

describe('classifyOutcome: network failures and timeouts', () => {
  classifies([
    {
      name: 'reads fetch failed with a refused connection as a provider error',
      input: fetchFailed(systemError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:443')),
      expected: { kind: 'provider-error' },
    },
    {
      name: 'reads a bare fetch failed as a provider error',
      input: new TypeError('fetch failed'),
      expected: { kind: 'provider-error' },
    },
    {
      name: 'reads an undici connect timeout cause as a provider error',
      input: fetchFailed(
        Object.assign(new Error('Connect Timeout Error'), {
          name: 'ConnectTimeoutError',
          code: 'UND_ERR_CONNECT_TIMEOUT',
        }),
      ),
      expected: { kind: 'provider-error' },
    },
    {
      name: 'reads a body stream cut mid-way (terminated, UND_ERR_SOCKET) as a provider error',
      input: new TypeError('terminated', {
        cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }),
      }),
      expected: { kind: 'provider-error' },
    },
    {
      name: 'reads ECONNRESET as a provider error',
      input: systemError('ECONNRESET', 'read ECONNRESET'),
      expected: { kind: 'provider-error' },
    },
    {
      name: 'reads ETIMEDOUT as a provider error',
      input: systemError('ETIMEDOUT', 'connect ETIMEDOUT 203.0.113.1:443'),
      expected: { kind: 'provider-error' },
    },
    {
      name: "reads an AbortError as the caller's own abort",
      input: new DOMException('This operation was aborted', 'AbortError'),
      expected: { kind: 'aborted' },
    },
    {
      name: 'reads an AbortSignal.timeout TimeoutError as a provider error',
      input: new DOMException('The operation was aborted due to timeout', 'TimeoutError'),
      expected: { kind: 'provider-error' },
    },
    {
      name: 'reads an Axios timeout (ECONNABORTED) as a provider error',
      input: Object.assign(new Error('timeout of 30000ms exceeded'), {
        name: 'AxiosError',
        code: 'ECONNABORTED',
      }),
      expected: { kind: 'provider-error' },
    },
  ]);
});

describe('classifyOutcome: anything else', () => {
  const cyclic: { self?: unknown; cause?: unknown } = {};
  cyclic.self = cyclic;
  cyclic.cause = cyclic;
  const hostile = Object.defineProperty({}, 'status', {
    get() {
      throw new Error('getter exploded');
    },
  });

  classifies([
    {
      name: 'reads a failure reported without an error as failed',
      input: undefined,
      expected: { kind: 'failed' },
    },
    { name: 'reads null as failed', input: null, expected: { kind: 'failed' } },
    { name: 'reads an application error as failed', input: new Error('boom'), expected: { kind: 'failed' } },
    {
      name: 'does not mistake an unrelated TypeError for a network failure',
      input: new TypeError("Cannot read properties of undefined (reading 'choices')"),
      expected: { kind: 'failed' },
    },
    { name: 'reads a thrown string as failed', input: 'something went wrong', expected: { kind: 'failed' } },
    { name: 'survives a cyclic error object', input: cyclic, expected: { kind: 'failed' } },
    { name: 'survives a throwing getter', input: hostile, expected: { kind: 'failed' } },
    { name: 'ignores a status outside the HTTP range', input: { status: 42 }, expected: { kind: 'failed' } },
  ]);
});
