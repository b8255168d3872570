import { type Actor, createActor } from 'xstate';
import { coarse, createPoolTime, type PoolTime } from '../clock.js';
import {
  AcquireAbortedError,
  ClockError,
  InvalidConfigError,
  KeyMeshError,
  LeaseNotFoundError,
  LeaseSettledError,
  NoAvailableKeyError,
  PoolClosedError,
  QueueFullError,
  StorageError,
  StrategyError,
  UnknownKeyError,
} from '../errors.js';
import { fingerprint, isKeyId, type KeyId, maskKey } from '../fingerprint.js';
import { HintScreen } from '../limits/hints.js';
import { learnFromSuccessHeaders, usedTokens, waitFromHeaders } from '../limits/rest.js';
import { createKeyMachine } from '../machines/key.machine.js';
import type { KeyInput, KeyStateName } from '../machines/key.types.js';
import {
  createPoolMachine,
  earliestReturnMs,
  type PoolMachine,
  type PoolRuntime,
} from '../machines/pool.machine.js';
import type { LeaseGranted, PoolEmitted } from '../machines/pool.types.js';
import { type KeyPoolMetrics, keyPoolMetrics } from '../metrics/index.js';
import { loadRecords } from '../storage/load.js';
import { restoredFromRecord, toRecord } from '../storage/record.js';
import type { KeyRecord } from '../storage/types.js';
import { CoalescingWriter } from '../storage/writer.js';
import {
  KEY_POOL_EVENTS,
  type KeyPoolEventMap,
  type KeyPoolEventName,
  type KeyPoolListener,
  type KeyRefInfo,
} from './events.js';
import type { KeyChangeListener, KeyEntry } from './key-index.js';
import { toKeySnapshot } from './key-snapshot.js';
import {
  type FailOptions,
  Lease,
  type RateLimitOptions,
  type ReleaseOptions,
  type SettleLease,
} from './lease.js';
import { PoolMetrics, type PoolMetricsSnapshot } from './metrics.js';
import {
  type AcquireSettings,
  checkOptionNames,
  checkSettleOptions,
  type KeyConfig,
  type KeyPoolOptions,
  keySettings,
  type NormalizedKey,
  type NormalizedOptions,
  normalizeAcquireOptions,
  normalizeOptions,
  normalizeRuntimeKey,
} from './options.js';
import { settleFromError, settleFromResult } from './settle-outcome.js';
import { resolveStrategy } from './strategies/index.js';
import { seededRandom } from './strategies/random.js';
import type { KeySnapshot } from './strategies/types.js';

/** Options of {@link KeyPool.acquire}. */
export interface AcquireOptions {
  /**
   * Tokens the call is expected to use (input + expected output). Reserved from the key's `tpm`
   * budget at grant and reconciled by `release({ usage })`. Default 0; a number from 0 to
   * `Number.MAX_SAFE_INTEGER`.
   */
  readonly tokens?: number;
  /**
   * Aborting it rejects the wait with `AcquireAbortedError` and removes the waiter at once. An
   * `AbortSignal` (`controller.signal`, not the controller): anything else is an `InvalidConfigError`.
   */
  readonly signal?: AbortSignal;
  /** How long to wait (ms). Default: the pool's `acquireTimeoutMs`; 0 to 2³¹ − 1, or `Infinity`. */
  readonly timeoutMs?: number;
  /** Higher is served first; FIFO within a priority. Default 0; a finite number. */
  readonly priority?: number;
}

/** What {@link KeyPool.snapshot} returns. Contains no secret. */
export interface PoolSnapshot {
  /**
   * Every key, in configured order. Its instants (`cooldownUntil`, `recoveryAt`, `lastUsedAt`,
   * `lastPenaltyAt`) are on the wall clock, like `at`; see "Time and clock steps" in the README.
   */
  readonly keys: readonly KeySnapshot[];
  readonly metrics: PoolMetricsSnapshot;
  /** Name of the strategy in use. */
  readonly strategy: string;
  /** A provider outage the pool is backing off from as a whole (nobody gets a key until `until`), or `null`. */
  readonly outage: { readonly until: number; readonly level: number } | null;
  readonly closed: boolean;
  /** When the snapshot was taken (epoch ms on the wall clock: the pool clock's `now()`). */
  readonly at: number;
}

interface PendingAcquire {
  resolve: (lease: Lease) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  timeoutMs: number;
  /** False for `tryAcquire`, whose "nothing now" is an answer, not a timeout. */
  wait: boolean;
  /** Tokens reserved from the key's budget. */
  tokens: number;
  /** True while this waiter holds the process open (see `Clock.keepAlive`). */
  holds: boolean;
}

const RESTORED = Symbol('restored');

/** Moves every instant of a record by `shift` ms; 0 stays 0 ("none"), and nothing goes below 0. */
function shiftRecord(record: KeyRecord, shift: number): KeyRecord {
  if (shift === 0) return record;
  const at = (t: number) => (t > 0 ? Math.max(0, t + shift) : t);
  const budget = record.budget;
  return {
    ...record,
    cooldownUntil: at(record.cooldownUntil),
    recoveryAt: at(record.recoveryAt),
    lastUsedAt: at(record.lastUsedAt),
    lastPenaltyAt: at(record.lastPenaltyAt),
    updatedAt: at(record.updatedAt),
    ...(budget
      ? {
          budget: {
            requestsAt: at(budget.requestsAt),
            tokensAt: at(budget.tokensAt),
            dayAt: at(budget.dayAt),
          },
        }
      : {}),
  };
}

/** A record on the pool's time scale, as stored: on the wall clock's (shared with other processes). */
const recordToWall = (record: KeyRecord, time: PoolTime): KeyRecord => shiftRecord(record, time.toWall(0));

/** A stored record (wall clock) on the pool's time scale. */
const recordFromWall = (record: KeyRecord, time: PoolTime): KeyRecord =>
  shiftRecord(record, time.fromWall(0));

/** A key snapshot with its instants moved from the pool's time scale to the wall clock's. */
function keySnapshotShifted(key: KeySnapshot, shift: number): KeySnapshot {
  const at = (t: number) => (t > 0 ? t + shift : t);
  return {
    ...key,
    cooldownUntil: at(key.cooldownUntil),
    recoveryAt: at(key.recoveryAt),
    lastUsedAt: at(key.lastUsedAt),
    lastPenaltyAt: at(key.lastPenaltyAt),
    budget: key.budget && { ...key.budget, readyAt: at(key.budget.readyAt) },
  };
}

function describeCounts(counts: Readonly<Record<string, number>>): string {
  const parts = Object.entries(counts)
    .filter(
      ([name]) => name.includes(':') || !Object.keys(counts).some((other) => other.startsWith(`${name}:`)),
    )
    .map(([name, n]) => `${n} ${name.replace(':', ' (')}${name.includes(':') ? ')' : ''}`);
  return parts.join(', ');
}

const SETTLE_NAMES = { released: 'release', failed: 'fail', 'rate-limited': 'rateLimited' } as const;

function formatMs(ms: number): string {
  return ms < 1_000 ? `${Math.round(ms)} ms` : `${(ms / 1_000).toFixed(1)} s`;
}

/**
 * A pool of API keys. Ask it for a key (`acquire`), make your call with any client, and report
 * the outcome on the lease. KeyPool is a thin promise wrapper: the pool actor decides every grant,
 * the key actors own every key's state; this class holds the secrets (by fingerprint) and turns the
 * pool actor's emitted events into promises and user events.
 */
export class KeyPool {
  readonly #options: NormalizedOptions;
  /** The pool's time: never steps, never throws (see `createPoolTime`). */
  readonly #time: PoolTime;
  /** Waiters holding the process open, and the release of that hold. */
  #holding = 0;
  #releaseHold: (() => void) | undefined;
  readonly #actor: Actor<PoolMachine>;
  readonly #runtime: PoolRuntime;
  readonly #strategyName: string;
  readonly #secrets = new Map<string, string>();
  readonly #idsBySecret = new Map<string, KeyId>();
  readonly #outstanding = new Map<string, Set<Lease>>();
  readonly #pending = new Map<number, PendingAcquire>();
  readonly #listeners = new Map<KeyPoolEventName, Set<(payload: never) => void>>();
  readonly #metrics = new PoolMetrics();
  /** Drops (and counts) non-finite or absurd provider hints before they reach a key. */
  readonly #hints: HintScreen;
  readonly #writer: CoalescingWriter;
  readonly #writerId: string;
  #nextRequestId = 1;
  #closed = false;
  #closing: Promise<void> | undefined;
  #listenerDepth = 0;
  #unwatch: (() => void) | undefined;

  /**
   * Creates a pool, restoring per-key state from `options.storage` first (so a key told to rest
   * before a restart still rests). Rejects with `InvalidConfigError` naming a bad option, or
   * `StorageError` when the store cannot be read.
   */
  static async create(options: KeyPoolOptions): Promise<KeyPool> {
    const normalized = normalizeOptions(options);
    const keyIds = normalized.keys.map((key) => fingerprint(key.secret));
    const { storage, storageTimeoutMs, clock } = normalized;
    const records = await loadRecords(storage, keyIds, storageTimeoutMs, clock);
    return new KeyPool(options, { [RESTORED]: { normalized, records } });
  }

  /**
   * Creates a pool synchronously. Only for the default in-memory store (nothing to restore); use
   * {@link KeyPool.create} with any other storage.
   */
  constructor(options: KeyPoolOptions);
  /** @internal */
  constructor(
    options: KeyPoolOptions,
    restored: { [RESTORED]: { normalized: NormalizedOptions; records: ReadonlyMap<string, KeyRecord> } },
  );
  constructor(
    options: KeyPoolOptions,
    restored?: { [RESTORED]: { normalized: NormalizedOptions; records: ReadonlyMap<string, KeyRecord> } },
  ) {
    const given = restored?.[RESTORED];
    if (!given && options?.storage !== undefined) {
      throw new InvalidConfigError(
        'storage',
        'new KeyPool() only takes the default memory store; use KeyPool.create()',
      );
    }
    const normalized = given?.normalized ?? normalizeOptions(options);
    const records = given?.records ?? new Map<string, KeyRecord>();
    this.#options = normalized;
    this.#hints = new HintScreen(normalized, () => this.#metrics.ignoredHints++);
    const time = createPoolTime(normalized.clock, (message, cause) =>
      // A clock is read mid-step: tell listeners once the step is over.
      queueMicrotask(() => this.#emit('clock-error', { error: new ClockError(message, cause) })),
    );
    this.#time = time;
    const flushTimers = coarse(normalized.clock);
    this.#writerId = `p${Math.floor(seededRandom(normalized.seed ^ 0x5bd1e995)() * 2 ** 31).toString(36)}`;
    this.#writer = new CoalescingWriter({
      adapter: normalized.storage,
      // Flush timing needs no precision: on the real clock, Node's plain timers; time read through
      // the pool's guard, like every other reading.
      clock: {
        now: time.now,
        setTimeout: (fn, ms) => flushTimers.setTimeout(fn, ms),
        clearTimeout: (handle) => flushTimers.clearTimeout(handle),
      },
      flushIntervalMs: normalized.flushIntervalMs,
      saveTimeoutMs: normalized.storageTimeoutMs,
      build: (keyId) => {
        const entry = this.#runtime.index.get(keyId);
        return entry && recordToWall(toRecord(entry.context, entry.state, this.#writerId, time.now()), time);
      },
      onError: (error, attempt) => this.#emit('storage-error', { error, attempt }),
    });

    const keyInputs: KeyInput[] = normalized.keys.map((key, order) => {
      const keyId = this.#registerSecret(key.secret);
      const record = records.get(keyId);
      return this.#keyInput(key, keyId, order, record);
    });

    const strategy = resolveStrategy(normalized.strategy, normalized.latencyPenaltyMs);
    this.#strategyName = strategy.name;
    const onKeyChange: KeyChangeListener = (entry, previous) => this.#onKeyChange(entry, previous);
    const { machine, runtime } = createPoolMachine({
      clock: time,
      keyMachine: createKeyMachine({
        now: time.now,
        random: seededRandom(normalized.seed ^ 0x9e3779b9),
      }),
      strategy,
      maxWaiters: normalized.maxWaiters,
      seed: normalized.seed,
      onKeyChange,
      onGrant: (granted) => this.#onGrant(granted),
      outage: normalized.outage,
    });
    this.#runtime = runtime;
    this.#actor = createActor(machine, {
      input: { keys: keyInputs },
      clock: time,
      ...(normalized.inspect === undefined ? {} : { inspect: normalized.inspect }),
    });
    // Emission is synchronous inside send(): listen before the first event.
    this.#actor.on('*', (event) => this.#onPoolEvent(event));
    this.#actor.start();
    // Other processes' cooldowns and revocations, pushed by adapters that can (SQLite, memory).
    this.#unwatch = normalized.storage.watch?.((records) => this.#onExternalRecords(records));
  }

  // ── acquiring ────────────────────────────────────────────────────────────────────────────────

  /**
   * Waits for a key and leases it. Resolves at once when a key is eligible; otherwise waits in
   * priority order (FIFO within a priority), woken by the event that frees a key — never by
   * polling. Rejects with `NoAvailableKeyError` at the deadline (or at once when no key can return
   * before it), `AcquireAbortedError`, `QueueFullError` or `PoolClosedError`.
   */
  acquire(options?: AcquireOptions): Promise<Lease> {
    if (this.#closed) return Promise.reject(new PoolClosedError());
    let settings: AcquireSettings;
    try {
      settings = normalizeAcquireOptions(options, true, this.#options.acquireTimeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
    const { signal, timeoutMs, priority, tokens } = settings;
    if (signal?.aborted) return Promise.reject(new AcquireAbortedError(signal.reason));
    const requestId = this.#nextRequestId++;
    return new Promise<Lease>((resolve, reject) => {
      const pending: PendingAcquire = {
        resolve,
        reject,
        signal,
        onAbort: undefined,
        timeoutMs,
        wait: true,
        tokens,
        holds: false,
      };
      this.#pending.set(requestId, pending);
      this.#actor.send({ type: 'pool.acquire', requestId, priority, timeoutMs, wait: true, tokens });
      if (!this.#pending.has(requestId)) return;
      // Still waiting: like a pending setTimeout, the wait holds the process open until it ends.
      this.#hold(pending);
      if (signal) {
        pending.onAbort = () => this.#actor.send({ type: 'pool.cancel', requestId });
        signal.addEventListener('abort', pending.onAbort, { once: true });
      }
    });
  }

  /**
   * Leases a key if one is eligible right now; never waits. Returns `undefined` otherwise. Takes
   * `tokens` and `priority`, validated as `acquire()` validates them; any other option (or a bad
   * value) is an `InvalidConfigError`, and nothing is leased.
   */
  tryAcquire(options?: Pick<AcquireOptions, 'priority' | 'tokens'>): Lease | undefined {
    if (this.#closed) throw new PoolClosedError();
    if (this.#listenerDepth > 0) {
      throw new KeyMeshError(
        'INVALID_CALL',
        'tryAcquire() cannot run inside a KeyPool event listener (the pool is mid-step); use acquire()',
      );
    }
    const { priority, tokens } = normalizeAcquireOptions(options, false, 0);
    const requestId = this.#nextRequestId++;
    let granted: Lease | undefined;
    const pending: PendingAcquire = {
      resolve: (lease) => {
        granted = lease;
      },
      reject: () => {},
      signal: undefined,
      onAbort: undefined,
      timeoutMs: 0,
      wait: false,
      tokens,
      holds: false,
    };
    this.#pending.set(requestId, pending);
    this.#actor.send({ type: 'pool.acquire', requestId, priority, timeoutMs: 0, wait: false, tokens });
    this.#pending.delete(requestId);
    return granted;
  }

  /**
   * Runs `fn` with a leased key and settles the lease from what happens: a resolved value is a
   * success (unless it is an HTTP response with an error status), a throw is classified with
   * `classifyOutcome` (429 → rate limited with the provider's retry hint, 401/403 → revoked,
   * 402/billing → disabled, 5xx, timeouts and connection errors → provider error, anything else →
   * failure) and re-thrown. A throw after `options.signal` fired is the caller's abort: counted,
   * never against the key. If `fn` settles the lease itself, that settlement stands.
   */
  async withKey<T>(fn: (key: string, lease: Lease) => Promise<T> | T, options?: AcquireOptions): Promise<T> {
    // Checked before a key is leased: a bad callback must cost no key a failure.
    if (typeof fn !== 'function') {
      throw new InvalidConfigError(
        'fn',
        `withKey() expects a function (key, lease) => …, got ${fn === null ? 'null' : typeof fn}`,
      );
    }
    const lease = await this.acquire(options);
    let result: T;
    try {
      result = await fn(lease.key, lease);
    } catch (error) {
      if (!lease.settled) settleFromError(lease, error, this.#time.wallNow(), options?.signal);
      throw error;
    }
    if (!lease.settled) await settleFromResult(lease, result, () => this.#time.wallNow());
    return result;
  }

  // ── settling (seed-compatible names) ─────────────────────────────────────────────────────────

  /** Settles a lease (or the oldest outstanding lease on a raw key) as a success. */
  release(leaseOrKey: Lease | string, options?: ReleaseOptions): KeyStateName {
    return this.#leaseFor(leaseOrKey).release(options);
  }

  /** Settles a lease (or the oldest on a raw key) as a failure; returns the key's new state. */
  markFailed(leaseOrKey: Lease | string, error?: unknown, options?: FailOptions): KeyStateName {
    return this.#leaseFor(leaseOrKey).fail(error, options);
  }

  /** Settles a lease (or the oldest on a raw key) as rate limited. */
  markRateLimited(leaseOrKey: Lease | string, options?: RateLimitOptions): KeyStateName {
    return this.#leaseFor(leaseOrKey).rateLimited(options);
  }

  // ── keys at runtime ──────────────────────────────────────────────────────────────────────────

  /**
   * Adds a key (restoring its stored counters and cooldown, if any) and wakes waiters. Adding is
   * vouching for the key: a revocation or failure exhaustion (stored, or current for a key the pool
   * has) is cleared, and a draining key is kept. A provider-imposed cooldown stays. Resolves to
   * the key's fingerprint.
   */
  async addKey(keyOrConfig: string | KeyConfig): Promise<KeyId> {
    this.#assertOpen();
    const key = normalizeRuntimeKey(keyOrConfig, this.#options.maxConcurrentPerKey);
    const keyId = fingerprint(key.secret);
    let record: KeyRecord | undefined;
    if (!this.#runtime.index.get(keyId)) {
      const { storage, storageTimeoutMs, clock } = this.#options;
      record = (await loadRecords(storage, [keyId], storageTimeoutMs, clock)).get(keyId);
      this.#assertOpen();
    }
    this.#registerSecret(key.secret);
    const { order: _order, ...input } = this.#keyInput(key, keyId, 0, record);
    this.#actor.send({ type: 'pool.addKey', key: input });
    return keyId;
  }

  /**
   * Removes a key. With leases still out it drains: it takes no new lease and leaves when the
   * last one settles. Accepts the raw key or its fingerprint.
   */
  async removeKey(keyOrId: string): Promise<void> {
    this.#assertOpen();
    const keyId = this.#resolveKeyId(keyOrId);
    this.#actor.send({ type: 'pool.removeKey', keyId });
  }

  /** Clears a key's health (failures, cooldown, recovery, revocation) and makes it eligible again. */
  async resetKey(keyOrId: string): Promise<void> {
    this.#assertOpen();
    const keyId = this.#resolveKeyId(keyOrId);
    this.#actor.send({ type: 'pool.resetKey', keyId });
  }

  // ── observing ────────────────────────────────────────────────────────────────────────────────

  /** Every key's state and the pool's metrics. Safe to log: no secrets. */
  snapshot(): PoolSnapshot {
    const now = this.#time.now();
    const shift = this.#time.toWall(0);
    const keys = this.#runtime.index.ring.map((entry) => toKeySnapshot(entry, now));
    const outage = this.#actor.getSnapshot().context.outage;
    return {
      keys: shift === 0 ? keys : keys.map((key) => keySnapshotShifted(key, shift)),
      metrics: this.#metrics.snapshot(this.#runtime.waiters.size),
      strategy: this.#strategyName,
      outage: outage && shift !== 0 ? { ...outage, until: outage.until + shift } : outage,
      closed: this.#closed,
      at: now + shift,
    };
  }

  /** Keys that can take a lease right now. */
  availableCount(): number {
    return this.#runtime.index.eligible.length;
  }

  /**
   * How long (ms) until a key is expected to be eligible: 0 when one is now; for keys at their cap,
   * the oldest lease's expected end from the key's latency EWMA; for cooling or exhausted keys, the
   * end of the cooldown or the next probe; `Infinity` when no key will come back by itself; never
   * before a pool-wide outage backoff ends.
   */
  eta(): number {
    const { index } = this.#runtime;
    // During a pool-wide outage backoff nobody is granted a key, eligible or not.
    const outage = this.#actor.getSnapshot().context.outage;
    const now = this.#time.now();
    const backoff = outage ? Math.max(0, outage.until - now) : 0;
    if (index.eligible.length > 0) return backoff;
    let best = Number.POSITIVE_INFINITY;
    for (const entry of index.values()) {
      let wait: number | undefined;
      if (entry.state === 'busy' || (entry.state === 'available' && entry.inFlight > 0)) {
        const oldest = this.#outstanding.get(entry.keyId)?.values().next().value;
        const expected = entry.context.latencyEwma;
        wait = oldest && expected !== null ? Math.max(0, oldest.startedAt + expected - now) : 0;
      } else if (entry.state === 'cooling') {
        wait = Math.max(0, entry.context.health.cooldownUntil - now);
      } else if (entry.sub === 'failing') {
        wait = Math.max(0, entry.context.health.recoveryAt - now);
      } else if (entry.sub === 'probing' || entry.sub === 'probeReady') {
        wait = 0;
      }
      if (wait !== undefined && wait < best) best = wait;
    }
    return Math.max(best, backoff);
  }

  /** Subscribes to a pool event; returns the unsubscribe function. */
  on<E extends KeyPoolEventName>(event: E, listener: KeyPoolListener<E>): () => void {
    if (typeof event !== 'string' || !KEY_POOL_EVENTS.includes(event)) {
      // Named through the option check, which never echoes a name that could be a secret.
      checkOptionNames('on', { [String(event)]: true }, KEY_POOL_EVENTS);
      throw new InvalidConfigError('on', `expected an event name; accepted: ${KEY_POOL_EVENTS.join(', ')}`);
    }
    if (typeof listener !== 'function') {
      throw new InvalidConfigError(
        'listener',
        `on('${event}', …) expects a function, got ${listener === null ? 'null' : typeof listener}`,
      );
    }
    let set = this.#listeners.get(event);
    if (!set) {
      set = new Set();
      this.#listeners.set(event, set);
    }
    set.add(listener as (payload: never) => void);
    return () => {
      set.delete(listener as (payload: never) => void);
    };
  }

  /** The underlying pool actor, for inspection and tests (read-only use). */
  get actor(): Actor<PoolMachine> {
    return this.#actor;
  }

  /**
   * The pool's metrics for monitoring systems: `toPrometheus(options?)` (Prometheus text format) and
   * `bindOpenTelemetry(meter, options?)` (observable instruments on an `@opentelemetry/api` meter).
   * Both read `snapshot()`; labels are fingerprints or labels, never secrets.
   */
  readonly metrics: KeyPoolMetrics = keyPoolMetrics(this);

  /** Records written to storage so far, and `save()` batches (write amplification figures). */
  get storageWrites(): { readonly records: number; readonly batches: number } {
    return { records: this.#writer.writes, batches: this.#writer.batches };
  }

  // ── closing ──────────────────────────────────────────────────────────────────────────────────

  /**
   * Stops taking acquires (`PoolClosedError`), rejects waiters with it, flushes storage and stops
   * every actor and timer. Waits for nothing else: outstanding leases are forgotten, and settling
   * one afterwards is a no-op (it counts as settled, changes nothing, emits nothing, and returns
   * the key's state at close).
   * Rejects with `StorageError` if the final flush fails (the error is also emitted).
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#unwatch?.();
    this.#actor.send({ type: 'pool.close' });
    this.#actor.stop();
    for (const [requestId, pending] of this.#pending) {
      this.#pending.delete(requestId);
      this.#detachAbort(pending);
      pending.reject(new PoolClosedError());
    }
    this.#closing = (async () => {
      try {
        await this.#writer.close();
      } catch (error) {
        const storageError =
          error instanceof StorageError ? error : new StorageError('Final flush failed', error);
        this.#emit('storage-error', { error: storageError, attempt: 0 });
        throw storageError;
      } finally {
        await this.#options.storage.close?.();
      }
    })();
    return this.#closing;
  }

  // ── internals ────────────────────────────────────────────────────────────────────────────────

  #registerSecret(secret: string): KeyId {
    const keyId = fingerprint(secret);
    this.#secrets.set(keyId, secret);
    this.#idsBySecret.set(secret, keyId);
    return keyId;
  }

  #keyInput(key: NormalizedKey, keyId: KeyId, order: number, record: KeyRecord | undefined): KeyInput {
    return {
      keyId,
      order,
      settings: keySettings(this.#options, key, maskKey(key.secret)),
      ...(record
        ? { restored: restoredFromRecord(recordFromWall(record, this.#time), this.#options.storage.name) }
        : {}),
    };
  }

  /** An instant of the pool's time scale on the wall clock's, as everything given out is; 0 stays "none". */
  #wall(at: number): number {
    return at > 0 ? this.#time.toWall(at) : at;
  }

  #assertOpen(): void {
    if (this.#closed) throw new PoolClosedError();
  }

  #resolveKeyId(keyOrId: string): KeyId {
    if (typeof keyOrId !== 'string' || keyOrId.length === 0) {
      throw new InvalidConfigError('key', 'expected a raw key or a fingerprint');
    }
    const bySecret = this.#idsBySecret.get(keyOrId);
    if (bySecret && this.#runtime.index.get(bySecret)) return bySecret;
    if (isKeyId(keyOrId) && this.#runtime.index.get(keyOrId)) return keyOrId;
    throw new UnknownKeyError(isKeyId(keyOrId) ? keyOrId : fingerprint(keyOrId));
  }

  #leaseFor(leaseOrKey: Lease | string): Lease {
    if (leaseOrKey instanceof Lease) return leaseOrKey;
    if (typeof leaseOrKey !== 'string')
      throw new InvalidConfigError('lease', 'expected a Lease or a raw key');
    const keyId = this.#idsBySecret.get(leaseOrKey);
    if (!keyId) throw new UnknownKeyError(fingerprint(leaseOrKey));
    const oldest = this.#outstanding.get(keyId)?.values().next().value;
    if (!oldest) throw new LeaseNotFoundError(keyId);
    return oldest;
  }

  #settleLease: SettleLease = (lease, outcome) => {
    if (lease.settled) throw new LeaseSettledError(lease.keyId, lease.leaseId, lease.outcome ?? 'unknown');
    checkSettleOptions(SETTLE_NAMES[outcome.type], outcome.options);
    lease.markSettled(outcome.type);
    this.#outstanding.get(lease.keyId)?.delete(lease);
    const entry = this.#runtime.index.get(lease.keyId);
    // After close() a settle is a no-op: the pool is stopped and tells nobody. Not an error, because
    // calls that outlive close() (a withKey callback, a fetch body still streaming) settle as they end.
    if (this.#closed) return entry?.state ?? 'available';
    const { keyId, label, leaseId, grantSeq: seq } = lease;
    // Payloads are built only when someone listens: this is the hot path.
    if (outcome.type === 'released') {
      const options = outcome.options;
      // The clock is read only when needed: a release that states its latency and has no headers
      // does not.
      const latencyMs = options?.latencyMs ?? Math.max(0, this.#time.now() - lease.startedAt);
      const used = options?.usage ? usedTokens(options.usage) : undefined;
      const learned = options?.headers
        ? this.#hints.success(learnFromSuccessHeaders(options.headers, this.#time.wallNow()))
        : undefined;
      // One object shape for every release: this is the hot path.
      entry?.ref.send({
        type: 'lease.release',
        seq,
        latencyMs,
        tokenDelta: used === undefined ? 0 : used - lease.tokens,
        restMs: learned?.restMs,
        allowance: learned?.allowance,
      });
      this.#metrics.releases++;
      const state = entry?.state ?? 'available';
      if (this.#listens('released')) this.#emit('released', { keyId, label, leaseId, latencyMs, state });
      return state;
    }
    if (outcome.type === 'failed') {
      const kind = outcome.options?.kind ?? 'failure';
      if (kind === 'provider') {
        // Whether a provider error is the key's fault is a pool-wide question.
        this.#actor.send({ type: 'pool.providerError', keyId, seq });
      } else {
        entry?.ref.send({
          type: 'lease.fail',
          seq,
          kind,
          retryAfterMs: this.#hints.quota(outcome.options?.retryAfterMs),
        });
      }
      if (outcome.options?.scope === 'group') this.#actor.send({ type: 'pool.groupRest', keyId });
      this.#metrics.failures++;
      const state = entry?.state ?? 'available';
      if (this.#listens('failed')) this.#emit('failed', { keyId, label, leaseId, kind, state });
      return state;
    }
    const options = outcome.options;
    const retryAfterMs =
      this.#hints.rateLimit(options?.retryAfterMs ?? options?.cooldownMs) ??
      (options?.headers
        ? this.#hints.rateLimit(waitFromHeaders(options.headers, this.#time.wallNow()))
        : undefined);
    const latencyMs = Math.max(0, this.#time.now() - lease.startedAt);
    entry?.ref.send({ type: 'lease.rateLimit', seq, retryAfterMs, latencyMs });
    if (options?.scope === 'group') this.#actor.send({ type: 'pool.groupRest', keyId });
    this.#metrics.rateLimits++;
    const state = entry?.state ?? 'available';
    if (this.#listens('rate-limited'))
      this.#emit('rate-limited', { keyId, label, leaseId, retryAfterMs, state });
    return state;
  };

  /** The pool granted a key: the waiting `acquire()` gets its `Lease`. */
  #onGrant(event: LeaseGranted): void {
    const pending = this.#pending.get(event.requestId);
    const secret = this.#secrets.get(event.keyId);
    if (!pending || secret === undefined) return;
    this.#pending.delete(event.requestId);
    this.#detachAbort(pending);
    const entry = this.#runtime.index.get(event.keyId);
    const lease = new Lease(
      secret,
      {
        keyId: event.keyId as KeyId,
        label: entry?.context.settings.label ?? null,
        leaseId: event.requestId,
        probe: event.probe,
        acquiredAt: this.#wall(event.at),
        startedAt: event.at,
        grantSeq: event.seq,
        tokens: pending.tokens,
      },
      this.#settleLease,
    );
    let outstanding = this.#outstanding.get(event.keyId);
    if (!outstanding) {
      outstanding = new Set();
      this.#outstanding.set(event.keyId, outstanding);
    }
    outstanding.add(lease);
    this.#metrics.acquires++;
    this.#metrics.waits.record(event.waitedMs);
    if (this.#listens('acquired')) {
      this.#emit('acquired', {
        keyId: lease.keyId,
        label: lease.label,
        leaseId: lease.leaseId,
        probe: lease.probe,
        waitedMs: event.waitedMs,
      });
    }
    pending.resolve(lease);
  }

  #onPoolEvent(event: PoolEmitted): void {
    switch (event.type) {
      case 'acquire.rejected': {
        const pending = this.#pending.get(event.requestId);
        if (!pending) return;
        this.#pending.delete(event.requestId);
        this.#detachAbort(pending);
        pending.reject(this.#rejectionError(event, pending));
        return;
      }
      case 'acquire.queued':
        this.#emit('waiting', {
          requestId: event.requestId,
          priority: event.priority,
          waiting: event.waiting,
        });
        return;
      case 'key.added':
        this.#emit('key-added', this.#info(event.keyId));
        return;
      case 'key.removed': {
        const info = this.#info(event.keyId);
        const secret = this.#secrets.get(event.keyId);
        this.#secrets.delete(event.keyId);
        if (secret !== undefined) this.#idsBySecret.delete(secret);
        this.#outstanding.delete(event.keyId);
        this.#emit('key-removed', info);
        return;
      }
      case 'key.crashed':
        this.#emit('key-crashed', { ...this.#info(event.keyId), error: event.error });
        return;
      case 'pool.outage':
        this.#emit('outage', { until: this.#wall(event.until), level: event.level });
        return;
      case 'pool.outageOver':
        this.#emit('outage-over', {});
        return;
      case 'key.draining':
        return;
    }
  }

  #rejectionError(event: PoolEmitted & { type: 'acquire.rejected' }, pending: PendingAcquire): Error {
    switch (event.reason) {
      case 'closed':
        return new PoolClosedError();
      case 'aborted':
        this.#metrics.aborts++;
        return new AcquireAbortedError(pending.signal?.reason);
      case 'queue-full':
        this.#metrics.queueFull++;
        return new QueueFullError(this.#options.maxWaiters);
      case 'strategy':
        return event.error instanceof StrategyError
          ? event.error
          : new StrategyError('Strategy failed', event.error);
      case 'timeout':
      case 'unavailable': {
        if (pending.wait) {
          this.#metrics.timeouts++;
          this.#emit('timeout', {
            requestId: event.requestId,
            waitedMs: event.waitedMs,
            retryAfterMs: event.retryAfterMs,
          });
        }
        const total = this.#runtime.index.size;
        // A busy key comes back when one of its leases settles, which no timer can say.
        const settling = (event.counts.busy ?? 0) > 0 ? 'busy keys return as their leases settle' : undefined;
        const back =
          event.retryAfterMs === undefined
            ? (settling ?? 'none will return by itself')
            : `earliest back in ${formatMs(event.retryAfterMs)}${settling ? `; ${settling}` : ''}`;
        const why =
          event.reason === 'timeout'
            ? `No key became available within ${formatMs(pending.timeoutMs)}`
            : earliestReturnMs(this.#runtime.index, this.#time.now()) === undefined
              ? 'No key can become available'
              : `No key can become available within ${formatMs(pending.timeoutMs)}`;
        return new NoAvailableKeyError(
          `${why}: ${describeCounts(event.counts)} of ${total} key${total === 1 ? '' : 's'}; ${back}`,
          event.retryAfterMs,
          event.counts,
        );
      }
    }
  }

  #onExternalRecords(records: readonly KeyRecord[]): void {
    if (this.#closed) return;
    for (const record of records) {
      if (record.writer === this.#writerId) continue;
      const entry = this.#runtime.index.get(record.keyId);
      const local = recordFromWall(record, this.#time);
      entry?.ref.send({
        type: 'key.sync',
        reason: local.reason,
        cooldownUntil: local.cooldownUntil,
        recoveryAt: local.recoveryAt,
        recoveryDelayMs: local.recoveryDelayMs,
      });
    }
  }

  #info(keyId: string): KeyRefInfo {
    return { keyId, label: this.#runtime.index.get(keyId)?.context.settings.label ?? null };
  }

  /** The waiter's wait is over (granted, rejected or closed): its abort listener and hold go. */
  #detachAbort(pending: PendingAcquire): void {
    if (pending.signal && pending.onAbort) pending.signal.removeEventListener('abort', pending.onAbort);
    if (pending.holds) {
      pending.holds = false;
      if (--this.#holding === 0) {
        this.#releaseHold?.();
        this.#releaseHold = undefined;
      }
    }
  }

  #hold(pending: PendingAcquire): void {
    const keepAlive = this.#time.keepAlive;
    if (!keepAlive) return;
    pending.holds = true;
    if (this.#holding++ === 0) this.#releaseHold = keepAlive();
  }

  #onKeyChange(entry: KeyEntry, previous: Parameters<KeyChangeListener>[1]): void {
    const c = entry.context.health;
    const p = previous.context.health;
    const stateChanged =
      previous.state !== entry.state ||
      previous.sub !== entry.sub ||
      p.reason !== c.reason ||
      p.cooldownUntil !== c.cooldownUntil ||
      p.recoveryAt !== c.recoveryAt;
    this.#writer.mark(entry.keyId, stateChanged);
    if (!stateChanged) return;
    const info: KeyRefInfo = { keyId: entry.keyId, label: entry.context.settings.label };
    const wasExhausted = previous.state === 'exhausted';
    if (entry.state === 'cooling' && (previous.state !== 'cooling' || p.cooldownUntil !== c.cooldownUntil)) {
      this.#emit('cooling', { ...info, reason: c.reason, cooldownUntil: this.#wall(c.cooldownUntil) });
    }
    if (previous.state === 'cooling' && (entry.state === 'available' || entry.state === 'busy')) {
      this.#emit('available', info);
    }
    if (entry.state === 'exhausted') {
      if (entry.sub === 'dead' && previous.sub !== 'dead') {
        this.#emit('exhausted', { ...info, reason: c.reason, recoveryAt: 0 });
        this.#emit('revoked', { ...info, reason: c.reason === 'disabled' ? 'disabled' : 'revoked' });
      } else if (entry.sub === 'failing' && (!wasExhausted || previous.sub === 'probing')) {
        this.#emit('exhausted', { ...info, reason: c.reason, recoveryAt: this.#wall(c.recoveryAt) });
      }
    } else if (wasExhausted && entry.state !== 'draining') {
      this.#emit('recovered', info);
    }
  }

  #listens(event: KeyPoolEventName): boolean {
    const set = this.#listeners.get(event);
    return set !== undefined && set.size > 0;
  }

  #emit<E extends KeyPoolEventName>(event: E, payload: KeyPoolEventMap[E]): void {
    const set = this.#listeners.get(event);
    if (!set || set.size === 0) return;
    this.#listenerDepth++;
    try {
      for (const listener of set) {
        try {
          (listener as KeyPoolListener<E>)(payload);
        } catch (error) {
          // A broken listener must not corrupt the pool mid-step; surface it like an unhandled error.
          queueMicrotask(() => {
            throw error;
          });
        }
      }
    } finally {
      this.#listenerDepth--;
    }
  }
}
