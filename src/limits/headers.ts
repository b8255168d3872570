import { systemClock } from '../clock.js';
import type { RateLimitInfo } from './outcome.js';

/** One header value as HTTP clients hand it over: Node gives arrays for repeated headers, mocks give numbers. */
export type HeaderValue = string | readonly string[] | number | null | undefined;

/**
 * Anything headers can be read from: a WHATWG `Headers` (or any object with a `get(name)` method,
 * such as Axios headers), a `Map`, or a plain object such as Node's `IncomingHttpHeaders` or the
 * OpenAI SDK's header record. Names are matched case-insensitively in all three.
 */
export type HeadersInput =
  | { get(name: string): string | null | undefined }
  | ReadonlyMap<string, HeaderValue>
  | { readonly [name: string]: HeaderValue };

const MS_PER_UNIT: Readonly<Record<string, number>> = {
  h: 3_600_000,
  m: 60_000,
  s: 1_000,
  ms: 1,
  us: 0.001,
  µs: 0.001,
  μs: 0.001,
  ns: 0.000_001,
};
const DURATION_PART = /(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|μs|ns|h|m|s)/y;
const DECIMAL = /^\d+(?:\.\d+)?$/;
const RFC_3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})$/;
// IMF-fixdate, RFC 850 and asctime: the three forms RFC 9110 allows for HTTP-date.
const HTTP_DATE =
  /^(?:[A-Za-z]{3}, \d{2} [A-Za-z]{3} \d{4} \d{2}:\d{2}:\d{2} GMT|[A-Za-z]+, \d{2}-[A-Za-z]{3}-\d{2} \d{2}:\d{2}:\d{2} GMT|[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4})$/;

/**
 * Rounds a non-negative duration up to whole ms, so a caller never retries a hair too early, while
 * float noise (`0.1 * 1000 = 100.00000000000001`) does not add a spurious millisecond. A value too
 * large to represent (`"9999…"` overflows to `Infinity`) saturates at `Number.MAX_SAFE_INTEGER`:
 * still finite, and absurd by any bound, so callers see that a hint was given and can discard it.
 */
function wholeMs(ms: number): number {
  if (Number.isNaN(ms)) return 0;
  return Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.ceil(ms - 1e-6)));
}

/**
 * Parses a Go-style duration as OpenAI (`x-ratelimit-reset-*`: `"6m0s"`, `"1.5s"`, `"20ms"`) and
 * Gemini (`RetryInfo.retryDelay`: `"46s"`, message text `"10h17m5.7s"`) write them.
 *
 * Units: `h`, `m`, `s`, `ms`, `us`/`µs`, `ns`, combinable in any order (`"1h2m3.5s"`). A bare `"0"`
 * is zero, as in Go. Signs, bare numbers and unknown units are rejected.
 *
 * @returns whole milliseconds (rounded up; at most `Number.MAX_SAFE_INTEGER`), or `undefined` when
 *   `value` is not such a duration.
 */
export function parseDurationString(value: string): number | undefined {
  const text = value.trim().toLowerCase();
  if (text === '0') return 0;
  if (text === '') return undefined;
  DURATION_PART.lastIndex = 0;
  let total = 0;
  while (DURATION_PART.lastIndex < text.length) {
    const match = DURATION_PART.exec(text);
    const amount = match?.[1];
    const unit = match?.[2];
    const perUnit = unit === undefined ? undefined : MS_PER_UNIT[unit];
    if (amount === undefined || perUnit === undefined) return undefined;
    total += Number(amount) * perUnit;
  }
  return wholeMs(total);
}

/**
 * Parses a `Retry-After` value: delay-seconds (`"30"`, and the fractional `"1.5"` some gateways
 * send) or an HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`).
 *
 * @param value the header value; a number is taken as seconds.
 * @param now epoch ms the date is measured from; defaults to the system clock.
 * @returns ms to wait, never negative (a date in the past gives 0) and at most
 *   `Number.MAX_SAFE_INTEGER`, or `undefined` for garbage, including negative seconds, which RFC 9110
 *   does not allow.
 */
export function parseRetryAfter(
  value: string | number | null | undefined,
  now: number = systemClock.now(),
): number | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? wholeMs(value * 1000) : undefined;
  }
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (DECIMAL.test(text)) return wholeMs(Number(text) * 1000);
  if (!HTTP_DATE.test(text)) return undefined;
  // asctime carries no zone; HTTP says it is GMT, Date.parse would assume local time.
  const at = Date.parse(text.endsWith('GMT') ? text : `${text} GMT`);
  return Number.isNaN(at) ? undefined : wholeMs(at - now);
}

/** Parses a plain ms count (`retry-after-ms`, `x-ms-retry-after-ms`). */
function parseMilliseconds(value: string | undefined): number | undefined {
  return value !== undefined && DECIMAL.test(value) ? wholeMs(Number(value)) : undefined;
}

/**
 * Parses an RFC 3339 timestamp (Anthropic's `*-reset` headers) into ms from `now`, clamped at 0.
 * Timestamps without a zone are rejected rather than read in the host's local time.
 */
function parseTimestamp(value: string, now: number): number | undefined {
  const text = value.trim();
  if (!RFC_3339.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : wholeMs(at - now);
}

/**
 * A reset value in whichever form the provider chose: Go duration (OpenAI), RFC 3339 timestamp
 * (Anthropic), or bare seconds (OpenAI-compatible gateways, by analogy with `Retry-After`).
 */
function parseReset(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (DECIMAL.test(value)) return wholeMs(Number(value) * 1000);
  return parseDurationString(value) ?? parseTimestamp(value, now);
}

/**
 * Parses a request or token count. Negative values are dropped, not clamped: Azure OpenAI sends
 * `-1` to mean "not reported", and reading it as 0 would cool a healthy key.
 */
function parseCount(value: string | undefined): number | undefined {
  if (value === undefined || !DECIMAL.test(value)) return undefined;
  const count = Math.floor(Number(value));
  // A count beyond exact integers is a broken header, not a window.
  return Number.isSafeInteger(count) ? count : undefined;
}

function normaliseValue(value: unknown): string | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
  if (typeof value === 'string') {
    const text = value.trim();
    return text === '' ? undefined : text;
  }
  if (Array.isArray(value)) {
    // Rate-limit headers are single-valued; a repeat is a proxy echoing the same value.
    for (const item of value) {
      const text = normaliseValue(item);
      if (text !== undefined) return text;
    }
  }
  return undefined;
}

function readHeaderFrom(headers: unknown, lowerName: string): string | undefined {
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return undefined;
  if (headers instanceof Map) {
    for (const [name, value] of headers) {
      if (typeof name === 'string' && name.toLowerCase() === lowerName) return normaliseValue(value);
    }
    return undefined;
  }
  const get: unknown = Reflect.get(headers, 'get');
  if (typeof get === 'function') return normaliseValue(Reflect.apply(get, headers, [lowerName]));
  const record = headers as Readonly<Record<string, unknown>>;
  if (Object.hasOwn(record, lowerName)) return normaliseValue(record[lowerName]);
  for (const name of Object.keys(record)) {
    if (name.toLowerCase() === lowerName) return normaliseValue(record[name]);
  }
  return undefined;
}

/**
 * Reads one header by name, case-insensitively, from any {@link HeadersInput}.
 *
 * @returns the trimmed value (the first one if the header was repeated; numbers as strings), or
 *   `undefined` when absent, empty or of an unreadable type. Never throws: a throwing `get` or
 *   getter counts as absent.
 */
export function readHeader(headers: HeadersInput | null | undefined, name: string): string | undefined {
  try {
    return readHeaderFrom(headers, name.toLowerCase());
  } catch {
    return undefined;
  }
}

/** The explicit wait a response asks for; the ms-precision headers win over `retry-after`'s seconds. */
function parseRetryHeaders(headers: HeadersInput, now: number): number | undefined {
  return (
    parseMilliseconds(readHeader(headers, 'retry-after-ms')) ??
    parseMilliseconds(readHeader(headers, 'x-ms-retry-after-ms')) ??
    parseRetryAfter(readHeader(headers, 'retry-after'), now)
  );
}

interface Bucket {
  readonly limit: number | undefined;
  readonly remaining: number | undefined;
  readonly resetMs: number | undefined;
}

function readBucket(
  headers: HeadersInput,
  names: { readonly limit: string; readonly remaining: string; readonly reset: string },
  now: number,
): Bucket | undefined {
  const limit = parseCount(readHeader(headers, names.limit));
  // A window of size 0 on a response that got through is Azure's "not reported", not a real limit.
  if (limit === 0) return undefined;
  const bucket = {
    limit,
    remaining: parseCount(readHeader(headers, names.remaining)),
    resetMs: parseReset(readHeader(headers, names.reset), now),
  };
  return bucket.limit === undefined && bucket.remaining === undefined && bucket.resetMs === undefined
    ? undefined
    : bucket;
}

function maxDefined(values: readonly (number | undefined)[]): number | undefined {
  let max: number | undefined;
  for (const value of values) if (value !== undefined && (max === undefined || value > max)) max = value;
  return max;
}

function minDefined(values: readonly (number | undefined)[]): number | undefined {
  let min: number | undefined;
  for (const value of values) if (value !== undefined && (min === undefined || value < min)) min = value;
  return min;
}

/**
 * Folds several buckets of one kind (OpenAI tokens, Anthropic total / input / output tokens) into
 * the one that binds: a call needs room in every bucket, so the smallest `remaining` decides, and
 * the key is free again only when the last of the buckets at that level has reset.
 */
function bindingBucket(buckets: readonly (Bucket | undefined)[]): Bucket | undefined {
  const present = buckets.filter((bucket): bucket is Bucket => bucket !== undefined);
  if (present.length === 0) return undefined;
  const remaining = minDefined(present.map((bucket) => bucket.remaining));
  if (remaining === undefined) {
    return {
      limit: minDefined(present.map((bucket) => bucket.limit)),
      remaining,
      resetMs: maxDefined(present.map((bucket) => bucket.resetMs)),
    };
  }
  const binding = present.filter((bucket) => bucket.remaining === remaining);
  return {
    limit: minDefined(binding.map((bucket) => bucket.limit)),
    remaining,
    resetMs: maxDefined(binding.map((bucket) => bucket.resetMs)),
  };
}

function openAiBucket(headers: HeadersInput, suffix: string, now: number): Bucket | undefined {
  return readBucket(
    headers,
    {
      limit: `x-ratelimit-limit-${suffix}`,
      remaining: `x-ratelimit-remaining-${suffix}`,
      reset: `x-ratelimit-reset-${suffix}`,
    },
    now,
  );
}

function anthropicBucket(headers: HeadersInput, kind: string, now: number): Bucket | undefined {
  return readBucket(
    headers,
    {
      limit: `anthropic-ratelimit-${kind}-limit`,
      remaining: `anthropic-ratelimit-${kind}-remaining`,
      reset: `anthropic-ratelimit-${kind}-reset`,
    },
    now,
  );
}

/**
 * A bare-number reset of the generic headers: delta-seconds (IETF `RateLimit-Reset`, most gateways),
 * or — GitHub's and many APIs' `X-RateLimit-Reset` — the epoch second it happens. A number that,
 * read as an epoch second, lands after `now` and within a year of it is that instant (no delta of
 * 30 years is meant as a wait); anything else is delta-seconds.
 */
const YEAR_MS = 366 * 86_400_000;
function parseGenericReset(value: string | undefined, now: number): number | undefined {
  if (value === undefined || !DECIMAL.test(value)) return parseReset(value, now);
  const seconds = Number(value);
  const asInstant = seconds * 1000 - now;
  if (asInstant >= 0 && asInstant <= YEAR_MS) return wholeMs(asInstant);
  // An epoch second just past (the answer travelled): reset now, not in 55 years.
  if (asInstant < 0 && asInstant > -YEAR_MS) return 0;
  return wholeMs(seconds * 1000);
}

/**
 * The generic, unsuffixed request counters: `X-RateLimit-{Limit,Remaining,Reset}` (GitHub, most API
 * gateways and proxies) and the IETF draft's `RateLimit-{Limit,Remaining,Reset}`. A `Limit` may carry
 * a quota policy after the count (`"100, 100;w=60"`): the count before it is read.
 */
function genericBucket(headers: HeadersInput, prefix: string, now: number): Bucket | undefined {
  const limitText = readHeader(headers, `${prefix}-limit`);
  const limit = parseCount(limitText?.split(/[,;]/, 1)[0]?.trim());
  if (limit === 0) return undefined;
  const bucket = {
    limit,
    remaining: parseCount(readHeader(headers, `${prefix}-remaining`)),
    resetMs: parseGenericReset(readHeader(headers, `${prefix}-reset`), now),
  };
  return bucket.limit === undefined && bucket.remaining === undefined && bucket.resetMs === undefined
    ? undefined
    : bucket;
}

const STRUCTURED_PARAM = /(?:^|[;,\s])(limit|remaining|reset|r|t)\s*=\s*(\d+(?:\.\d+)?)(?=$|[;,\s])/g;

function structuredParams(text: string): Map<string, number> {
  const params = new Map<string, number>();
  for (const [, name, value] of text.matchAll(STRUCTURED_PARAM))
    if (name !== undefined && value !== undefined && !params.has(name)) params.set(name, Number(value));
  return params;
}

/**
 * The IETF draft's single `RateLimit` field, in either of its published forms:
 * `limit=100, remaining=50, reset=30` (drafts 03–07: one policy) or `"default";r=50;t=30` (draft 08
 * on: a list of policies, `r` the remaining quota units, `t` seconds until they reset). Of several
 * policies the one with the least remaining binds, and the later reset among those.
 */
function structuredBucket(headers: HeadersInput): Bucket | undefined {
  const text = readHeader(headers, 'ratelimit');
  if (text === undefined) return undefined;
  const whole = structuredParams(text);
  if (!whole.has('r') && !whole.has('t')) {
    const limit = whole.get('limit');
    const remaining = whole.get('remaining');
    const reset = whole.get('reset');
    if (limit === undefined && remaining === undefined && reset === undefined) return undefined;
    return {
      limit: limit === undefined ? undefined : parseCount(String(limit)),
      remaining: remaining === undefined ? undefined : parseCount(String(remaining)),
      resetMs: reset === undefined ? undefined : wholeMs(reset * 1000),
    };
  }
  const policies: Bucket[] = [];
  for (const item of text.split(',')) {
    const params = structuredParams(item);
    const remaining = params.get('r');
    const reset = params.get('t');
    if (remaining === undefined && reset === undefined) continue;
    policies.push({
      limit: undefined,
      remaining: remaining === undefined ? undefined : parseCount(String(remaining)),
      resetMs: reset === undefined ? undefined : wholeMs(reset * 1000),
    });
  }
  return bindingBucket(policies);
}

/**
 * Reads the provider's rate-limit counters from a response's headers:
 *
 * - explicit waits: `retry-after-ms` (OpenAI SDKs), `x-ms-retry-after-ms` (Azure), `retry-after`
 *   (seconds or HTTP-date), in that order of precedence: the ms headers are more precise;
 * - OpenAI / Azure / compatible: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (and the
 *   `tokens_usage_based` variant), resets as Go durations (`"6m0s"`);
 * - Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`,
 *   resets as RFC 3339 timestamps. Priority Tier headers are not read: they describe a separate,
 *   committed capacity.
 * - any other HTTP API, read as request counters: `x-ratelimit-{limit,remaining,reset}` (GitHub and
 *   most gateways; a reset that reads as an epoch second within the next year is that instant, else
 *   seconds), the IETF draft's `ratelimit-{limit,remaining,reset}` (seconds) and its single
 *   `ratelimit` field (`limit=…, remaining=…, reset=…` or `"policy";r=…;t=…`).
 *
 * Where several token buckets are present, the fields describe the binding one (see
 * {@link RateLimitInfo}). Garbage values are ignored; this never throws.
 *
 * @param now epoch ms the reset timestamps are measured from; defaults to the system clock.
 * @returns the fields that could be read; `{}` when none.
 */
export function parseRateLimitHeaders(
  headers: HeadersInput | null | undefined,
  now: number = systemClock.now(),
): RateLimitInfo {
  if (headers === null || headers === undefined) return {};
  const requests = bindingBucket([
    openAiBucket(headers, 'requests', now),
    anthropicBucket(headers, 'requests', now),
    genericBucket(headers, 'x-ratelimit', now),
    genericBucket(headers, 'ratelimit', now),
    structuredBucket(headers),
  ]);
  const tokens = bindingBucket([
    openAiBucket(headers, 'tokens', now),
    openAiBucket(headers, 'tokens_usage_based', now),
    anthropicBucket(headers, 'tokens', now),
    anthropicBucket(headers, 'input-tokens', now),
    anthropicBucket(headers, 'output-tokens', now),
  ]);
  const info: RateLimitInfo = {};
  const retryAfterMs = parseRetryHeaders(headers, now);
  if (retryAfterMs !== undefined) info.retryAfterMs = retryAfterMs;
  if (requests?.limit !== undefined) info.limitRequests = requests.limit;
  if (requests?.remaining !== undefined) info.remainingRequests = requests.remaining;
  if (requests?.resetMs !== undefined) info.resetRequestsMs = requests.resetMs;
  if (tokens?.limit !== undefined) info.limitTokens = tokens.limit;
  if (tokens?.remaining !== undefined) info.remainingTokens = tokens.remaining;
  if (tokens?.resetMs !== undefined) info.resetTokensMs = tokens.resetMs;
  return info;
}
