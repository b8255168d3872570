/**
 * Property-based fuzzing of what reads provider output: `classifyOutcome` and every header parser,
 * on arbitrary strings, numbers and objects — hostile getters, throwing proxies, cycles, huge
 * strings. Whatever they are given, they never throw, and every wait they return is finite, ≥ 0 and
 * within its bound; the pool, fed the same, never rests a key past its bounds.
 *
 * Seeded with a fixed default, so CI is repeatable; KEYMESH_FUZZ_SEED=<n> explores or replays another run. The seed is printed on failure (fast-check's report
 * carries it with the shrunk counterexample's path).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyOutcome, KeyPool, type Outcome, type RateLimitInfo, VirtualClock } from '../../src/index.js';
import * as parsers from '../../src/limits/headers.js';
import type { HeadersInput } from '../../src/limits/index.js';
import { fakeKeys } from '../helpers.js';

const SEED = Number(process.env.KEYMESH_FUZZ_SEED ?? 0x11f022);
const NOW = 1_750_000_000_000;
const DEFAULT_MAX_RETRY_AFTER_MS = 86_400_000;
const DEFAULT_MAX_QUOTA_RESET_MS = 32 * 86_400_000;

/** Runs a property with the file's seed, saying which seed on failure. */
function check<T>(property: fc.IProperty<T>, numRuns: number): void {
  try {
    fc.assert(property, { seed: SEED, numRuns });
  } catch (error) {
    throw new Error(`fuzz failed with KEYMESH_FUZZ_SEED=${SEED}\n${String(error)}`, { cause: error });
  }
}

async function checkAsync<T>(property: fc.IAsyncProperty<T>, numRuns: number): Promise<void> {
  try {
    await fc.assert(property, { seed: SEED, numRuns });
  } catch (error) {
    throw new Error(`fuzz failed with KEYMESH_FUZZ_SEED=${SEED}\n${String(error)}`, { cause: error });
  }
}

// ── inputs ───────────────────────────────────────────────────────────────────────────────────────

const HEADER_NAMES = [
  'retry-after',
  'retry-after-ms',
  'x-ms-retry-after-ms',
  ...['requests', 'tokens', 'tokens_usage_based'].flatMap((kind) =>
    ['limit', 'remaining', 'reset'].map((field) => `x-ratelimit-${field}-${kind}`),
  ),
  ...['requests', 'tokens', 'input-tokens', 'output-tokens'].flatMap((kind) =>
    ['limit', 'remaining', 'reset'].map((field) => `anthropic-ratelimit-${kind}-${field}`),
  ),
];

const digits = fc.integer({ min: 1, max: 2_000 }).map((n) => '9'.repeat(n));
const numberish = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 1e308, 2 ** 53),
);
const durationText = fc
  .array(
    fc.tuple(
      fc.oneof(fc.nat(), digits, fc.double({ min: 0, noNaN: true }).map(String)),
      fc.constantFrom('h', 'm', 's', 'ms', 'us', 'µs', 'ns', 'x', ''),
    ),
    {
      maxLength: 4,
    },
  )
  .map((parts) => parts.map(([amount, unit]) => `${amount}${unit}`).join(''));
const dateText = fc
  .date({ min: new Date(-8.64e15), max: new Date(8.64e15), noInvalidDate: true })
  .chain((date) => fc.constantFrom(date.toUTCString(), date.toISOString(), date.toISOString().slice(0, 19)));
const headerValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  digits,
  digits.map((d) => `${d}.${d}`),
  durationText,
  dateText,
  numberish,
  numberish.map(String),
  fc.array(fc.oneof(fc.string(), digits, numberish), { maxLength: 3 }),
  fc.constantFrom(null, undefined, '', ' ', '-1', '0', '1e400', `${'9'.repeat(400)}`),
  fc.anything(),
);
const headerName = fc.oneof(
  { arbitrary: fc.constantFrom(...HEADER_NAMES), weight: 4 },
  { arbitrary: fc.constantFrom(...HEADER_NAMES).map((name) => name.toUpperCase()), weight: 1 },
  { arbitrary: fc.string(), weight: 1 },
);
const headerRecord = fc.dictionary(headerName, headerValue, { maxKeys: 12 });

/** Headers in every shape HTTP clients hand them over, and some no client would. */
const headersInput: fc.Arbitrary<unknown> = fc.oneof(
  headerRecord,
  headerRecord.map((record) => new Map(Object.entries(record))),
  headerRecord.map((record) => {
    const strings = Object.entries(record).filter(
      (entry): entry is [string, string] => typeof entry[1] === 'string',
    );
    try {
      return new Headers(strings);
    } catch {
      return new Headers();
    }
  }),
  headerRecord.map((record) => ({ get: (name: string) => record[name] })),
  fc.constant({
    get() {
      throw new Error('hostile get');
    },
  }),
  fc.anything(),
);

/** Makes `value` hostile: throwing getters, a proxy that throws on every trap, cycles, endless depth. */
function hostile(value: Record<string, unknown>, mode: number): unknown {
  switch (mode % 5) {
    case 0: {
      const target: Record<string, unknown> = {};
      for (const key of new Set([
        ...Object.keys(value),
        'status',
        'headers',
        'error',
        'message',
        'name',
        'cause',
      ])) {
        Object.defineProperty(target, key, {
          get() {
            throw new Error(`hostile getter ${key}`);
          },
          enumerable: true,
        });
      }
      return target;
    }
    case 1:
      return new Proxy(value, {
        get() {
          throw new Error('hostile proxy');
        },
        getPrototypeOf() {
          throw new Error('hostile prototype');
        },
        ownKeys() {
          throw new Error('hostile keys');
        },
        has() {
          throw new Error('hostile has');
        },
        getOwnPropertyDescriptor() {
          throw new Error('hostile descriptor');
        },
      });
    case 2: {
      const cyclic: Record<string, unknown> = { ...value };
      cyclic.cause = cyclic;
      cyclic.error = { error: cyclic, response: cyclic };
      cyclic.errors = [cyclic, cyclic];
      return cyclic;
    }
    case 3: {
      // Every read makes a new level: only the walk's own bound ends it.
      const endless = (): Record<string, unknown> =>
        Object.defineProperty({ ...value }, 'cause', { get: endless, enumerable: true });
      return endless();
    }
    default:
      return Object.setPrototypeOf({ ...value }, new Proxy({}, {}));
  }
}

/**
 * A hostile input is generated as its recipe and made only inside the property: fast-check itself
 * inspects the values it generates, and would trip over their traps.
 */
interface HostileRecipe {
  readonly hostile: number;
  readonly value: Record<string, unknown>;
}
const RECIPES = new WeakSet<object>();
function asRecipe(recipe: HostileRecipe): HostileRecipe {
  RECIPES.add(recipe);
  return recipe;
}
/** The input a generated value stands for: a hostile object for a recipe, else the value itself. */
function materialise(generated: unknown): unknown {
  if (typeof generated !== 'object' || generated === null || !RECIPES.has(generated)) return generated;
  const { hostile: mode, value } = generated as HostileRecipe;
  return hostile(value, mode);
}

const statusish = fc.oneof(
  fc.integer({ min: 100, max: 599 }),
  fc.constantFrom(408, 429, 500, 503, 529, 401, 402, 403),
  fc.string(),
  numberish,
);
const codeish = fc.oneof(
  fc.constantFrom(
    'rate_limit_exceeded',
    'insufficient_quota',
    'RESOURCE_EXHAUSTED',
    'ECONNRESET',
    'UND_ERR_SOCKET',
    'ABORT_ERR',
    'overloaded_error',
    'invalid_api_key',
  ),
  fc.string(),
);
const messageish = fc.oneof(
  fc.string(),
  fc.constantFrom(
    'Please retry in 10.5s.',
    'Please try again in 20ms',
    'retry after 99999999999999999999 seconds',
    `retry in ${'9'.repeat(400)}s`,
    'limit: 0',
    'Request timed out.',
    'Request was aborted.',
    'You will regain access on 2999-01-01 at 00:00 UTC.',
    'per day',
  ),
  digits.map((d) => `Please retry in ${d}s`),
);
const retryInfo = fc.record({
  '@type': fc.constantFrom('type.googleapis.com/google.rpc.RetryInfo', 'x.QuotaFailure', 'x.ErrorInfo'),
  retryDelay: fc.oneof(durationText, fc.record({ seconds: fc.oneof(numberish, digits), nanos: numberish })),
  violations: fc.array(
    fc.record({ quotaId: fc.string(), quotaValue: fc.oneof(fc.constant('0'), fc.string()) }),
  ),
});
const errorLike: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    status: statusish,
    statusCode: statusish,
    headers: headersInput,
    responseHeaders: headersInput,
    code: codeish,
    type: codeish,
    name: fc.oneof(fc.constantFrom('AbortError', 'TimeoutError', 'APIConnectionError'), fc.string()),
    message: messageish,
    error: fc.oneof(
      codeish,
      fc.record({
        code: codeish,
        message: messageish,
        status: codeish,
        details: fc.array(retryInfo, { maxLength: 3 }),
      }),
    ),
    body: fc.oneof(fc.string(), fc.json(), fc.anything()),
    details: fc.array(retryInfo, { maxLength: 3 }),
  },
  { requiredKeys: [] },
);

/** Anything a caller or a broken provider could hand to classifyOutcome. */
const anyOutcomeInput: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: errorLike, weight: 6 },
  { arbitrary: fc.record({ hostile: fc.nat(), value: errorLike }).map(asRecipe), weight: 3 },
  {
    arbitrary: fc.anything({ withBigInt: true, withMap: true, withSet: true, withTypedArray: true }),
    weight: 2,
  },
  { arbitrary: numberish, weight: 1 },
  { arbitrary: fc.string({ maxLength: 2_000 }), weight: 1 },
  { arbitrary: fc.constant(`{"error":{"message":"${'x'.repeat(100_000)}"}}`), weight: 1 },
);

// ── what every answer must satisfy ───────────────────────────────────────────────────────────────

function expectWait(ms: number | undefined, max: number): void {
  if (ms === undefined) return;
  expect(Number.isFinite(ms)).toBe(true);
  expect(ms).toBeGreaterThanOrEqual(0);
  expect(ms).toBeLessThanOrEqual(max);
}

function expectCounters(info: RateLimitInfo, maxResetMs: number): void {
  for (const [field, value] of Object.entries(info)) {
    expect(Number.isFinite(value), field).toBe(true);
    expect(value, field).toBeGreaterThanOrEqual(0);
  }
  expectWait(info.retryAfterMs, maxResetMs);
  expectWait(info.resetRequestsMs, maxResetMs);
  expectWait(info.resetTokensMs, maxResetMs);
}

function expectBounded(outcome: Outcome, maxRetryAfterMs: number, maxQuotaResetMs: number): void {
  switch (outcome.kind) {
    case 'success':
      if (outcome.rateLimit) expectCounters(outcome.rateLimit, maxRetryAfterMs);
      return;
    case 'rate-limited':
    case 'provider-error':
      expectWait(outcome.retryAfterMs, maxRetryAfterMs);
      return;
    case 'quota':
      expectWait(outcome.retryAfterMs, maxQuotaResetMs);
      return;
    default:
      expect(['revoked', 'disabled', 'aborted', 'failed']).toContain(outcome.kind);
  }
}

// ── properties ───────────────────────────────────────────────────────────────────────────────────

describe(`fuzz: classifyOutcome (KEYMESH_FUZZ_SEED=${SEED})`, () => {
  it('never throws, and every wait is finite, ≥ 0 and within the default bounds', () => {
    check(
      fc.property(anyOutcomeInput, (input) => {
        expectBounded(
          classifyOutcome(input, { now: NOW }),
          DEFAULT_MAX_RETRY_AFTER_MS,
          DEFAULT_MAX_QUOTA_RESET_MS,
        );
      }),
      1_000,
    );
  });

  it('keeps every wait within the bounds it is given', () => {
    check(
      fc.property(
        anyOutcomeInput,
        fc.integer({ min: 0, max: 2 * 86_400_000 }),
        fc.integer({ min: 0, max: 40 * 86_400_000 }),
        fc.integer({ min: -8.64e15, max: 8.64e15 }),
        (input, maxRetryAfterMs, maxQuotaResetMs, now) => {
          const outcome = classifyOutcome(materialise(input), { now, maxRetryAfterMs, maxQuotaResetMs });
          expectBounded(outcome, maxRetryAfterMs, maxQuotaResetMs);
        },
      ),
      600,
    );
  });
});

describe(`fuzz: header parsers (KEYMESH_FUZZ_SEED=${SEED})`, () => {
  it('parseRetryAfter and parseDurationString return a finite, non-negative wait or nothing', () => {
    check(
      fc.property(
        fc.oneof(headerValue, fc.string({ maxLength: 5_000 })),
        fc.integer({ min: -8.64e15, max: 8.64e15 }),
        (value, now) => {
          const retryAfter = parsers.parseRetryAfter(value as string | number | null | undefined, now);
          expectWait(retryAfter, Number.MAX_SAFE_INTEGER);
          const duration = typeof value === 'string' ? parsers.parseDurationString(value) : undefined;
          expectWait(duration, Number.MAX_SAFE_INTEGER);
        },
      ),
      1_500,
    );
  });

  it('parseRateLimitHeaders and readHeader never throw and read only finite counters', () => {
    check(
      fc.property(
        fc.oneof(headersInput, fc.record({ hostile: fc.nat(), value: headerRecord }).map(asRecipe)),
        headerName,
        (generated, name) => {
          const headers = materialise(generated) as HeadersInput;
          expectCounters(parsers.parseRateLimitHeaders(headers, NOW), Number.MAX_SAFE_INTEGER);
          const value = parsers.readHeader(headers, name);
          expect(value === undefined || typeof value === 'string').toBe(true);
        },
      ),
      1_000,
    );
  });
});

describe(`fuzz: a pool fed arbitrary hints (KEYMESH_FUZZ_SEED=${SEED})`, () => {
  it('never rests a key past its bounds, and every deadline stays finite', async () => {
    const settle = fc.oneof(
      headerRecord.map((headers) => ({ kind: 'release' as const, headers })),
      headerRecord.map((headers) => ({ kind: 'rate-limited' as const, headers })),
      numberish.map((retryAfterMs) => ({ kind: 'rate-limited-ms' as const, retryAfterMs })),
      numberish.map((retryAfterMs) => ({ kind: 'quota' as const, retryAfterMs })),
      anyOutcomeInput.map((thrown) => ({ kind: 'thrown' as const, thrown })),
    );
    await checkAsync(
      fc.asyncProperty(
        fc.array(settle, { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 1_000, max: 86_400_000 }),
        async (settles, maxRetryAfterMs) => {
          const clock = new VirtualClock(NOW);
          const maxQuotaResetMs = 2 * maxRetryAfterMs;
          const options = {
            defaultCooldownMs: 60_000,
            recovery: { initialDelayMs: 1_000, maxDelayMs: 8_000 },
          };
          const pool = await KeyPool.create({
            keys: fakeKeys(2, 'sk-test-fuzz'),
            clock,
            seed: 1,
            maxRetryAfterMs,
            maxQuotaResetMs,
            ...options,
          });
          try {
            for (const step of settles) {
              const lease = pool.tryAcquire();
              if (lease === undefined) {
                for (const key of pool.snapshot().keys) await pool.resetKey(key.keyId);
                continue;
              }
              if (step.kind === 'release') lease.release({ headers: step.headers as HeadersInput });
              else if (step.kind === 'rate-limited')
                lease.rateLimited({ headers: step.headers as HeadersInput });
              else if (step.kind === 'rate-limited-ms')
                lease.rateLimited({ retryAfterMs: step.retryAfterMs });
              else if (step.kind === 'quota')
                lease.fail(undefined, { kind: 'quota', retryAfterMs: step.retryAfterMs });
              else {
                // withKey leases its own key: hand this one back, and never wait (virtual time stands still).
                lease.release({ latencyMs: 1 });
                await pool
                  .withKey(() => Promise.reject(materialise(step.thrown)), { timeoutMs: 0 })
                  .catch(() => undefined);
              }
              const now = clock.now();
              for (const key of pool.snapshot().keys) {
                expect(Number.isFinite(key.cooldownUntil)).toBe(true);
                expect(Number.isFinite(key.recoveryAt)).toBe(true);
                // A rest from a hint, a success's reset, or the no-hint escalation; a probe schedule.
                expect(key.cooldownUntil).toBeLessThanOrEqual(
                  now + Math.max(maxRetryAfterMs, options.defaultCooldownMs),
                );
                expect(key.recoveryAt).toBeLessThanOrEqual(
                  now + Math.max(maxQuotaResetMs, options.recovery.maxDelayMs),
                );
              }
            }
          } finally {
            await pool.close();
          }
        },
      ),
      60,
    );
  });
});
