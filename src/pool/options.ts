import type { InspectionEvent, Observer } from 'xstate';
import { type Clock, clockReadingFault, MAX_TIMER_MS, systemClock } from '../clock.js';
import { InvalidConfigError } from '../errors.js';
import { type BudgetLimits, hasBudget } from '../limits/budget.js';
import { DEFAULT_HINT_BOUNDS } from '../limits/hints.js';
import type { FailureKind, KeySettings } from '../machines/key.types.js';
import { DEFAULT_OUTAGE, type OutageSettings } from '../machines/pool.machine.js';
import { checkStorageTimeoutMs } from '../storage/load.js';
import { memoryStorage } from '../storage/memory.js';
import type { StorageAdapter } from '../storage/types.js';
import type { CustomStrategy, StrategyName } from './strategies/types.js';

/** One key with its own settings. */
export interface KeyConfig {
  /** The raw API key. Kept in the pool's private map and in `Lease.key` only. */
  readonly key: string;
  /** A name shown instead of the fingerprint in snapshots, events and metrics. Never the key. */
  readonly label?: string;
  /** Share for the `weighted` strategy. Default 1; ≥ 0; 0 = drained (never chosen by `weighted`). */
  readonly weight?: number;
  /** Concurrent leases on this key. Default: the pool's `maxConcurrentPerKey`; integer ≥ 1 or `Infinity`. */
  readonly maxConcurrent?: number;
  /**
   * Requests per minute this key may make. Paced evenly (one request every 60 000 / rpm ms, no
   * burst), which never trips a provider's per-second or per-minute window. Integer ≥ 1; default none.
   */
  readonly rpm?: number;
  /** Tokens per minute (input + output), paced by weight; reserve with `acquire({ tokens })`, reconcile with `release({ usage })`. Integer ≥ 1. */
  readonly tpm?: number;
  /** Requests per day; the whole day's budget may be used as a burst. Integer ≥ 1. */
  readonly rpd?: number;
  /**
   * Keys sharing a provider quota (one OpenAI project, one Gemini project) share a group name: when
   * the provider says the shared quota (not the key) is spent, they all rest together.
   */
  readonly group?: string;
}

/**
 * Options of {@link KeyPool.create}. Every one is validated; a bad one is an `InvalidConfigError`
 * naming it (an unknown name is echoed only when it is a near miss of a known one, since it could
 * be a secret). Every duration is in ms, from 0 to 2³¹ − 1 (the longest a timer can wait).
 */
export interface KeyPoolOptions {
  /** The keys: raw strings or {@link KeyConfig}s. At least one; no duplicates; no empty strings. */
  readonly keys: ReadonlyArray<string | KeyConfig>;
  /**
   * How a key is chosen among the eligible ones. Default `'least-busy'`.
   * - `'least-busy'`: fewest in flight; ties → least recently leased → configured order.
   * - `'round-robin'`: a stable ring in configured order; ineligible keys are skipped.
   * - `'weighted'`: smooth weighted round robin over `weight` (exact, deterministic proportions).
   * - `'latency'`: power of two choices on latency EWMA × (in flight + 1), penalising recent trouble.
   * - a function: see {@link CustomStrategy}.
   */
  readonly strategy?: StrategyName | CustomStrategy;
  /** Default concurrency cap for keys without their own. Default `Infinity`; integer ≥ 1 or `Infinity`. */
  readonly maxConcurrentPerKey?: number;
  /** Longest cooldown (ms) for a rate limit without a retry hint (escalation 1 s, 2 s, 4 s … up to this). Default 60 000; 0 to 2³¹ − 1. */
  readonly defaultCooldownMs?: number;
  /**
   * Longest rest a provider's rate-limit hint may impose (ms): `retry-after`, `retry-after-ms`,
   * reset headers, `retryDelay`, `rateLimited({ retryAfterMs })`. A hint beyond it, or non-finite,
   * is absurd (`retry-after: 99999999999`): the key acts as if none was stated, and
   * `snapshot().metrics.ignoredHints` counts it. Default 86 400 000 (24 h: the longest window
   * providers use, a day); ≥ 0, finite.
   */
  readonly maxRetryAfterMs?: number;
  /**
   * Longest rest a spent quota's stated reset may impose (ms): `fail(…, { kind: 'quota',
   * retryAfterMs })`, a classified quota's reset. Beyond it, or non-finite, the key falls back to
   * half-open probing, and `ignoredHints` counts it. Default 2 764 800 000 (32 days: a billing
   * month, plus a day for time zones); from 0 to {@link MAX_QUOTA_RESET_MS} (366 days). It may
   * exceed a Node timer's reach (2³¹ − 1 ms): the system clock's timers re-arm past it, and a custom
   * clock's `setTimeout` must do the same to honour such a rest.
   */
  readonly maxQuotaResetMs?: number;
  /** Consecutive failures before a key is `exhausted`. Default 10; integer ≥ 1. */
  readonly maxFailures?: number;
  /** How long `acquire()` waits by default (ms). Default 30 000; 0 to 2³¹ − 1, or `Infinity`. */
  readonly acquireTimeoutMs?: number;
  /** Most callers allowed to wait at once; beyond it `acquire()` rejects with `QueueFullError`. Default `Infinity`. */
  readonly maxWaiters?: number;
  /** Half-open recovery of exhausted keys: first delay (default 30 000 ms), doubling per failed probe up to `maxDelayMs` (default 1 800 000 ms). */
  readonly recovery?: { readonly initialDelayMs?: number; readonly maxDelayMs?: number };
  /** Weight of the newest latency sample in the EWMA. Default 0.2; in (0, 1]. */
  readonly latencyAlpha?: number;
  /** How long (ms) a failure or rate limit penalises a key in the `latency` strategy. Default 30 000. */
  readonly latencyPenaltyMs?: number;
  /** Seed for the `latency` strategy's choices and for recovery jitter. Default: random. Integer. */
  readonly seed?: number;
  /** Where per-key state is persisted. Default: `memoryStorage()`. */
  readonly storage?: StorageAdapter;
  /** Counter-only changes reach storage at most once per key per this interval (ms). Default 1 000; 0 to 2³¹ − 1. */
  readonly flushIntervalMs?: number;
  /**
   * How long `create()` and `addKey()` wait for `storage.load()` before rejecting with a
   * `StorageError`, and the pool for a `storage.save()` before reporting it (`storage-error`) and
   * retrying (ms, on `clock`). Default 30 000; from 1 to 2³¹ − 1.
   */
  readonly storageTimeoutMs?: number;
  /**
   * Time source. Default: the system clock. Inject a `VirtualClock` for tests and simulation. Probed
   * once at `create`: a `now()` that throws or is not a finite number is an `InvalidConfigError`.
   */
  readonly clock?: Clock;
  /**
   * Telling a provider outage from a bad key: a 5xx/529/network error counts against its key only
   * once another key's call, started after it, succeeds; when most of the pool fails within
   * `windowMs` (ms, default 2 000) the pool backs off as a whole, `initialBackoffMs` (default 250)
   * doubling to `maxBackoffMs` (default 1 000), short so that recovery is seen within about that.
   */
  readonly outage?: {
    readonly windowMs?: number;
    readonly initialBackoffMs?: number;
    readonly maxBackoffMs?: number;
  };
  /** Passed to XState's `createActor` for Stately inspection. Off by default (it costs ~50 % per event). */
  readonly inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
}

/** A key after validation: secret, fingerprint-free settings resolved. */
export interface NormalizedKey {
  readonly secret: string;
  readonly label: string | null;
  readonly weight: number;
  readonly maxConcurrent: number;
  readonly budget: BudgetLimits | null;
  readonly group: string | null;
}

export interface NormalizedOptions {
  readonly keys: readonly NormalizedKey[];
  readonly strategy: StrategyName | CustomStrategy;
  readonly maxConcurrentPerKey: number;
  readonly defaultCooldownMs: number;
  readonly maxRetryAfterMs: number;
  readonly maxQuotaResetMs: number;
  readonly maxFailures: number;
  readonly acquireTimeoutMs: number;
  readonly maxWaiters: number;
  readonly recoveryInitialDelayMs: number;
  readonly recoveryMaxDelayMs: number;
  readonly latencyAlpha: number;
  readonly latencyPenaltyMs: number;
  readonly seed: number;
  readonly storage: StorageAdapter;
  readonly flushIntervalMs: number;
  readonly storageTimeoutMs: number;
  readonly clock: Clock;
  readonly inspect: KeyPoolOptions['inspect'];
  readonly outage: OutageSettings;
}

const STRATEGIES: readonly StrategyName[] = ['least-busy', 'round-robin', 'weighted', 'latency'];
const OPTION_NAMES: readonly string[] = [
  'keys',
  'strategy',
  'maxConcurrentPerKey',
  'defaultCooldownMs',
  'maxRetryAfterMs',
  'maxQuotaResetMs',
  'maxFailures',
  'acquireTimeoutMs',
  'maxWaiters',
  'recovery',
  'latencyAlpha',
  'latencyPenaltyMs',
  'seed',
  'storage',
  'flushIntervalMs',
  'storageTimeoutMs',
  'clock',
  'inspect',
  'outage',
];
const KEY_FIELDS: readonly string[] = [
  'key',
  'label',
  'weight',
  'maxConcurrent',
  'rpm',
  'tpm',
  'rpd',
  'group',
];
const RECOVERY_FIELDS: readonly string[] = ['initialDelayMs', 'maxDelayMs'];
const OUTAGE_FIELDS: readonly string[] = ['windowMs', 'initialBackoffMs', 'maxBackoffMs'];

export { MAX_TIMER_MS };

/** A number of ms in [0, {@link MAX_TIMER_MS}]; `Infinity` too where `allowInfinity`. */
export function checkDuration(field: string, value: unknown, allowInfinity: boolean): number {
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < 0 ||
    (value > MAX_TIMER_MS && !(allowInfinity && value === Number.POSITIVE_INFINITY))
  ) {
    throw new InvalidConfigError(
      field,
      `expected a number of ms from 0 to ${MAX_TIMER_MS} (the longest a timer can wait)${allowInfinity ? ' or Infinity' : ''}, got ${describe(value)}`,
    );
  }
  return value;
}

/** Levenshtein distance, stopping early: only "is it within `max`" matters. */
function withinEdits(a: string, b: string, max: number): boolean {
  if (Math.abs(a.length - b.length) > max) return false;
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + cost);
      next.push(value);
      best = Math.min(best, value);
    }
    if (best > max) return false;
    row = next;
  }
  return (row[b.length] ?? max + 1) <= max;
}

/**
 * Rejects any own property of `value` not in `accepted`. An unknown name could be a secret (`{
 * [apiKey]: {} }`), so it is echoed only when it is a near miss of an accepted name (a typo:
 * `maxConcurent`), which a secret cannot be; otherwise it is named by its position.
 */
export function checkOptionNames(where: string, value: object, accepted: readonly string[]): void {
  let position = 0;
  for (const name in value) {
    if (!Object.hasOwn(value, name)) continue;
    position++;
    if (accepted.includes(name)) continue;
    const near = accepted.find((known) => name.length <= 40 && withinEdits(name, known, 2));
    const list = `accepted: ${accepted.join(', ')}`;
    throw near === undefined
      ? new InvalidConfigError(
          where,
          `unknown option (the ${ordinal(position)} one given; its name is not shown, as it may be a secret); ${list}`,
        )
      : new InvalidConfigError(
          where === 'options' ? name : `${where}.${name}`,
          `unknown option (did you mean \`${near}\`?); ${list}`,
        );
  }
}

function ordinal(n: number): string {
  const suffix =
    n % 10 === 1 && n % 100 !== 11
      ? 'st'
      : n % 10 === 2 && n % 100 !== 12
        ? 'nd'
        : n % 10 === 3 && n % 100 !== 13
          ? 'rd'
          : 'th';
  return `${n}${suffix}`;
}

/** A clock whose first readings are unusable is refused at `create`, not discovered mid-flight. */
function probeClock(clock: Clock): void {
  let threw: unknown;
  const read = (name: 'now' | 'monotonic') => () => {
    try {
      return name === 'now' ? clock.now() : clock.monotonic?.();
    } catch (error) {
      threw = error;
      throw error;
    }
  };
  if (clock.monotonic !== undefined && typeof clock.monotonic !== 'function') {
    throw new InvalidConfigError('clock', 'monotonic, when given, must be a function');
  }
  if (clock.keepAlive !== undefined && typeof clock.keepAlive !== 'function') {
    throw new InvalidConfigError('clock', 'keepAlive, when given, must be a function');
  }
  for (const name of ['now', 'monotonic'] as const) {
    if (name === 'monotonic' && clock.monotonic === undefined) continue;
    const fault = clockReadingFault(read(name));
    if (fault !== undefined) {
      throw new InvalidConfigError('clock', `${name}() ${fault}`, { cause: threw });
    }
  }
}

function checkCap(field: string, value: unknown): number {
  if (
    typeof value !== 'number' ||
    !(value === Number.POSITIVE_INFINITY || (Number.isInteger(value) && value >= 1))
  ) {
    throw new InvalidConfigError(field, `expected an integer ≥ 1 or Infinity, got ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) {
    return String(value);
  }
  return typeof value;
}

function normalizeKey(entry: unknown, index: number, defaultCap: number): NormalizedKey {
  const field = `keys[${index}]`;
  if (typeof entry === 'string') {
    if (entry.length === 0) throw new InvalidConfigError(field, 'a key must be a non-empty string');
    return { secret: entry, label: null, weight: 1, maxConcurrent: defaultCap, budget: null, group: null };
  }
  if (typeof entry !== 'object' || entry === null) {
    throw new InvalidConfigError(field, `expected a string or { key, … }, got ${describe(entry)}`);
  }
  checkOptionNames(field, entry, KEY_FIELDS);
  const config = entry as Record<string, unknown>;
  if (typeof config.key !== 'string' || config.key.length === 0) {
    throw new InvalidConfigError(`${field}.key`, 'a key must be a non-empty string');
  }
  if (config.label !== undefined && (typeof config.label !== 'string' || config.label.length === 0)) {
    throw new InvalidConfigError(`${field}.label`, 'expected a non-empty string');
  }
  if (typeof config.label === 'string' && config.label.includes(config.key)) {
    throw new InvalidConfigError(`${field}.label`, 'a label must not contain the key itself');
  }
  const weight = config.weight === undefined ? 1 : config.weight;
  if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0) {
    throw new InvalidConfigError(`${field}.weight`, `expected a finite number ≥ 0, got ${describe(weight)}`);
  }
  const maxConcurrent =
    config.maxConcurrent === undefined
      ? defaultCap
      : checkCap(`${field}.maxConcurrent`, config.maxConcurrent);
  const limit = (name: 'rpm' | 'tpm' | 'rpd'): number | null => {
    const value = config[name];
    if (value === undefined) return null;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      throw new InvalidConfigError(`${field}.${name}`, `expected an integer ≥ 1, got ${describe(value)}`);
    }
    return value;
  };
  const budget: BudgetLimits = { rpm: limit('rpm'), tpm: limit('tpm'), rpd: limit('rpd') };
  if (config.group !== undefined && (typeof config.group !== 'string' || config.group.length === 0)) {
    throw new InvalidConfigError(`${field}.group`, 'expected a non-empty string');
  }
  return {
    secret: config.key,
    label: typeof config.label === 'string' ? config.label : null,
    weight,
    maxConcurrent,
    budget: hasBudget(budget) ? budget : null,
    group: typeof config.group === 'string' ? config.group : null,
  };
}

/** Validates one key given to `addKey` at runtime. */
export function normalizeRuntimeKey(entry: unknown, defaultCap: number): NormalizedKey {
  return normalizeKey(entry, 0, defaultCap);
}

/** Validates every option and fills in the defaults. Errors name the field, never the secret. */
export function normalizeOptions(options: KeyPoolOptions): NormalizedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new InvalidConfigError('options', 'expected an options object');
  }
  checkOptionNames('options', options, OPTION_NAMES);
  const maxConcurrentPerKey =
    options.maxConcurrentPerKey === undefined
      ? Number.POSITIVE_INFINITY
      : checkCap('maxConcurrentPerKey', options.maxConcurrentPerKey);

  if (!Array.isArray(options.keys)) throw new InvalidConfigError('keys', 'expected an array of keys');
  if (options.keys.length === 0) throw new InvalidConfigError('keys', 'at least one key is required');
  // A plain loop, not map(): map() skips the holes of `new Array(3)`, which must be refused.
  const keys: NormalizedKey[] = [];
  for (let index = 0; index < options.keys.length; index++) {
    keys.push(normalizeKey(options.keys[index], index, maxConcurrentPerKey));
  }
  const seen = new Map<string, number>();
  keys.forEach((key, index) => {
    const first = seen.get(key.secret);
    if (first !== undefined) {
      throw new InvalidConfigError(`keys[${index}]`, `duplicate of keys[${first}]`);
    }
    seen.set(key.secret, index);
  });

  const strategy = options.strategy ?? 'least-busy';
  if (typeof strategy !== 'function' && !STRATEGIES.includes(strategy)) {
    throw new InvalidConfigError(
      'strategy',
      `expected one of ${STRATEGIES.join(', ')} or a function, got ${describe(strategy)}`,
    );
  }

  const maxFailures = options.maxFailures ?? 10;
  if (!Number.isInteger(maxFailures) || maxFailures < 1) {
    throw new InvalidConfigError('maxFailures', `expected an integer ≥ 1, got ${describe(maxFailures)}`);
  }
  const maxWaiters = options.maxWaiters ?? Number.POSITIVE_INFINITY;
  if (!(maxWaiters === Number.POSITIVE_INFINITY || (Number.isInteger(maxWaiters) && maxWaiters >= 0))) {
    throw new InvalidConfigError(
      'maxWaiters',
      `expected an integer ≥ 0 or Infinity, got ${describe(maxWaiters)}`,
    );
  }
  const latencyAlpha = options.latencyAlpha ?? 0.2;
  if (typeof latencyAlpha !== 'number' || !(latencyAlpha > 0 && latencyAlpha <= 1)) {
    throw new InvalidConfigError(
      'latencyAlpha',
      `expected a number in (0, 1], got ${describe(latencyAlpha)}`,
    );
  }
  if (options.recovery !== undefined && (typeof options.recovery !== 'object' || options.recovery === null)) {
    throw new InvalidConfigError('recovery', 'expected { initialDelayMs?, maxDelayMs? }');
  }
  if (options.recovery !== undefined) checkOptionNames('recovery', options.recovery, RECOVERY_FIELDS);
  const recoveryInitialDelayMs = checkDuration(
    'recovery.initialDelayMs',
    options.recovery?.initialDelayMs ?? 30_000,
    false,
  );
  const recoveryMaxDelayMs = checkDuration(
    'recovery.maxDelayMs',
    options.recovery?.maxDelayMs ?? 30 * 60_000,
    false,
  );
  if (recoveryMaxDelayMs < recoveryInitialDelayMs) {
    throw new InvalidConfigError('recovery.maxDelayMs', 'must be ≥ recovery.initialDelayMs');
  }
  const seed = options.seed ?? Math.floor(Math.random() * 2 ** 31);
  if (!Number.isInteger(seed))
    throw new InvalidConfigError('seed', `expected an integer, got ${describe(seed)}`);

  const storage = options.storage ?? memoryStorage();
  if (
    typeof storage !== 'object' ||
    storage === null ||
    typeof storage.load !== 'function' ||
    typeof storage.save !== 'function'
  ) {
    throw new InvalidConfigError('storage', 'expected a storage adapter with load() and save()');
  }
  const clock = options.clock ?? systemClock;
  if (
    typeof clock !== 'object' ||
    clock === null ||
    typeof clock.now !== 'function' ||
    typeof clock.setTimeout !== 'function' ||
    typeof clock.clearTimeout !== 'function'
  ) {
    throw new InvalidConfigError('clock', 'expected { now(), setTimeout(), clearTimeout() }');
  }
  probeClock(clock);
  if (
    options.inspect !== undefined &&
    typeof options.inspect !== 'function' &&
    typeof options.inspect !== 'object'
  ) {
    throw new InvalidConfigError('inspect', 'expected an inspection observer or function');
  }

  if (options.outage !== undefined && (typeof options.outage !== 'object' || options.outage === null)) {
    throw new InvalidConfigError('outage', 'expected { windowMs?, initialBackoffMs?, maxBackoffMs? }');
  }
  if (options.outage !== undefined) checkOptionNames('outage', options.outage, OUTAGE_FIELDS);
  const outage: OutageSettings = {
    windowMs: checkDuration('outage.windowMs', options.outage?.windowMs ?? DEFAULT_OUTAGE.windowMs, false),
    initialBackoffMs: checkDuration(
      'outage.initialBackoffMs',
      options.outage?.initialBackoffMs ?? DEFAULT_OUTAGE.initialBackoffMs,
      false,
    ),
    maxBackoffMs: checkDuration(
      'outage.maxBackoffMs',
      options.outage?.maxBackoffMs ?? DEFAULT_OUTAGE.maxBackoffMs,
      false,
    ),
  };
  if (outage.windowMs <= 0) throw new InvalidConfigError('outage.windowMs', 'must be > 0');
  if (outage.maxBackoffMs < outage.initialBackoffMs) {
    throw new InvalidConfigError('outage.maxBackoffMs', 'must be ≥ outage.initialBackoffMs');
  }

  return {
    outage,
    keys,
    strategy,
    maxConcurrentPerKey,
    defaultCooldownMs: checkDuration('defaultCooldownMs', options.defaultCooldownMs ?? 60_000, false),
    maxRetryAfterMs: checkDuration(
      'maxRetryAfterMs',
      options.maxRetryAfterMs ?? DEFAULT_HINT_BOUNDS.maxRetryAfterMs,
      false,
    ),
    maxQuotaResetMs: checkQuotaBound(options.maxQuotaResetMs ?? DEFAULT_HINT_BOUNDS.maxQuotaResetMs),
    maxFailures,
    acquireTimeoutMs: checkDuration('acquireTimeoutMs', options.acquireTimeoutMs ?? 30_000, true),
    maxWaiters,
    recoveryInitialDelayMs,
    recoveryMaxDelayMs,
    latencyAlpha,
    latencyPenaltyMs: checkDuration('latencyPenaltyMs', options.latencyPenaltyMs ?? 30_000, false),
    seed,
    storage,
    flushIntervalMs: checkDuration('flushIntervalMs', options.flushIntervalMs ?? 1_000, false),
    storageTimeoutMs: checkStorageTimeoutMs(options.storageTimeoutMs),
    clock,
    inspect: options.inspect,
  };
}

/** `acquire()` options after validation. */
export interface AcquireSettings {
  readonly tokens: number;
  readonly priority: number;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

const ACQUIRE_FIELDS: readonly string[] = ['tokens', 'priority', 'timeoutMs', 'signal'];
const TRY_ACQUIRE_FIELDS: readonly string[] = ['tokens', 'priority'];

/** An `AbortSignal` of this realm or another (checked by shape: jsdom, undici and Node each have their own). */
function isAbortSignal(value: unknown): value is AbortSignal {
  if (value instanceof AbortSignal) return true;
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.prototype.toString.call(value) === '[object AbortSignal]' &&
    'aborted' in value &&
    typeof value.aborted === 'boolean' &&
    'addEventListener' in value &&
    typeof value.addEventListener === 'function' &&
    'removeEventListener' in value &&
    typeof value.removeEventListener === 'function'
  );
}

/**
 * The one validation of `acquire()` and `tryAcquire()` options (`waits`: which of the two). Unknown
 * names, and numbers that are not finite (`NaN`, `Infinity` where not allowed), not numbers
 * (strings, BigInt, objects) or out of range, are an `InvalidConfigError` naming the option.
 */
export function normalizeAcquireOptions(
  options: unknown,
  waits: boolean,
  defaultTimeoutMs: number,
): AcquireSettings {
  if (options === undefined) {
    return { tokens: 0, priority: 0, timeoutMs: waits ? defaultTimeoutMs : 0, signal: undefined };
  }
  const call = waits ? 'acquire' : 'tryAcquire';
  if (typeof options !== 'object' || options === null) {
    throw new InvalidConfigError(call, `expected an options object, got ${describe(options)}`);
  }
  checkOptionNames(call, options, waits ? ACQUIRE_FIELDS : TRY_ACQUIRE_FIELDS);
  const given = options as Record<string, unknown>;
  const tokens = given.tokens === undefined ? 0 : given.tokens;
  if (typeof tokens !== 'number' || !(tokens >= 0 && tokens <= Number.MAX_SAFE_INTEGER)) {
    throw new InvalidConfigError(
      'tokens',
      `expected a number from 0 to ${Number.MAX_SAFE_INTEGER}, got ${describe(tokens)}`,
    );
  }
  const priority = given.priority === undefined ? 0 : given.priority;
  if (typeof priority !== 'number' || !Number.isFinite(priority)) {
    throw new InvalidConfigError('priority', `expected a finite number, got ${describe(priority)}`);
  }
  const timeoutMs =
    given.timeoutMs === undefined
      ? waits
        ? defaultTimeoutMs
        : 0
      : checkDuration('timeoutMs', given.timeoutMs, true);
  const signal = given.signal;
  if (signal !== undefined && !isAbortSignal(signal)) {
    throw new InvalidConfigError(
      'signal',
      `expected an AbortSignal (pass controller.signal, not the AbortController), got ${describe(signal)}`,
    );
  }
  return { tokens, priority, timeoutMs, signal };
}

const SETTLE_FIELDS = {
  release: ['latencyMs', 'usage', 'headers'],
  fail: ['kind', 'retryAfterMs', 'scope'],
  rateLimited: ['retryAfterMs', 'cooldownMs', 'headers', 'scope'],
} as const satisfies Record<string, readonly string[]>;
const USAGE_FIELDS: readonly string[] = ['inputTokens', 'outputTokens', 'totalTokens'];
// Every FailureKind, checked against the type: a kind added there and not here fails the build.
const FAILURE_KIND_SET = {
  failure: true,
  provider: true,
  quota: true,
  revoked: true,
  disabled: true,
  aborted: true,
} as const satisfies Record<FailureKind, true>;
const FAILURE_KINDS: readonly string[] = Object.keys(FAILURE_KIND_SET);
const SCOPES: readonly string[] = ['key', 'group'];

/** A number in [min, max] (so never `NaN`, and `Infinity` only if `max` is). */
/** The largest {@link KeyPoolOptions.maxQuotaResetMs}: a year's quota, leap day included (ms). */
export const MAX_QUOTA_RESET_MS = 366 * 86_400_000;

function checkQuotaBound(value: unknown): number {
  checkNumber('maxQuotaResetMs', value, 0, MAX_QUOTA_RESET_MS);
  return value;
}

function checkNumber(field: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !(value >= min && value <= max)) {
    throw new InvalidConfigError(field, `expected a number from ${min} to ${max}, got ${describe(value)}`);
  }
}

/**
 * Validates the options of a settle (`release`, `fail`, `rateLimited` and the pool's seed-style
 * names) before anything changes: a bad option is an `InvalidConfigError` and leaves the lease
 * outstanding, to be settled again correctly.
 */
export function checkSettleOptions(settle: keyof typeof SETTLE_FIELDS, options: unknown): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) {
    throw new InvalidConfigError(settle, `expected an options object, got ${describe(options)}`);
  }
  checkOptionNames(settle, options, SETTLE_FIELDS[settle]);
  const given = options as Record<string, unknown>;
  if (given.latencyMs !== undefined) checkNumber('latencyMs', given.latencyMs, 0, MAX_TIMER_MS);
  // A wait a provider asked for, often parsed from its headers: any number is taken (≤ 0 means
  // "now", `NaN` no hint, beyond a timer's reach capped by the pool); only a non-number is a bug.
  for (const name of ['retryAfterMs', 'cooldownMs'] as const) {
    if (given[name] !== undefined && typeof given[name] !== 'number') {
      throw new InvalidConfigError(name, `expected a number of ms, got ${describe(given[name])}`);
    }
  }
  if (given.kind !== undefined && !FAILURE_KINDS.includes(given.kind as string)) {
    throw new InvalidConfigError('kind', `expected one of ${FAILURE_KINDS.join(', ')}`);
  }
  if (given.scope !== undefined && !SCOPES.includes(given.scope as string)) {
    throw new InvalidConfigError('scope', `expected one of ${SCOPES.join(', ')}`);
  }
  if (given.headers !== undefined && (typeof given.headers !== 'object' || given.headers === null)) {
    throw new InvalidConfigError(
      'headers',
      `expected a Headers or a plain object, got ${describe(given.headers)}`,
    );
  }
  const usage = given.usage;
  if (usage !== undefined) {
    if (typeof usage !== 'object' || usage === null) {
      throw new InvalidConfigError(
        'usage',
        `expected { inputTokens?, outputTokens?, totalTokens? }, got ${describe(usage)}`,
      );
    }
    checkOptionNames('usage', usage, USAGE_FIELDS);
    for (const name of USAGE_FIELDS) {
      const value = (usage as Record<string, unknown>)[name];
      if (value !== undefined) checkNumber(`usage.${name}`, value, 0, Number.MAX_SAFE_INTEGER);
    }
  }
}

/** The per-key settings a key actor gets. */
export function keySettings(options: NormalizedOptions, key: NormalizedKey, mask: string): KeySettings {
  return {
    label: key.label,
    mask,
    maxConcurrent: Number.isFinite(key.maxConcurrent) ? key.maxConcurrent : null,
    weight: key.weight,
    maxFailures: options.maxFailures,
    defaultCooldownMs: options.defaultCooldownMs,
    recoveryInitialDelayMs: options.recoveryInitialDelayMs,
    recoveryMaxDelayMs: options.recoveryMaxDelayMs,
    latencyAlpha: options.latencyAlpha,
    budget: key.budget,
    group: key.group,
  };
}
