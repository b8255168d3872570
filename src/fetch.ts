import { type Clock, systemClock } from './clock.js';
import { AcquireAbortedError, InvalidConfigError, NoAvailableKeyError } from './errors.js';
import { ReplayableRequest, readBodyText, SseUsageTap, usageFromJson, watchBody } from './fetch-body.js';
import type { KeyId } from './fingerprint.js';
import { classifyOutcome } from './limits/classify.js';
import { UNBOUNDED_HINTS } from './limits/hints.js';
import type { Outcome, OutcomeKind } from './limits/outcome.js';
import type { AcquireOptions, KeyPool } from './pool/KeyPool.js';
import type { Lease, TokenUsage } from './pool/lease.js';
import { checkOptionNames, normalizeAcquireOptions } from './pool/options.js';
import { ABORTED, settleWithOutcome } from './pool/settle-outcome.js';

/**
 * Where the leased key goes on each outgoing request.
 * - `'bearer'`: `Authorization: Bearer <key>` (OpenAI, most OpenAI-compatible APIs);
 * - `'x-api-key'`: `x-api-key: <key>` (Anthropic);
 * - `'x-goog-api-key'`: `x-goog-api-key: <key>` (Gemini).
 *
 * The named header is set and the other two are removed, so the placeholder an SDK was built with
 * (`new OpenAI({ apiKey: 'unused' })` sends `Authorization: Bearer unused`) never reaches the
 * provider beside the real key.
 *
 * A function receives a fresh copy of the request exactly as the client built it (placeholder
 * included) and returns the request to send, e.g. with the key in a query parameter.
 */
export type KeyInjection =
  | 'bearer'
  | 'x-api-key'
  | 'x-goog-api-key'
  | ((request: Request, key: string) => Request | Promise<Request>);

/** What `keymeshFetch` passes to `pool.acquire`. The request's own `signal` aborts the wait. */
export type FetchAcquireOptions = Omit<AcquireOptions, 'signal'>;

/** One try of a request with one leased key, as {@link KeymeshFetchOptions.onAttempt} sees it. */
export interface KeymeshFetchAttempt {
  /** 1 for the first try, 2 for the first retry, … */
  readonly attempt: number;
  /** Fingerprint of the key that was tried. */
  readonly keyId: KeyId;
  readonly label: string | null;
  /** The HTTP status; `undefined` when the request threw (network error, abort). */
  readonly status: number | undefined;
  /**
   * How the attempt was classified, and so settled; its wait as the provider stated it, before the
   * pool bounds it by `maxRetryAfterMs` / `maxQuotaResetMs`.
   */
  readonly outcome: Outcome;
  /** True when another attempt follows, with a fresh lease. */
  readonly retrying: boolean;
}

/** Timing of a successful response, as {@link KeymeshFetchOptions.onTiming} sees it (ms, on `clock`). */
export interface KeymeshFetchTiming {
  /** Fingerprint of the key that served the response. */
  readonly keyId: KeyId;
  readonly label: string | null;
  /** From handing the request to the underlying fetch to the first byte of the body (to the headers for an empty body). */
  readonly ttfbMs: number;
  /** From handing the request to the underlying fetch to the last byte of the body. */
  readonly totalMs: number;
}

/** Options of {@link keymeshFetch}. */
export interface KeymeshFetchOptions {
  /** Where the key goes on the request. Default `'bearer'`. See {@link KeyInjection}. */
  readonly inject?: KeyInjection;
  /**
   * How many times a request is retried, each time with a fresh lease (on another key whenever one
   * is eligible: the key that failed is cooling, exhausted or least recently leased), after a rate
   * limit (429), a spent quota, a revoked or disabled key (401, 402, 403) or a provider error
   * (5xx, 529, network error). Other responses (400, 404 …) are returned at once. An integer ≥ 0;
   * default 2 (at most three attempts).
   */
  readonly retries?: number;
  /**
   * What to ask the pool for each attempt's key (`tokens`, `priority`, `timeoutMs`), or a function
   * of the request that says so (called once per request with a readable copy, e.g. to estimate
   * `tokens` from the prompt). `timeoutMs` bounds each attempt's wait. Default: the pool's defaults.
   */
  readonly acquire?:
    | FetchAcquireOptions
    | ((request: Request) => FetchAcquireOptions | Promise<FetchAcquireOptions>);
  /** The fetch that sends the requests. Default: `globalThis.fetch`, looked up at each call. */
  readonly fetch?: typeof fetch;
  /**
   * Clock for `retry-after` dates and for {@link KeymeshFetchOptions.onTiming}. Default
   * `systemClock`; pass the pool's clock in tests and simulations.
   */
  readonly clock?: Clock;
  /**
   * Called after each attempt has been classified and its lease settled (for a successful body,
   * when its headers arrive). Must not throw: an exception is ignored, so that a hook can never
   * leave a lease unsettled.
   */
  readonly onAttempt?: (attempt: KeymeshFetchAttempt) => void;
  /**
   * Called when the body of a successful response has been read to its end (not for errors, nor
   * for a body that is cancelled or fails). Must not throw: an exception is ignored.
   */
  readonly onTiming?: (timing: KeymeshFetchTiming) => void;
}

const FETCH_OPTIONS: readonly string[] = [
  'inject',
  'retries',
  'acquire',
  'fetch',
  'clock',
  'onAttempt',
  'onTiming',
];
const FETCH_ACQUIRE_OPTIONS: readonly string[] = ['tokens', 'priority', 'timeoutMs'];

const KEY_HEADERS = ['authorization', 'x-api-key', 'x-goog-api-key'] as const;
const HEADER_OF = { bearer: 'authorization', 'x-api-key': 'x-api-key', 'x-goog-api-key': 'x-goog-api-key' };

/** Outcomes that say nothing against the request itself: another key (or the same later) may succeed. */
const RETRYABLE: ReadonlySet<OutcomeKind> = new Set([
  'rate-limited',
  'quota',
  'revoked',
  'disabled',
  'provider-error',
]);

const PROVIDER_ERROR: Outcome = { kind: 'provider-error' };

type AttemptResult =
  | { readonly kind: 'response'; readonly response: Response; readonly outcome: Outcome }
  | { readonly kind: 'thrown'; readonly error: unknown; readonly outcome: Outcome };

/**
 * A standard `fetch` that leases a key from `pool` for each request, puts it on the request
 * (`inject`), classifies the response (`classifyOutcome`, reading error bodies from a clone so that
 * a spent quota is told from a rate limit), settles the lease, and retries a rate limit, spent
 * quota, dead key or provider error with a fresh lease, up to `retries` times. Plug it into any
 * client that takes a custom fetch:
 *
 * ```ts
 * const fetch = keymeshFetch(pool);
 * const openai = new OpenAI({ apiKey: 'unused', fetch });
 * const anthropic = new Anthropic({ apiKey: 'unused', fetch: keymeshFetch(pool, { inject: 'x-api-key' }) });
 * ```
 *
 * The caller gets the provider's response unchanged — the last one when retries run out, or when
 * no key can come back in time for another attempt. A success is released with its headers (the
 * pool learns remaining/reset counters) and, when the body reports it, its token usage.
 *
 * Leases end with the body:
 * - a JSON success is read from a clone before the response is returned, then released (latency
 *   to its last byte); the caller's body stays unread;
 * - any other body (SSE streams) is passed through: the lease is released when the consumer reads
 *   the last byte (with the usage an OpenAI or Anthropic stream carried), failed as a provider
 *   error when the body breaks in transit, and released when the consumer cancels it or aborts
 *   the signal (stopping early is the caller's choice, not the key's fault). **Read or cancel every body**, as with any fetch: a
 *   stream that is dropped unread keeps its key's lease out.
 *
 * The request's `signal` aborts the wait for a key too: the call rejects with the signal's reason,
 * as `fetch` does. An abort before the response is settled as `withKey` settles an `AbortError` (the
 * caller's own: counted, never against the key) and is not retried. Other rejections: `NoAvailableKeyError`,
 * `QueueFullError`, `PoolClosedError` from the pool, and whatever the underlying fetch throws once
 * retries run out. The key never appears in errors, hooks or the response: only on the outgoing
 * request.
 */
export function keymeshFetch(pool: KeyPool, options: KeymeshFetchOptions = {}): typeof fetch {
  // Checked here, not at the first call: a wrong argument is a bug in the caller's setup.
  if (typeof pool !== 'object' || pool === null || typeof pool.acquire !== 'function') {
    throw new InvalidConfigError(
      'pool',
      `keymeshFetch() expects a KeyPool, got ${pool === null ? 'null' : typeof pool}`,
    );
  }
  if (typeof options !== 'object' || options === null) {
    throw new InvalidConfigError('options', 'keymeshFetch() expects an options object');
  }
  checkOptionNames('options', options, FETCH_OPTIONS);
  if (typeof options.acquire === 'object' && options.acquire !== null) {
    checkOptionNames('acquire', options.acquire, FETCH_ACQUIRE_OPTIONS);
    normalizeAcquireOptions(options.acquire, true, 0);
  } else if (options.acquire !== undefined && typeof options.acquire !== 'function') {
    throw new InvalidConfigError('acquire', 'expected acquire options or a function returning them');
  }
  for (const name of ['fetch', 'onAttempt', 'onTiming'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'function') {
      throw new InvalidConfigError(name, 'expected a function');
    }
  }
  const inject = options.inject ?? 'bearer';
  if (typeof inject !== 'function' && !Object.hasOwn(HEADER_OF, inject)) {
    throw new InvalidConfigError(
      'inject',
      `expected 'bearer', 'x-api-key', 'x-goog-api-key' or a function, got ${typeof inject === 'string' ? 'another string' : typeof inject}`,
    );
  }
  const retries = options.retries ?? 2;
  if (!Number.isInteger(retries) || retries < 0) {
    throw new InvalidConfigError('retries', `expected an integer ≥ 0, got ${retries}`);
  }
  const clock = options.clock ?? systemClock;

  const notify = <T>(hook: ((value: T) => void) | undefined, value: T): void => {
    try {
      hook?.(value);
    } catch {
      // Documented: hooks must not throw; a throwing one must not strand a lease.
    }
  };

  const withKey = async (request: ReplayableRequest, lease: Lease): Promise<Request> => {
    if (typeof inject === 'function') return inject(request.build(), lease.key);
    const headers = request.headers;
    for (const name of KEY_HEADERS) headers.delete(name);
    const header = HEADER_OF[inject];
    try {
      headers.set(header, inject === 'bearer' ? `Bearer ${lease.key}` : lease.key);
    } catch {
      // `Headers` quotes the offending value in its message: never let the secret through.
      throw new InvalidConfigError(
        'keys',
        `key ${lease.keyId} holds characters that the ${header} header cannot carry`,
      );
    }
    return request.build(headers);
  };

  /** Releases a success once its body is known, and reports its timing. */
  const releaseSuccess = (lease: Lease, headers: Headers, usage: TokenUsage | undefined): void => {
    if (lease.settled) return;
    // settleWithOutcome's success branch takes no usage; this is that branch plus `usage`.
    lease.release(usage === undefined ? { headers } : { headers, usage });
  };

  const timing = (lease: Lease, started: number, firstByteAt: number | undefined): void => {
    const now = clock.now();
    notify(options.onTiming, {
      keyId: lease.keyId,
      label: lease.label,
      ttfbMs: (firstByteAt ?? now) - started,
      totalMs: now - started,
    });
  };

  /**
   * Settles a success whose body failed. The provider had answered: an abort is the caller's choice
   * (released, as a cancel is); anything else broke in transit (a provider error).
   */
  const settleBrokenBody = (lease: Lease, error: unknown, signal: AbortSignal): void => {
    if (lease.settled) return;
    if (signal.aborted) lease.release();
    else settleWithOutcome(lease, PROVIDER_ERROR, error);
  };

  const succeed = async (
    lease: Lease,
    response: Response,
    started: number,
    signal: AbortSignal,
  ): Promise<AttemptResult> => {
    const outcome = classifyOutcome(response, { now: clock.now() });
    const { body, headers } = response;
    if (body === null) {
      releaseSuccess(lease, headers, undefined);
      timing(lease, started, undefined);
      return { kind: 'response', response, outcome };
    }
    const contentType = headers.get('content-type') ?? '';
    if (/\bjson\b/i.test(contentType)) {
      const copy = response.clone().body;
      let firstByteAt: number | undefined;
      let text = '';
      try {
        if (copy !== null) {
          text = await readBodyText(copy, () => {
            firstByteAt = clock.now();
          });
        }
      } catch (error) {
        // The caller's copy breaks the same way: it is returned, or retried when the provider broke it.
        settleBrokenBody(lease, error, signal);
        return { kind: 'response', response, outcome: signal.aborted ? outcome : PROVIDER_ERROR };
      }
      releaseSuccess(lease, headers, usageOfJsonText(text));
      timing(lease, started, firstByteAt);
      return { kind: 'response', response, outcome };
    }

    const sse = /^text\/event-stream\b/i.test(contentType) ? new SseUsageTap() : undefined;
    let firstByteAt: number | undefined;
    const watched = watchBody(body, {
      onChunk(chunk) {
        firstByteAt ??= clock.now();
        sse?.push(chunk);
      },
      onEnd() {
        releaseSuccess(lease, headers, sse?.usage);
        timing(lease, started, firstByteAt);
      },
      onError(error) {
        settleBrokenBody(lease, error, signal);
      },
      onCancel() {
        releaseSuccess(lease, headers, sse?.usage);
      },
    });
    const wrapped = new Response(watched, {
      status: response.status,
      statusText: response.statusText,
      headers,
    });
    // A constructed Response has no URL; the SDKs log and report it.
    Object.defineProperty(wrapped, 'url', { value: response.url });
    Object.defineProperty(wrapped, 'redirected', { value: response.redirected });
    return { kind: 'response', response: wrapped, outcome };
  };

  const attemptWith = async (
    request: ReplayableRequest,
    lease: Lease,
    send: typeof fetch,
  ): Promise<AttemptResult> => {
    let started = clock.now();
    let response: Response;
    try {
      const outgoing = await withKey(request, lease);
      started = clock.now();
      response = await (request.extras === undefined ? send(outgoing) : send(outgoing, request.extras));
    } catch (error) {
      // The caller's abort is settled as classifyOutcome settles an AbortError, whatever the signal's reason.
      const outcome = request.signal.aborted
        ? ABORTED
        : classifyOutcome(error, { now: clock.now(), ...UNBOUNDED_HINTS });
      if (!lease.settled) settleWithOutcome(lease, outcome, error);
      return { kind: 'thrown', error, outcome };
    }
    if (response.status < 400) return succeed(lease, response, started, request.signal);

    let body: string | undefined;
    try {
      body = await response.clone().text();
    } catch {
      body = undefined;
    }
    const { status, headers } = response;
    // Unbounded: the pool screens the wait against its own maxRetryAfterMs / maxQuotaResetMs, and counts it.
    const outcome = classifyOutcome(body === undefined ? response : { status, headers, body }, {
      now: clock.now(),
      ...UNBOUNDED_HINTS,
    });
    if (!lease.settled) settleWithOutcome(lease, outcome, response, headers);
    return { kind: 'response', response, outcome };
  };

  return async function fetchWithPooledKey(input, init) {
    const request = await ReplayableRequest.from(input, init);
    const { signal } = request;
    if (signal.aborted) throw signal.reason;
    const send = options.fetch ?? globalThis.fetch;
    const wanted =
      typeof options.acquire === 'function' ? await options.acquire(request.build()) : options.acquire;

    let previous: AttemptResult | undefined;
    for (let attempt = 1; ; attempt++) {
      let lease: Lease;
      try {
        lease = await pool.acquire({ ...wanted, signal });
      } catch (error) {
        // No key can come back in time for a retry: the provider's last word beats ours.
        if (previous !== undefined && error instanceof NoAvailableKeyError) return deliver(previous);
        await discard(previous);
        if (error instanceof AcquireAbortedError && signal.aborted) throw signal.reason;
        throw error;
      }
      await discard(previous);
      const result = await attemptWith(request, lease, send);
      const retrying = attempt <= retries && RETRYABLE.has(result.outcome.kind) && !signal.aborted;
      notify(options.onAttempt, {
        attempt,
        keyId: lease.keyId,
        label: lease.label,
        status: result.kind === 'response' ? result.response.status : undefined,
        outcome: result.outcome,
        retrying,
      });
      if (!retrying) return deliver(result);
      previous = result;
    }
  };
}

/** The attempt's answer to the caller: its response, or what it threw. */
function deliver(result: AttemptResult): Response {
  if (result.kind === 'thrown') throw result.error;
  return result.response;
}

/** Frees the connection behind a response that will not be returned. */
async function discard(result: AttemptResult | undefined): Promise<void> {
  if (result?.kind !== 'response') return;
  try {
    await result.response.body?.cancel();
  } catch {
    // Already errored or consumed: nothing left to free.
  }
}

function usageOfJsonText(text: string): TokenUsage | undefined {
  try {
    return usageFromJson(JSON.parse(text));
  } catch {
    return undefined;
  }
}
