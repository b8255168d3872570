import { systemClock } from '../clock.js';
import { type Evidence, gatherEvidence, property } from './evidence.js';
import { parseDurationString, parseRateLimitHeaders, parseRetryAfter } from './headers.js';
import { DEFAULT_HINT_BOUNDS, type HintBounds, isUsableHint } from './hints.js';
import type { LimitScope, Outcome, RateLimitInfo } from './outcome.js';

/** Options of {@link classifyOutcome}. */
export interface ClassifyOptions {
  /**
   * Epoch ms that waits are measured from (HTTP-date `retry-after`, RFC 3339 resets).
   * Default: `systemClock.now()`. Pass the pool's clock in simulations and tests.
   */
  readonly now?: number;
  /**
   * Longest rate-limit wait worth honouring (ms): a `retryAfterMs` of a rate limit or provider
   * error, or a reset of a success's counters, beyond it is absurd and left out, as if the provider
   * had stated none. Default 86 400 000 (24 h, the longest window providers use); `Infinity`: no bound.
   */
  readonly maxRetryAfterMs?: number;
  /**
   * Longest spent-quota wait worth honouring (ms); beyond it a quota's `retryAfterMs` is left out.
   * Default 2 764 800 000 (32 days: a billing month, plus a day for time zones); `Infinity`: no bound.
   */
  readonly maxQuotaResetMs?: number;
}

// Codes, types, gRPC statuses and ErrorInfo reasons, lower-cased. A code is more specific than the
// HTTP status, so these are consulted first (Gemini sends a bad key as 400, not 401).
const REVOKED_CODES = new Set([
  'invalid_api_key',
  'api_key_invalid',
  'account_deactivated',
  'authentication_error',
  'permission_error',
  'unauthenticated',
  'permission_denied',
]);
const DISABLED_CODES = new Set([
  'billing_error',
  'billing_not_active',
  'billing_hard_limit_reached',
  'payment_required',
]);
// Spend quotas belong to the account (OpenAI organisation or project, Anthropic workspace), never to one key.
const SPEND_QUOTA_CODES = new Set(['insufficient_quota', 'enforced_spend_limit_reached']);
const RATE_LIMIT_CODES = new Set([
  'rate_limit_exceeded',
  'rate_limit_error',
  'resource_exhausted',
  'too_many_requests',
  'ratelimitexceeded',
]);
const PROVIDER_CODES = new Set([
  'overloaded_error',
  'api_error',
  'server_error',
  'timeout_error',
  'service_unavailable',
  'unavailable',
  'internal',
  'deadline_exceeded',
]);
const NETWORK_CODES = new Set([
  'econnreset',
  'econnrefused',
  'econnaborted',
  'etimedout',
  'esockettimedout',
  'epipe',
  'enotfound',
  'eai_again',
  'ehostunreach',
  'enetunreach',
  'enetdown',
  'err_network',
  // node-fetch's FetchError puts its kind in `type`.
  'request-timeout',
  'body-timeout',
]);
// Error names and classes of timeouts and broken connections: DOMException's `TimeoutError`
// (`AbortSignal.timeout`), undici's, and the OpenAI and Anthropic SDKs' (whose class is the only
// sign: OpenAI v6 leaves `name` as "Error").
const NETWORK_NAMES = new Set([
  'TimeoutError',
  'APIConnectionError',
  'APIConnectionTimeoutError',
  'ConnectTimeoutError',
  'HeadersTimeoutError',
  'BodyTimeoutError',
  'SocketError',
]);
// What fetch implementations throw as a TypeError when the connection fails (undici, Chrome, Safari,
// Firefox), and the OpenAI / Anthropic SDKs' default messages for a timeout and a lost connection
// (for bundles that minify the class names away).
const NETWORK_MESSAGE =
  /^(?:fetch failed|failed to fetch|load failed|terminated|networkerror when attempting to fetch resource\.?|request timed out\.?|connection error\.?)$/i;
// The caller's own cancellation: an `AbortSignal` aborted without a reason (DOMException
// `AbortError`, Node's `ABORT_ERR`), the OpenAI / Anthropic SDKs' `APIUserAbortError`, Axios's
// `CanceledError` (`ERR_CANCELED`).
const ABORT_NAMES = new Set(['AbortError', 'APIUserAbortError', 'CanceledError']);
const ABORT_CODES = new Set(['abort_err', 'err_canceled']);
const ABORT_MESSAGE = /^request was aborted\.?$/i;

const CREDIT_EXHAUSTED = /credit balance is too low/i;
const WORKSPACE_LIMIT = /workspace api usage limits/i;
const REGAIN_ACCESS = /regain access on (\d{4})-(\d{2})-(\d{2}) at (\d{2}):(\d{2}) UTC/i;
const DAILY = /per[ -]?day|daily/i;
const SHARED_QUOTA = /organi[sz]ation|project|workspace/i;
const ZERO_LIMIT = /\blimit:\s*0(?![\d.])/i;
const RETRY_IN_DURATION =
  /(?:retry|try again) (?:in|after) ~?\s*((?:\d+(?:\.\d+)?(?:ms|us|µs|ns|h|m|s))+)(?![a-z])/i;
const RETRY_IN_SECONDS = /(?:retry|try again) (?:in|after) (\d+(?:\.\d+)?) ?(?:seconds?|secs?)\b/i;

type Verdict = 'revoked' | 'disabled' | 'limited' | 'provider-error' | 'aborted';

function hasAny(codes: ReadonlySet<string>, wanted: ReadonlySet<string>): boolean {
  for (const code of codes) if (wanted.has(code)) return true;
  return false;
}

function anyMessage(evidence: Evidence, pattern: RegExp): boolean {
  return evidence.messages.some((message) => pattern.test(message));
}

function verdictFromCodes(evidence: Evidence): Verdict | undefined {
  const { codes } = evidence;
  if (hasAny(codes, REVOKED_CODES)) return 'revoked';
  if (hasAny(codes, DISABLED_CODES) || anyMessage(evidence, CREDIT_EXHAUSTED)) return 'disabled';
  if (hasAny(codes, SPEND_QUOTA_CODES) || hasAny(codes, RATE_LIMIT_CODES)) return 'limited';
  if (anyMessage(evidence, WORKSPACE_LIMIT)) return 'limited';
  if (hasAny(codes, PROVIDER_CODES)) return 'provider-error';
  return undefined;
}

function verdictFromStatus(status: number | undefined): Verdict | undefined {
  if (status === undefined) return undefined;
  if (status === 401 || status === 403) return 'revoked';
  if (status === 402) return 'disabled';
  if (status === 429) return 'limited';
  if (status === 408 || status >= 500) return 'provider-error';
  return undefined;
}

function isNetworkFailure(evidence: Evidence): boolean {
  for (const code of evidence.codes) if (NETWORK_CODES.has(code) || code.startsWith('und_err_')) return true;
  for (const name of evidence.names) if (NETWORK_NAMES.has(name)) return true;
  return anyMessage(evidence, NETWORK_MESSAGE);
}

function isCallerAbort(evidence: Evidence): boolean {
  return (
    hasAny(evidence.names, ABORT_NAMES) ||
    hasAny(evidence.codes, ABORT_CODES) ||
    anyMessage(evidence, ABORT_MESSAGE)
  );
}

/** Without a status: a timeout or a broken connection is the provider's (or the network's); an abort the caller's. */
function verdictWithoutStatus(evidence: Evidence): Verdict | undefined {
  if (isNetworkFailure(evidence)) return 'provider-error';
  return isCallerAbort(evidence) ? 'aborted' : undefined;
}

/** What Google's `google.rpc` details say about a `RESOURCE_EXHAUSTED`. */
interface QuotaDetails {
  /** A violated quota is per day: waiting out the minute will not help. */
  readonly daily: boolean;
  /** A violated quota has a limit of 0: the tier has no quota at all for the model. */
  readonly zeroLimit: boolean;
  /** A violated quota is per project, shared by every key of that project. */
  readonly perProject: boolean;
  /** `RetryInfo.retryDelay`, in ms. */
  readonly retryDelayMs: number | undefined;
}

function isZero(value: unknown): boolean {
  return value === 0 || value === '0';
}

function parseRetryDelay(value: unknown): number | undefined {
  if (typeof value === 'string') return parseDurationString(value);
  // Protobuf JSON writes `"46s"`, but clients that decode the message hand over `{ seconds, nanos }`.
  if (typeof value !== 'object' || value === null) return undefined;
  const ms = Number(property(value, 'seconds') ?? 0) * 1000 + Number(property(value, 'nanos') ?? 0) / 1e6;
  return Number.isFinite(ms) && ms >= 0 ? Math.ceil(ms) : undefined;
}

function readQuotaDetails(details: readonly object[]): QuotaDetails {
  let daily = false;
  let zeroLimit = false;
  let perProject = false;
  let retryDelayMs: number | undefined;
  const notice = (quotaId: unknown, limit: unknown): void => {
    if (typeof quotaId === 'string') {
      daily ||= DAILY.test(quotaId);
      perProject ||= /project/i.test(quotaId);
    }
    zeroLimit ||= isZero(limit);
  };
  for (const detail of details) {
    const type = String(property(detail, '@type'));
    if (type.endsWith('.RetryInfo')) {
      retryDelayMs ??= parseRetryDelay(property(detail, 'retryDelay'));
    } else if (type.endsWith('.QuotaFailure')) {
      const violations = property(detail, 'violations');
      for (const violation of Array.isArray(violations) ? violations : []) {
        notice(
          property(violation, 'quotaId'),
          property(violation, 'quotaValue') ?? property(violation, 'limit'),
        );
        const description = property(violation, 'description');
        if (typeof description === 'string') daily ||= DAILY.test(description);
      }
    } else if (type.endsWith('.ErrorInfo')) {
      const metadata = property(detail, 'metadata');
      notice(property(metadata, 'quota_limit'), property(metadata, 'quota_limit_value'));
    }
  }
  return { daily, zeroLimit, perProject, retryDelayMs };
}

function waitFromMessages(messages: readonly string[]): number | undefined {
  for (const message of messages) {
    const duration = RETRY_IN_DURATION.exec(message)?.[1];
    const wait = duration === undefined ? undefined : parseDurationString(duration);
    if (wait !== undefined) return wait;
    const seconds = RETRY_IN_SECONDS.exec(message)?.[1];
    if (seconds !== undefined) return parseRetryAfter(seconds);
  }
  return undefined;
}

/** Anthropic's workspace spend limit says when access returns: "regain access on 2025-06-01 at 00:00 UTC". */
function waitFromRegainDate(messages: readonly string[], now: number): number | undefined {
  for (const message of messages) {
    const match = REGAIN_ACCESS.exec(message);
    if (match === null) continue;
    const [, year, month, day, hour, minute] = match.map(Number);
    if (year === undefined || month === undefined || day === undefined) continue;
    return Math.max(0, Date.UTC(year, month - 1, day, hour ?? 0, minute ?? 0) - now);
  }
  return undefined;
}

/**
 * On a 429 without an explicit wait, the reset of the exhausted window is the earliest moment a
 * retry can succeed. If no window reports 0 remaining, the latest reset is the one that surely
 * covers whichever window refused the call.
 */
function waitFromResets(info: RateLimitInfo): number | undefined {
  const exhausted: number[] = [];
  if (info.remainingRequests === 0 && info.resetRequestsMs !== undefined)
    exhausted.push(info.resetRequestsMs);
  if (info.remainingTokens === 0 && info.resetTokensMs !== undefined) exhausted.push(info.resetTokensMs);
  const candidates =
    exhausted.length > 0
      ? exhausted
      : [info.resetRequestsMs, info.resetTokensMs].filter((ms): ms is number => ms !== undefined);
  return candidates.length > 0 ? Math.max(...candidates) : undefined;
}

function withStatus<T extends Outcome>(outcome: T, status: number | undefined): T {
  return status === undefined ? outcome : { ...outcome, status };
}

/** `outcome` with the wait, when one was stated and is within `maxMs` (else it is absurd: no wait). */
function withWait<T extends Outcome>(outcome: T, retryAfterMs: number | undefined, maxMs: number): T {
  return retryAfterMs === undefined || !isUsableHint(retryAfterMs, maxMs)
    ? outcome
    : { ...outcome, retryAfterMs };
}

const RESET_FIELDS = ['retryAfterMs', 'resetRequestsMs', 'resetTokensMs'] as const;

/** A success's counters without a reset beyond `maxMs`. */
function boundedInfo(info: RateLimitInfo, maxMs: number): RateLimitInfo {
  const bounded: RateLimitInfo = { ...info };
  for (const field of RESET_FIELDS) {
    const ms = bounded[field];
    if (ms !== undefined && !isUsableHint(ms, maxMs)) delete bounded[field];
  }
  return bounded;
}

/**
 * Splits a limit into a short rate limit or a spent quota, finds whose it is, and how long it lasts.
 *
 * Scope is `'group'` only when the provider says the limit is not the key's own: an OpenAI
 * `insufficient_quota` (billing is per organisation / project), an Anthropic workspace spend
 * limit, a Gemini quota id with `PerProject`, or a message naming the organisation, project or
 * workspace (OpenAI "in organization org-…", Anthropic "for your organization"). The same 429 seen
 * without its body (a bare fetch `Response`) is therefore `'key'`: nothing said otherwise.
 */
function classifyLimit(evidence: Evidence, now: number, bounds: HintBounds): Outcome {
  const { status, messages } = evidence;
  const headers = parseRateLimitHeaders(evidence.headers, now);
  const quota = readQuotaDetails(evidence.details);
  const spend = hasAny(evidence.codes, SPEND_QUOTA_CODES) || anyMessage(evidence, WORKSPACE_LIMIT);
  const scope: LimitScope = spend || quota.perProject || anyMessage(evidence, SHARED_QUOTA) ? 'group' : 'key';

  if (spend) {
    const wait = headers.retryAfterMs ?? waitFromRegainDate(messages, now);
    return withStatus(withWait({ kind: 'quota', scope }, wait, bounds.maxQuotaResetMs), status);
  }
  const wait =
    headers.retryAfterMs ?? quota.retryDelayMs ?? waitFromMessages(messages) ?? waitFromResets(headers);
  // A limit of 0 (no quota at all for the model on this tier) is a spent quota, not a rate limit:
  // the key is out until the retryDelay Gemini states, and then probed, never hammered.
  const zeroLimit = quota.zeroLimit || anyMessage(evidence, ZERO_LIMIT);
  const kind = zeroLimit || quota.daily || anyMessage(evidence, DAILY) ? 'quota' : 'rate-limited';
  const maxMs = kind === 'quota' ? bounds.maxQuotaResetMs : bounds.maxRetryAfterMs;
  return withStatus(withWait({ kind, scope }, wait, maxMs), status);
}

/**
 * Maps whatever a provider call produced to an {@link Outcome}, without importing any SDK.
 *
 * Accepts, duck-typed:
 * - a fetch `Response` or any `{ status | statusCode, headers }`, or a bare status number;
 * - SDK errors from OpenAI, Azure OpenAI, Anthropic and Google (`status`, `headers`, `error`,
 *   `code`, `type`, JSON embedded in `message`); the Vercel AI SDK's `APICallError`
 *   (`statusCode`, `responseHeaders`, `responseBody`) and `RetryError` (`lastError`);
 * - Axios / got errors (`response.status | statusCode`, `response.headers`, `response.data | body`);
 * - bodies as objects or JSON strings, including Google `details` (`RetryInfo`, `QuotaFailure`,
 *   `ErrorInfo`);
 * - timeouts and network errors (`ECONNRESET`, `ETIMEDOUT`, `UND_ERR_*`, `TimeoutError`,
 *   `TypeError: fetch failed` with its `cause`, the OpenAI and Anthropic SDKs'
 *   `APIConnectionError` / `APIConnectionTimeoutError`, the AI SDK's `APICallError` / `RetryError`
 *   around them): `provider-error`, which counts against a key only if it fails alone, so an
 *   outage never exhausts the pool;
 * - the caller's own abort (`AbortError`, `APIUserAbortError`, Axios `CanceledError`): `aborted`,
 *   which never counts against the key. A timeout wins over an abort when both are present.
 *
 * Precedence: a 2xx status is a success, whatever else is attached. Otherwise a recognised code
 * beats the HTTP status (Gemini's bad key is a 400; OpenAI's `billing_not_active` is a 429),
 * the status beats network hints, and what remains is `failed`. Waits come from the most explicit
 * source: `retry-after-ms` / `x-ms-retry-after-ms` / `retry-after` headers, then Gemini
 * `RetryInfo`, then the message ("Please try again in 20s"), then the rate-limit reset headers.
 *
 * Every wait is finite, ≥ 0 and within its bound (`maxRetryAfterMs`, `maxQuotaResetMs`): a
 * non-finite or absurd hint (`retry-after: 99999999999`) is left out, as if none had been stated.
 *
 * Never throws. `null` / `undefined` (a failure reported without an error) is `failed`.
 *
 * @param errorOrResponse what the call returned or threw.
 * @param options `now`, in epoch ms, defaults to `systemClock.now()`; the hint bounds.
 */
export function classifyOutcome(errorOrResponse: unknown, options: ClassifyOptions = {}): Outcome {
  const now = options.now ?? systemClock.now();
  const bounds: HintBounds = {
    maxRetryAfterMs: options.maxRetryAfterMs ?? DEFAULT_HINT_BOUNDS.maxRetryAfterMs,
    maxQuotaResetMs: options.maxQuotaResetMs ?? DEFAULT_HINT_BOUNDS.maxQuotaResetMs,
  };
  const evidence = gatherEvidence(
    typeof errorOrResponse === 'number' ? { status: errorOrResponse } : errorOrResponse,
  );
  const { status } = evidence;
  if (status !== undefined && status >= 200 && status < 300) {
    const rateLimit = boundedInfo(parseRateLimitHeaders(evidence.headers, now), bounds.maxRetryAfterMs);
    return Object.keys(rateLimit).length > 0 ? { kind: 'success', rateLimit } : { kind: 'success' };
  }
  const verdict =
    verdictFromCodes(evidence) ??
    verdictFromStatus(status) ??
    (status === undefined ? verdictWithoutStatus(evidence) : undefined);
  switch (verdict) {
    case 'revoked':
      return withStatus({ kind: 'revoked' }, status);
    case 'disabled':
      return withStatus({ kind: 'disabled' }, status);
    case 'limited':
      return classifyLimit(evidence, now, bounds);
    case 'provider-error': {
      const headers = parseRateLimitHeaders(evidence.headers, now);
      const wait = headers.retryAfterMs ?? readQuotaDetails(evidence.details).retryDelayMs;
      return withStatus(withWait({ kind: 'provider-error' }, wait, bounds.maxRetryAfterMs), status);
    }
    case 'aborted':
      return { kind: 'aborted' };
    default:
      return withStatus({ kind: 'failed' }, status);
  }
}
