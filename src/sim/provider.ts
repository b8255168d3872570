import type { Clock } from '../clock.js';
import { InvalidConfigError } from '../errors.js';
import { fingerprint, maskKey } from '../fingerprint.js';
import {
  KeyLimiter,
  type LimitBreach,
  type LimiterDecision,
  type LimitView,
  type SimulatedKeyLimits,
  WINDOW_MS,
} from './key-limiter.js';
import { createRandom, fixedLatency, type LatencySampler, type Random } from './random.js';
import {
  anthropicErrorBody,
  anthropicMessage,
  anthropicRateLimitHeaders,
  type CompletionInit,
  formatGoDuration,
  formatProtoDuration,
  geminiErrorBody,
  geminiGenerateContent,
  msUntil,
  openAiChatCompletion,
  openAiErrorBody,
  openAiRateLimitHeaders,
  SIMULATED_REPLY,
} from './wire-shapes.js';

/**
 * How a rate-limited call (429) tells the client when to come back.
 * - `'retry-after'`: a `retry-after` header in whole seconds, rounded up, so that a client that
 *   waits exactly that long is admitted; OpenAI-shaped error body.
 * - `'openai'`: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (resets as Go durations:
 *   `'20ms'`, `'1.5s'`, `'6m0s'`) and `{ error: { message, type: 'requests' | 'tokens', code: 'rate_limit_exceeded' } }`.
 * - `'anthropic'`: `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}` (RFC 3339 resets),
 *   `retry-after`, and `{ type: 'error', error: { type: 'rate_limit_error', message } }`.
 * - `'gemini'`: no headers; `{ error: { code: 429, status: 'RESOURCE_EXHAUSTED', details } }` with a
 *   `QuotaFailure` and a `RetryInfo` whose `retryDelay` is a protobuf duration (`'46s'`).
 * - `'none'`: a bare 429: no header, a body with a message only.
 *
 * Every reset is exact to the millisecond (rounded up): it is the instant at which the limit's
 * `remaining` next grows, which for a rejected call is when that call would be admitted. Hints are
 * left out when waiting can never help (a limit of 0, a request larger than the token limit).
 *
 * The style also picks the dialect of every body: `'anthropic'` and `'gemini'` answer in their API's
 * shapes, the others in OpenAI's.
 */
export type RateLimitHintStyle = 'retry-after' | 'openai' | 'anthropic' | 'gemini' | 'none';

/** One key the simulated provider accepts. */
export interface SimulatedKey {
  /** The raw key string callers present. Bodies and stats never show it (see {@link SimulatedKey.label}). */
  readonly key: string;
  /** Name in {@link SimulatedProvider.stats}. Default: the key's fingerprint (`k_…`), as the pool names it. */
  readonly label?: string;
  /** The key's limits. Default: none (every call admitted). */
  readonly limits?: SimulatedKeyLimits;
  /**
   * Probability in `[0, 1]` that an admitted call fails with 500, drawn from the provider's seeded
   * PRNG. Failed calls still count against the limits (the provider's gateway admitted them). Default 0.
   */
  readonly errorRate?: number;
  /** Epoch ms (on the provider's clock) from which every call with this key gets 401. Default: never. */
  readonly revokedAt?: number;
}

/** A provider-wide outage: every call in `[from, to)` (epoch ms) gets 503, whatever its key. */
export interface OutageWindow {
  /** First instant of the outage, epoch ms (inclusive). */
  readonly from: number;
  /** End of the outage, epoch ms (exclusive). */
  readonly to: number;
}

/** Options of {@link SimulatedProvider}. */
export interface SimulatedProviderOptions {
  /** Where time comes from: a `VirtualClock` for tests and benchmarks, `systemClock` behind a real server. */
  readonly clock: Clock;
  /** The accepted keys (distinct raw strings). Any other key gets 401. */
  readonly keys: readonly SimulatedKey[];
  /** How 429s carry their hints, and the dialect of bodies. Default `'retry-after'`. */
  readonly hints?: RateLimitHintStyle;
  /**
   * Adds the rate-limit headers (`remaining` / `reset`) to successful calls too, as OpenAI does
   * (Anthropic's headers when `hints` is `'anthropic'`). Default `false`.
   */
  readonly successHeaders?: boolean;
  /**
   * Which retry headers a 429 carries (when the call can be admitted later at all): `'seconds'`
   * (`retry-after`, whole seconds rounded up), `'ms'` (`retry-after-ms`, exact), `'both'`, or
   * `'none'`. Only the `'retry-after'` and `'openai'` styles read it. Default: `'seconds'` for the
   * `'retry-after'` style, `'none'` for `'openai'` (what each sent before this option existed).
   */
  readonly retryAfter?: 'seconds' | 'ms' | 'both' | 'none';
  /**
   * Which `x-ratelimit-*` figures the `'openai'` style writes (on 429s, and on successes with
   * `successHeaders`): `'requests'` only, or `'requests-and-tokens'` (each when the key has such a
   * limit). With the `'retry-after'` style and `successHeaders`, the same choice applies to
   * successes. Default `'requests-and-tokens'`.
   */
  readonly limitHeaders?: 'requests' | 'requests-and-tokens';
  /** Latency of admitted calls (200 and 500), in ms. Default `fixedLatency(0)`. */
  readonly latency?: LatencySampler;
  /** Latency of rejected calls (401, 429, 503), in ms. Default: the `latency` sampler. */
  readonly rejectionLatency?: LatencySampler;
  /** Seed of the PRNG that draws the 500s of `errorRate`. Default `1`. */
  readonly seed?: number;
  /** Provider-wide outages. Default: none. More can be added with {@link SimulatedProvider.addOutage}. */
  readonly outages?: readonly OutageWindow[];
  /** Model name written into bodies and error messages. Default `'keymesh-sim-1'`. */
  readonly model?: string;
}

/** Options of one {@link SimulatedProvider.call}. */
export interface SimulatedCallOptions {
  /** Tokens the call costs against `tokensPerMinute` (≥ 0; prompt + maximum output, as OpenAI counts). Default 0. */
  readonly tokens?: number;
}

/** What happened to a call, in the words of the pool's outcome classes. */
export type SimulatedOutcome = 'success' | 'rate-limited' | 'unauthorized' | 'server-error' | 'unavailable';

interface SimulatedResponseBase {
  /** Response headers, lower-case names. */
  readonly headers: Readonly<Record<string, string>>;
  /** The JSON body, in the dialect of the hint style. */
  readonly body: unknown;
  /** How long the call takes, in ms; the caller waits it (the decision was taken at call start). */
  readonly latencyMs: number;
  /** Deterministic request id (`req_sim00000001`), as a `x-request-id` / `request-id` header would carry. */
  readonly requestId: string;
  /** Tokens the call asked for. */
  readonly tokens: number;
}

/** The provider's answer to one call, decided synchronously when the call starts. */
export type SimulatedResponse =
  | (SimulatedResponseBase & { readonly outcome: 'success'; readonly status: 200 })
  | (SimulatedResponseBase & {
      readonly outcome: 'rate-limited';
      readonly status: 429;
      /** Exact ms after which the same call would be admitted (if nothing else uses the key); `undefined` when never. */
      readonly retryAfterMs: number | undefined;
      /** The limit that rejected the call. */
      readonly breach: LimitBreach;
    })
  | (SimulatedResponseBase & { readonly outcome: 'unauthorized'; readonly status: 401 })
  | (SimulatedResponseBase & { readonly outcome: 'server-error'; readonly status: 500 })
  | (SimulatedResponseBase & { readonly outcome: 'unavailable'; readonly status: 503 });

/** Counters of one key, for figures. */
export interface SimulatedKeyStats {
  /** The key's label (default its fingerprint). */
  readonly label: string;
  /** Every call presented with this key. */
  readonly calls: number;
  /** Calls answered 200. */
  readonly successes: number;
  /** Calls answered 429. */
  readonly rateLimited: number;
  /** Calls answered 401, 500 or 503 (the sum of the three below). */
  readonly errors: number;
  /** Calls answered 401 (revoked). */
  readonly unauthorized: number;
  /** Calls answered 500 (`errorRate`). */
  readonly serverErrors: number;
  /** Calls answered 503 (outage). */
  readonly unavailable: number;
  /** Tokens of the calls answered 200. */
  readonly tokens: number;
}

/** Counters over all keys. */
export interface SimulatedTotals {
  readonly calls: number;
  readonly successes: number;
  readonly rateLimited: number;
  readonly errors: number;
  /** Calls with a key the provider does not know (answered 401, or 503 during an outage). */
  readonly unknownKeyCalls: number;
}

interface KeyRecord {
  readonly key: string;
  readonly label: string;
  readonly limiter: KeyLimiter;
  readonly errorRate: number;
  revokedAt: number | undefined;
  stats: {
    calls: number;
    successes: number;
    rateLimited: number;
    unauthorized: number;
    serverErrors: number;
    unavailable: number;
    tokens: number;
  };
}

type Dialect = 'openai' | 'anthropic' | 'gemini';

const REPLY_TOKENS = SIMULATED_REPLY.split(' ').length;

const WINDOW_WORDS = {
  second: { openai: 'requests per second (RPS)', plain: 'requests per second' },
  minute: { openai: 'requests per min (RPM)', plain: 'requests per minute' },
  day: { openai: 'requests per day (RPD)', plain: 'requests per day' },
} as const;

/**
 * A model of an LLM provider that enforces per-key limits on a {@link Clock}. `call` decides
 * synchronously at call start: 503 during an outage, 401 for an unknown or revoked key, 429 when a
 * limit is reached (with the configured hints), 500 at the key's error rate, 200 otherwise.
 *
 * It never admits more than a limit in any sliding window; it is deterministic for a given clock,
 * seed and call sequence, so simulated runs repeat bit for bit.
 *
 * @example
 * const clock = new VirtualClock();
 * const provider = new SimulatedProvider({ clock, keys: [{ key: 'sk-a', limits: { requestsPerSecond: 10 } }] });
 * const res = provider.call('sk-a'); // { outcome: 'success', status: 200, … }
 */
export class SimulatedProvider {
  readonly #clock: Clock;
  readonly #keys = new Map<string, KeyRecord>();
  readonly #hints: RateLimitHintStyle;
  readonly #dialect: Dialect;
  readonly #successHeaders: boolean;
  readonly #retryAfter: 'seconds' | 'ms' | 'both' | 'none';
  readonly #tokenHeaders: boolean;
  readonly #latency: LatencySampler;
  readonly #rejectionLatency: LatencySampler;
  readonly #random: Random;
  readonly #outages: OutageWindow[] = [];
  readonly #model: string;
  #sequence = 0;
  #unknownKeyCalls = 0;

  constructor(options: SimulatedProviderOptions) {
    this.#clock = options.clock;
    this.#hints = options.hints ?? 'retry-after';
    this.#dialect = this.#hints === 'anthropic' || this.#hints === 'gemini' ? this.#hints : 'openai';
    this.#successHeaders = options.successHeaders ?? false;
    this.#retryAfter = options.retryAfter ?? (this.#hints === 'openai' ? 'none' : 'seconds');
    this.#tokenHeaders = (options.limitHeaders ?? 'requests-and-tokens') === 'requests-and-tokens';
    this.#latency = options.latency ?? fixedLatency(0);
    this.#rejectionLatency = options.rejectionLatency ?? this.#latency;
    this.#random = createRandom(options.seed ?? 1);
    this.#model = options.model ?? 'keymesh-sim-1';
    options.keys.forEach((spec, index) => {
      this.#addKey(spec, `keys[${index}]`);
    });
    for (const outage of options.outages ?? []) this.addOutage(outage);
  }

  /** The hint style of 429s. */
  get hints(): RateLimitHintStyle {
    return this.#hints;
  }

  /** The model name written into bodies. */
  get model(): string {
    return this.#model;
  }

  /** The provider's clock. */
  get clock(): Clock {
    return this.#clock;
  }

  /** Answers one call made now with the raw `key`; see the class comment for the order of checks. */
  call(key: string, options: SimulatedCallOptions = {}): SimulatedResponse {
    const tokens = options.tokens ?? 0;
    if (!(tokens >= 0) || !Number.isFinite(tokens)) {
      throw new RangeError(`SimulatedProvider.call: tokens must be a finite number ≥ 0, got ${tokens}`);
    }
    const now = this.#clock.now();
    this.#sequence += 1;
    const id = `sim${String(this.#sequence).padStart(8, '0')}`;
    const base = { requestId: `req_${id}`, tokens };
    const record = this.#keys.get(key);
    if (record === undefined) this.#unknownKeyCalls += 1;
    else record.stats.calls += 1;

    if (this.#outages.some((o) => now >= o.from && now < o.to)) {
      if (record !== undefined) record.stats.unavailable += 1;
      return {
        ...base,
        outcome: 'unavailable',
        status: 503,
        headers: {},
        body: this.#unavailableBody(),
        latencyMs: this.#rejectionLatency(),
      };
    }
    if (record === undefined || (record.revokedAt !== undefined && now >= record.revokedAt)) {
      if (record !== undefined) record.stats.unauthorized += 1;
      return {
        ...base,
        outcome: 'unauthorized',
        status: 401,
        headers: {},
        body: this.#unauthorizedBody(key),
        latencyMs: this.#rejectionLatency(),
      };
    }

    const decision = record.limiter.decide(now, tokens);
    if (!decision.admitted) {
      record.stats.rateLimited += 1;
      const retryAfterMs = Number.isFinite(decision.admitAt) ? msUntil(now, decision.admitAt) : undefined;
      return {
        ...base,
        outcome: 'rate-limited',
        status: 429,
        retryAfterMs,
        breach: decision.breach,
        headers: this.#rateLimitedHeaders(now, decision, retryAfterMs),
        body: this.#rateLimitedBody(decision.breach, retryAfterMs),
        latencyMs: this.#rejectionLatency(),
      };
    }

    if (record.errorRate > 0 && this.#random.next() < record.errorRate) {
      record.stats.serverErrors += 1;
      return {
        ...base,
        outcome: 'server-error',
        status: 500,
        headers: {},
        body: this.#serverErrorBody(),
        latencyMs: this.#latency(),
      };
    }
    record.stats.successes += 1;
    record.stats.tokens += tokens;
    return {
      ...base,
      outcome: 'success',
      status: 200,
      headers: this.#successHeaders ? this.#limitHeaders(now, decision.requests, decision.tokens) : {},
      body: this.#successBody({
        id,
        createdAt: now,
        model: this.#model,
        text: SIMULATED_REPLY,
        usage: { inputTokens: tokens, outputTokens: REPLY_TOKENS },
      }),
      latencyMs: this.#latency(),
    };
  }

  /** Revokes `key` from `at` (epoch ms, default now): every later call with it gets 401. */
  revoke(key: string, at: number = this.#clock.now()): void {
    this.#record(key).revokedAt = at;
  }

  /** Adds a provider-wide outage `[from, to)`. */
  addOutage(outage: OutageWindow): void {
    if (!Number.isFinite(outage.from) || !Number.isFinite(outage.to) || outage.to < outage.from) {
      throw new InvalidConfigError(
        'outages',
        `need finite from ≤ to (epoch ms), got [${outage.from}, ${outage.to})`,
      );
    }
    this.#outages.push({ from: outage.from, to: outage.to });
  }

  /** Counters of the key presented as `key`. Throws for a key the provider does not know. */
  keyStats(key: string): SimulatedKeyStats {
    return snapshotStats(this.#record(key));
  }

  /** Counters of every key, in the order the keys were configured. */
  stats(): readonly SimulatedKeyStats[] {
    return [...this.#keys.values()].map(snapshotStats);
  }

  /** Counters summed over every key. */
  get totals(): SimulatedTotals {
    let calls = this.#unknownKeyCalls;
    let successes = 0;
    let rateLimited = 0;
    let errors = 0;
    for (const s of this.stats()) {
      calls += s.calls;
      successes += s.successes;
      rateLimited += s.rateLimited;
      errors += s.errors;
    }
    return { calls, successes, rateLimited, errors, unknownKeyCalls: this.#unknownKeyCalls };
  }

  /**
   * The successes the provider could admit over `durationMs` at its long-run rate: the sum over keys
   * of each key's tightest limit (see `KeyLimiter.capacity`), so that goodput ratio = successes ÷
   * capacity. Faults (revocations, outages, error rates) are not subtracted. With `tokensPerCall`
   * (> 0), token limits count too. `Infinity` when some key has no limit.
   */
  capacity(durationMs: number, options: { readonly tokensPerCall?: number } = {}): number {
    if (!(durationMs >= 0))
      throw new RangeError(`SimulatedProvider.capacity: durationMs must be ≥ 0, got ${durationMs}`);
    let total = 0;
    for (const record of this.#keys.values())
      total += record.limiter.capacity(durationMs, options.tokensPerCall);
    return total;
  }

  /**
   * Requests the keys could admit at once now beyond their long-run rate: the summed level of every
   * request bucket (`limits.requests` shaped as a token bucket or GCRA); 0 for windows. A run measured
   * from `now` can serve `capacity(d) + banked()`, so a client that let buckets fill before does not
   * seem to beat the rate.
   */
  banked(): number {
    const now = this.#clock.now();
    let total = 0;
    for (const record of this.#keys.values()) total += record.limiter.banked(now);
    return total;
  }

  #addKey(spec: SimulatedKey, field: string): void {
    if (typeof spec.key !== 'string' || spec.key.length === 0) {
      throw new InvalidConfigError(`${field}.key`, 'must be a non-empty string');
    }
    const label = spec.label ?? fingerprint(spec.key);
    if (this.#keys.has(spec.key))
      throw new InvalidConfigError(`${field}.key`, `key ${label} is configured twice`);
    const limits = spec.limits ?? {};
    for (const name of ['requestsPerSecond', 'requestsPerMinute', 'requestsPerDay'] as const) {
      const limit = limits[name];
      if (limit !== undefined && !(Number.isInteger(limit) && limit >= 0)) {
        throw new InvalidConfigError(`${field}.limits.${name}`, `must be an integer ≥ 0, got ${limit}`);
      }
    }
    const tpm = limits.tokensPerMinute;
    if (tpm !== undefined && !(tpm >= 0 && Number.isFinite(tpm))) {
      throw new InvalidConfigError(
        `${field}.limits.tokensPerMinute`,
        `must be a finite number ≥ 0, got ${tpm}`,
      );
    }
    const errorRate = spec.errorRate ?? 0;
    if (!(errorRate >= 0 && errorRate <= 1)) {
      throw new InvalidConfigError(`${field}.errorRate`, `must be within [0, 1], got ${errorRate}`);
    }
    this.#keys.set(spec.key, {
      key: spec.key,
      label,
      limiter: new KeyLimiter(limits),
      errorRate,
      revokedAt: spec.revokedAt,
      stats: {
        calls: 0,
        successes: 0,
        rateLimited: 0,
        unauthorized: 0,
        serverErrors: 0,
        unavailable: 0,
        tokens: 0,
      },
    });
  }

  #record(key: string): KeyRecord {
    const record = this.#keys.get(key);
    if (record === undefined) {
      throw new RangeError(`SimulatedProvider: unknown key ${maskKey(key)}; configure it in \`keys\` first`);
    }
    return record;
  }

  #limitHeaders(
    now: number,
    requests: LimitView | undefined,
    tokens: LimitView | undefined,
  ): Record<string, string> {
    const shown = this.#tokenHeaders ? tokens : undefined;
    return this.#hints === 'anthropic'
      ? anthropicRateLimitHeaders(requests, tokens)
      : openAiRateLimitHeaders(now, requests, shown);
  }

  #rateLimitedHeaders(
    now: number,
    decision: LimiterDecision,
    retryAfterMs: number | undefined,
  ): Record<string, string> {
    const seconds: Record<string, string> =
      retryAfterMs === undefined ? {} : { 'retry-after': String(Math.ceil(retryAfterMs / 1000)) };
    const ms: Record<string, string> =
      retryAfterMs === undefined ? {} : { 'retry-after-ms': String(retryAfterMs) };
    const retryAfter = {
      ...(this.#retryAfter === 'seconds' || this.#retryAfter === 'both' ? seconds : {}),
      ...(this.#retryAfter === 'ms' || this.#retryAfter === 'both' ? ms : {}),
    };
    switch (this.#hints) {
      case 'retry-after':
        return retryAfter;
      case 'openai':
        return { ...this.#limitHeaders(now, decision.requests, decision.tokens), ...retryAfter };
      case 'anthropic':
        return { ...anthropicRateLimitHeaders(decision.requests, decision.tokens), ...seconds };
      case 'gemini':
      case 'none':
        return {};
    }
  }

  #rateLimitedBody(breach: LimitBreach, retryAfterMs: number | undefined): unknown {
    switch (this.#hints) {
      case 'none':
        return { error: { message: 'Too many requests' } };
      case 'anthropic':
        return anthropicErrorBody('rate_limit_error', anthropicRateLimitMessage(breach));
      case 'gemini':
        return geminiRateLimitBody(breach, retryAfterMs, this.#model);
      case 'retry-after':
      case 'openai':
        return openAiErrorBody(
          openAiRateLimitMessage(breach, retryAfterMs, this.#model),
          breach.kind,
          'rate_limit_exceeded',
        );
    }
  }

  #unauthorizedBody(key: string): unknown {
    switch (this.#dialect) {
      case 'anthropic':
        return anthropicErrorBody('authentication_error', 'invalid x-api-key');
      case 'gemini':
        return geminiErrorBody(401, 'UNAUTHENTICATED', 'API key not valid. Please pass a valid API key.', [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'API_KEY_INVALID',
            domain: 'googleapis.com',
            metadata: { service: 'generativelanguage.googleapis.com' },
          },
        ]);
      case 'openai':
        return openAiErrorBody(
          `Incorrect API key provided: ${maskKey(key)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
          'invalid_request_error',
          'invalid_api_key',
        );
    }
  }

  #serverErrorBody(): unknown {
    switch (this.#dialect) {
      case 'anthropic':
        return anthropicErrorBody('api_error', 'Internal server error');
      case 'gemini':
        return geminiErrorBody(500, 'INTERNAL', 'An internal error has occurred. Please retry.');
      case 'openai':
        return openAiErrorBody(
          'The server had an error while processing your request. Sorry about that!',
          'server_error',
          null,
        );
    }
  }

  #unavailableBody(): unknown {
    switch (this.#dialect) {
      case 'anthropic':
        return anthropicErrorBody('api_error', 'Service unavailable');
      case 'gemini':
        return geminiErrorBody(503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.');
      case 'openai':
        return openAiErrorBody('The server is overloaded or not ready yet.', 'server_error', null);
    }
  }

  #successBody(init: CompletionInit): unknown {
    switch (this.#dialect) {
      case 'anthropic':
        return anthropicMessage(init);
      case 'gemini':
        return geminiGenerateContent(init);
      case 'openai':
        return openAiChatCompletion(init);
    }
  }
}

function snapshotStats(record: KeyRecord): SimulatedKeyStats {
  const s = record.stats;
  return {
    label: record.label,
    calls: s.calls,
    successes: s.successes,
    rateLimited: s.rateLimited,
    errors: s.unauthorized + s.serverErrors + s.unavailable,
    unauthorized: s.unauthorized,
    serverErrors: s.serverErrors,
    unavailable: s.unavailable,
    tokens: s.tokens,
  };
}

function openAiRateLimitMessage(
  breach: LimitBreach,
  retryAfterMs: number | undefined,
  model: string,
): string {
  const where = `Rate limit reached for ${model} in organization org-keymesh-sim`;
  const retry =
    retryAfterMs === undefined
      ? 'Waiting will not help.'
      : `Please try again in ${formatGoDuration(retryAfterMs)}.`;
  if (breach.kind === 'requests') {
    const window =
      breach.windowMs === undefined || breach.windowMs === WINDOW_MS[breach.window]
        ? WINDOW_WORDS[breach.window].openai
        : `requests per ${formatGoDuration(breach.windowMs)}`;
    return `${where} on ${window}: Limit ${breach.limit}, Used ${breach.used}, Requested 1. ${retry}`;
  }
  if (retryAfterMs === undefined) {
    return `Request too large for ${model} in organization org-keymesh-sim on tokens per min (TPM): Limit ${breach.limit}, Requested ${breach.requested}. The input or output tokens must be reduced in order to run successfully.`;
  }
  return `${where} on tokens per min (TPM): Limit ${breach.limit}, Used ${Math.ceil(breach.used)}, Requested ${breach.requested}. ${retry}`;
}

function anthropicRateLimitMessage(breach: LimitBreach): string {
  const what =
    breach.kind !== 'requests'
      ? 'tokens per minute'
      : breach.windowMs === undefined || breach.windowMs === WINDOW_MS[breach.window]
        ? WINDOW_WORDS[breach.window].plain
        : `requests per ${formatGoDuration(breach.windowMs)}`;
  return `This request would exceed your organization's rate limit of ${breach.limit} ${what}. Please reduce the rate of requests or contact sales to discuss your options for a rate limit increase.`;
}

function geminiRateLimitBody(breach: LimitBreach, retryAfterMs: number | undefined, model: string): unknown {
  const quotaId =
    breach.kind === 'tokens'
      ? 'GenerateContentInputTokensPerModelPerMinute'
      : `GenerateRequestsPer${breach.window === 'second' ? 'Second' : breach.window === 'minute' ? 'Minute' : 'Day'}PerProjectPerModel`;
  const details: Record<string, unknown>[] = [
    {
      '@type': 'type.googleapis.com/google.rpc.QuotaFailure',
      violations: [
        {
          quotaMetric: `generativelanguage.googleapis.com/generate_content_${breach.kind === 'tokens' ? 'input_token_count' : 'requests'}`,
          quotaId,
          quotaDimensions: { location: 'global', model },
          quotaValue: String(breach.limit),
        },
      ],
    },
  ];
  let message =
    'You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.';
  if (retryAfterMs !== undefined) {
    message += ` Please retry in ${formatProtoDuration(retryAfterMs)}.`;
    details.push({
      '@type': 'type.googleapis.com/google.rpc.RetryInfo',
      retryDelay: formatProtoDuration(retryAfterMs),
    });
  }
  return geminiErrorBody(429, 'RESOURCE_EXHAUSTED', message, details);
}
