import type { InspectionEvent, Observer } from 'xstate';
import { type Clock, systemClock } from '../clock.js';
import { InvalidConfigError } from '../errors.js';
import { type BudgetLimits, hasBudget } from '../limits/budget.js';
import type { KeySettings } from '../machines/key.types.js';
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

/** Options of {@link KeyPool.create}. Every one is validated; a bad one is an `InvalidConfigError` naming it. */
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
  /** Longest cooldown (ms) for a rate limit without a retry hint (escalation 1 s, 2 s, 4 s … up to this). Default 60 000. */
  readonly defaultCooldownMs?: number;
  /** Consecutive failures before a key is `exhausted`. Default 10; integer ≥ 1. */
  readonly maxFailures?: number;
  /** How long `acquire()` waits by default (ms). Default 30 000; ≥ 0 or `Infinity`. */
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
  /** Counter-only changes reach storage at most once per key per this interval (ms). Default 1 000; ≥ 0. */
  readonly flushIntervalMs?: number;
  /**
   * How long `create()` and `addKey()` wait for `storage.load()` before rejecting with a
   * `StorageError`, and the pool for a `storage.save()` before reporting it (`storage-error`) and
   * retrying (ms, on `clock`). Default 30 000; from 1 to 2³¹ − 1.
   */
  readonly storageTimeoutMs?: number;
  /** Time source. Default: the system clock. Inject a `VirtualClock` for tests and simulation. */
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
const OPTION_NAMES = new Set([
  'keys',
  'strategy',
  'maxConcurrentPerKey',
  'defaultCooldownMs',
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
]);
const KEY_FIELDS = new Set(['key', 'label', 'weight', 'maxConcurrent', 'rpm', 'tpm', 'rpd', 'group']);

/** A non-negative number; `Infinity` only where `allowInfinity`. */
export function checkDuration(field: string, value: unknown, allowInfinity: boolean): number {
  if (
    typeof value !== 'number' ||
    Number.isNaN(value) ||
    value < 0 ||
    (!allowInfinity && !Number.isFinite(value))
  ) {
    throw new InvalidConfigError(
      field,
      `expected a number ≥ 0${allowInfinity ? ' (or Infinity)' : ''}, got ${describe(value)}`,
    );
  }
  return value;
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
  for (const name of Object.keys(entry)) {
    if (!KEY_FIELDS.has(name)) throw new InvalidConfigError(`${field}.${name}`, 'unknown key option');
  }
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
  for (const name of Object.keys(options)) {
    if (!OPTION_NAMES.has(name)) throw new InvalidConfigError(name, 'unknown option');
  }
  const maxConcurrentPerKey =
    options.maxConcurrentPerKey === undefined
      ? Number.POSITIVE_INFINITY
      : checkCap('maxConcurrentPerKey', options.maxConcurrentPerKey);

  if (!Array.isArray(options.keys)) throw new InvalidConfigError('keys', 'expected an array of keys');
  if (options.keys.length === 0) throw new InvalidConfigError('keys', 'at least one key is required');
  const keys = options.keys.map((entry, index) => normalizeKey(entry, index, maxConcurrentPerKey));
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
