/**
 * Model-based property test of the pool through its public API, on a virtual clock.
 *
 * fast-check generates a pool configuration and a sequence of commands (acquire, tryAcquire,
 * settle, settle twice, advance time, add/re-add/remove/reset a key, abort a waiter). A small
 * reference model — the leases the test holds, the callers it knows to be waiting and the order
 * they came in, each key's recovery episode — follows the pool through its synchronous events
 * (`acquired`, `waiting`, `timeout`, `recovered`, `key-removed`). The pool is checked against it
 * inside every grant and after every command. On failure fast-check prints the seed, the path and
 * the shrunk command list; violations carry the last commands as context.
 *
 * The second `describe` pins the discrepancies the model found as plain examples.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AcquireAbortedError,
  fingerprint,
  type KeyConfig,
  KeyPool,
  type KeyPoolEventMap,
  type KeyPoolOptions,
  type KeySnapshot,
  type KeyStateName,
  type Lease,
  LeaseSettledError,
  NoAvailableKeyError,
  PoolClosedError,
  type PoolSnapshot,
  type StrategyName,
  UnknownKeyError,
  VirtualClock,
} from '../../src/index.js';

const NUM_RUNS = 200;
const MAX_COMMANDS = 60;

const STRATEGIES: readonly StrategyName[] = ['least-busy', 'round-robin', 'weighted', 'latency'];
const KEY_STATES: readonly KeyStateName[] = ['available', 'busy', 'cooling', 'exhausted', 'draining'];

/** Obviously fake keys, 16+ characters so that they have a mask. */
const fakeKey = (n: number): string => `sk-test-prop-${String(n).padStart(16, '0')}`;

// ── configuration ────────────────────────────────────────────────────────────────────────────────

type Cap = number | undefined;
const capArb: fc.Arbitrary<Cap> = fc.oneof(
  { arbitrary: fc.constant(undefined), weight: 2 },
  { arbitrary: fc.integer({ min: 1, max: 3 }), weight: 3 },
  { arbitrary: fc.constant(Number.POSITIVE_INFINITY), weight: 1 },
);

interface PoolConfig {
  readonly keyCaps: readonly Cap[];
  readonly weights: readonly number[];
  readonly maxConcurrentPerKey: number;
  readonly maxFailures: number;
  readonly defaultCooldownMs: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly strategy: StrategyName;
  readonly acquireTimeoutMs: number;
  readonly seed: number;
  /** Close while callers still wait (they must be rejected with PoolClosedError). */
  readonly closeWithWaiters: boolean;
}

const configArb: fc.Arbitrary<PoolConfig> = fc
  .record({
    keyCaps: fc.array(capArb, { minLength: 1, maxLength: 4 }),
    weights: fc.array(
      fc.oneof(
        { arbitrary: fc.integer({ min: 1, max: 3 }), weight: 5 },
        { arbitrary: fc.constant(0), weight: 1 },
      ),
      { minLength: 4, maxLength: 4 },
    ),
    maxConcurrentPerKey: fc.oneof(
      { arbitrary: fc.integer({ min: 1, max: 3 }), weight: 4 },
      { arbitrary: fc.constant(Number.POSITIVE_INFINITY), weight: 1 },
    ),
    maxFailures: fc.integer({ min: 1, max: 3 }),
    defaultCooldownMs: fc.integer({ min: 100, max: 2_000 }),
    initialDelayMs: fc.integer({ min: 100, max: 1_000 }),
    delayFactor: fc.integer({ min: 1, max: 8 }),
    strategy: fc.constantFrom(...STRATEGIES),
    acquireTimeoutMs: fc.integer({ min: 0, max: 5_000 }),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    closeWithWaiters: fc.boolean(),
  })
  .map(({ delayFactor, ...rest }) => ({ ...rest, maxDelayMs: rest.initialDelayMs * delayFactor }));

// ── reference model ──────────────────────────────────────────────────────────────────────────────

type Phase =
  | 'submitting'
  | 'waiting'
  | 'granted'
  | 'failed-fast'
  | 'timed-out'
  | 'aborted'
  | 'closed'
  | 'unavailable';

type SignalMode = 'none' | 'live' | 'aborted';

/** One `acquire()` or `tryAcquire()` the test made, and everything it learnt about it. */
interface Call {
  /** Submission order (the test's own counter). */
  readonly seq: number;
  readonly kind: 'acquire' | 'try';
  readonly priority: number;
  /** Effective timeout (the pool default when none was given). */
  readonly timeoutMs: number;
  readonly submittedAt: number;
  readonly controller: AbortController | undefined;
  abortReason: unknown;
  /** The pool's id for it, learnt from the first synchronous event about it. */
  requestId: number | undefined;
  phase: Phase;
  grants: number;
  /** Position in the order of all grants (1-based), once granted. */
  grantIndex: number;
  keyId: string | undefined;
  probe: boolean;
  /** The key's recovery episode when the lease was granted (probes of older episodes are stale). */
  episode: number;
  lease: Lease | undefined;
  settled: boolean;
  /** For a fail-fast rejection: when the earliest key was expected back (ms), per the snapshot before. */
  expectedRetryAfterMs: number | undefined;
  promise: 'pending' | 'fulfilled' | 'rejected';
  value: Lease | undefined;
  error: unknown;
}

/** Whether the strategy may ever lease the key: under `weighted`, weight 0 = drained (SPEC §3). */
type Leasable = (key: KeySnapshot) => boolean;
const leasableFor =
  (strategy: StrategyName): Leasable =>
  (key) =>
    strategy !== 'weighted' || key.weight > 0;

/** Can take a lease now: available under its cap, or half-open (its next lease is the probe). */
const eligibleBy =
  (leasable: Leasable) =>
  (key: KeySnapshot): boolean =>
    leasable(key) && ((key.state === 'available' && key.inFlight < key.maxConcurrent) || key.probe);

/** A half-open key whose single probe lease is out (`exhausted`, `failures`, past its recovery time). */
const probing = (key: KeySnapshot, at: number): boolean =>
  key.state === 'exhausted' && key.reason === 'failures' && !key.probe && key.recoveryAt <= at;

/** Earliest time (ms from the snapshot) at which some key may take a lease; `undefined`: never by itself. */
function earliestReturn(snapshot: PoolSnapshot, leasable: Leasable): number | undefined {
  let best: number | undefined;
  for (const key of snapshot.keys) {
    if (!leasable(key)) continue;
    let wait: number | undefined;
    if (key.state === 'available' || key.state === 'busy') wait = 0;
    else if (key.state === 'cooling') wait = Math.max(0, key.cooldownUntil - snapshot.at);
    else if (key.state === 'exhausted' && key.reason === 'failures')
      wait = Math.max(0, key.recoveryAt - snapshot.at);
    if (wait !== undefined && (best === undefined || wait < best)) best = wait;
  }
  return best;
}

/** Lets promise callbacks run; a macrotask turn, not a timer: no time passes on any clock. */
const settleCallbacks = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function outcomeOf(call: Call): string {
  const error = call.error;
  return `${call.promise} ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
}

type Outcome =
  | { readonly type: 'release'; readonly latencyMs: number | undefined }
  | { readonly type: 'fail' }
  | { readonly type: 'revoked' }
  | { readonly type: 'disabled' }
  | { readonly type: 'rateLimited'; readonly retryAfterMs: number | undefined };

class Harness {
  readonly calls: Call[] = [];
  /** Callers the pool should be holding in its queue, by submission order. */
  readonly waiting = new Map<number, Call>();
  readonly byRequest = new Map<number, Call>();
  /** Every secret the test has configured or added (removed ones included). */
  readonly secrets: string[] = [];
  readonly episodes = new Map<string, number>();
  /** Grant index of each key's most recent lease (least-busy tie-break: least recently leased). */
  readonly lastGrant = new Map<string, number>();
  /** Keys that left the pool at some point (they may come back through addKey). */
  readonly departed = new Set<string>();
  readonly violations: string[] = [];
  readonly trace: string[] = [];
  readonly settledCount = { released: 0, failed: 0, rateLimited: 0 };
  readonly leasable: Leasable;
  readonly eligible: (key: KeySnapshot) => boolean;
  /** The call being submitted right now (its synchronous events are its own). */
  current: Call | undefined;
  /** Snapshot taken just before the current command. */
  before: PoolSnapshot | undefined;
  /** Configured order of the last key leased (round-robin's place in the ring). */
  lastOrder = -1;
  grants = 0;
  nextKey: number;
  seq = 0;
  preAborted = 0;

  constructor(
    readonly pool: KeyPool,
    readonly clock: VirtualClock,
    readonly config: PoolConfig,
  ) {
    this.leasable = leasableFor(config.strategy);
    this.eligible = eligibleBy(this.leasable);
    this.nextKey = config.keyCaps.length + 1;
    for (let i = 1; i <= config.keyCaps.length; i++) this.secrets.push(fakeKey(i));
    pool.on('acquired', (event) => this.#onAcquired(event));
    pool.on('waiting', (event) => this.#onWaiting(event));
    pool.on('timeout', (event) => this.#onTimeout(event));
    pool.on('recovered', (event) => this.#bumpEpisode(event.keyId));
    pool.on('key-removed', (event) => {
      if (this.held().some((call) => call.keyId === event.keyId)) {
        this.#violation(`key ${event.keyId} was removed with leases still out`);
      }
      this.#bumpEpisode(event.keyId);
      this.departed.add(event.keyId);
    });
  }

  static async create(config: PoolConfig): Promise<Harness> {
    const clock = new VirtualClock();
    const keys = config.keyCaps.map(
      (cap, i): KeyConfig => ({
        key: fakeKey(i + 1),
        weight: config.weights[i] ?? 1,
        ...(cap === undefined ? {} : { maxConcurrent: cap }),
      }),
    );
    const pool = await KeyPool.create({
      keys,
      clock,
      strategy: config.strategy,
      maxConcurrentPerKey: config.maxConcurrentPerKey,
      maxFailures: config.maxFailures,
      defaultCooldownMs: config.defaultCooldownMs,
      recovery: { initialDelayMs: config.initialDelayMs, maxDelayMs: config.maxDelayMs },
      acquireTimeoutMs: config.acquireTimeoutMs,
      seed: config.seed,
    });
    return new Harness(pool, clock, config);
  }

  /** Leases granted and not yet settled, in grant order. */
  held(): Call[] {
    return this.calls
      .filter((call) => call.phase === 'granted' && !call.settled)
      .sort((a, b) => a.grantIndex - b.grantIndex);
  }

  episode(keyId: string): number {
    return this.episodes.get(keyId) ?? 0;
  }

  #bumpEpisode(keyId: string): void {
    this.episodes.set(keyId, this.episode(keyId) + 1);
  }

  #violation(message: string): void {
    this.violations.push(`t=${this.clock.now() - 1_700_000_000_000}: ${message}`);
  }

  /** Probe leases of the key's current recovery episode that are still out. */
  #currentProbes(keyId: string): number {
    const episode = this.episode(keyId);
    return this.held().filter((call) => call.keyId === keyId && call.probe && call.episode === episode)
      .length;
  }

  // ── synchronous events: the model follows the pool step by step ───────────────────────────────

  #onAcquired(event: KeyPoolEventMap['acquired']): void {
    const snapshot = this.pool.snapshot();
    let call = this.byRequest.get(event.leaseId);
    let immediate = false;
    const current = this.current;
    if (!call && current && current.requestId === undefined) {
      call = current;
      call.requestId = event.leaseId;
      this.byRequest.set(event.leaseId, call);
      immediate = true;
    }
    if (!call) {
      this.#violation(`grant to unknown request ${event.leaseId}`);
      return;
    }
    const who = `#${call.seq} (p${call.priority})`;
    if (!immediate && call.phase !== 'waiting') {
      this.#violation(`grant to ${who}, which was ${call.phase}`);
    }
    if (call.grants > 0) this.#violation(`second grant to ${who}`);

    // SPEC §4: priority, then FIFO. Nobody the model knows to be waiting may be passed over — not
    // by another waiter, and not by a new arrival (which the code leases at once without looking
    // at the queue, so this also needs: nothing is eligible while someone waits; see check()).
    for (const other of this.waiting.values()) {
      if (other === call) continue;
      const ahead = immediate
        ? other.priority >= call.priority
        : other.priority > call.priority || (other.priority === call.priority && other.seq < call.seq);
      if (ahead) {
        this.#violation(
          `${immediate ? 'new arrival' : 'waiter'} ${who} was granted while #${other.seq} (p${other.priority}) waited`,
        );
      }
    }

    // The key must have been eligible just before this grant. The listener may see the key before
    // or after it processed the grant (a grant triggered by the key's own `ready` is delivered after
    // the event), so: a plain grant finds the key available or busy (never cooling, exhausted or
    // draining); a probe finds it half-open (before) or probing (after).
    const key = snapshot.keys.find((k) => k.keyId === event.keyId);
    if (!key) {
      this.#violation(`grant to ${who} from key ${event.keyId}, which is not in the pool`);
    } else {
      if (event.probe) {
        if (!key.probe && !probing(key, snapshot.at)) {
          this.#violation(
            `probe grant to ${who} from a key that was not half-open (now ${key.state}/${key.reason})`,
          );
        }
        if (this.#currentProbes(key.keyId) > 0) {
          this.#violation(`second probe of the same recovery episode out on ${key.keyId}`);
        }
      } else if (
        key.state !== 'available' &&
        key.state !== 'busy' &&
        // A key that learned its limits may rest right after the grant that used its allowance up
        // (`quota`) or until its pace's next slot (`paced`).
        !(key.state === 'cooling' && (key.reason === 'quota' || key.reason === 'paced') && key.inFlight > 0)
      ) {
        this.#violation(`grant to ${who} from key in state ${key.state}/${key.reason}`);
      }
      if (key.inFlight > key.maxConcurrent) {
        this.#violation(`key ${key.keyId} has ${key.inFlight} in flight, cap ${key.maxConcurrent}`);
      }
    }
    if (immediate) this.#checkImmediate(who, event);

    this.waiting.delete(call.seq);
    this.grants++;
    call.phase = 'granted';
    call.grants++;
    call.grantIndex = this.grants;
    call.keyId = event.keyId;
    call.probe = event.probe;
    call.episode = this.episode(event.keyId);
    this.lastGrant.set(event.keyId, this.grants);
    if (key) this.lastOrder = key.order;
  }

  /** An immediate grant: nothing changed since the command began, so check against that snapshot. */
  #checkImmediate(who: string, event: KeyPoolEventMap['acquired']): void {
    const before = this.before;
    if (!before) return;
    const was = before.keys.find((k) => k.keyId === event.keyId);
    if (!was || !this.eligible(was)) {
      this.#violation(`immediate grant to ${who} from ${event.keyId}, not eligible before (${was?.state})`);
      return;
    }
    if (was.probe !== event.probe) {
      this.#violation(`immediate grant to ${who}: probe=${event.probe} but key half-open=${was.probe}`);
    }
    // SPEC §3, for the deterministic strategies.
    const candidates = before.keys.filter(this.eligible);
    let expected: KeySnapshot | undefined;
    if (this.config.strategy === 'least-busy') {
      // Fewest in flight; ties → least recently leased → configured order. (A key removed and added
      // back may or may not bring its lease history from storage: leave such ties alone.)
      const fewest = Math.min(...candidates.map((k) => k.inFlight));
      const tied = candidates.filter((k) => k.inFlight === fewest);
      if (was.inFlight !== fewest) {
        this.#violation(
          `least-busy leased ${event.keyId} with ${was.inFlight} in flight; another had ${fewest}`,
        );
      } else if (!tied.some((k) => this.departed.has(k.keyId))) {
        const recency = (k: KeySnapshot) => this.lastGrant.get(k.keyId) ?? 0;
        expected = [...tied].sort((a, b) => recency(a) - recency(b) || a.order - b.order)[0];
      }
    } else if (this.config.strategy === 'round-robin') {
      // A stable ring in configured order: the next eligible key after the last one leased.
      expected = candidates.find((k) => k.order > this.lastOrder) ?? candidates[0];
    }
    if (expected && expected.keyId !== event.keyId) {
      this.#violation(
        `${this.config.strategy} leased ${event.keyId} (order ${was.order}) to ${who}; expected ${expected.keyId} (order ${expected.order})`,
      );
    }
  }

  #onWaiting(event: KeyPoolEventMap['waiting']): void {
    const call = this.current;
    if (call?.kind !== 'acquire' || call.requestId !== undefined) {
      this.#violation(`'waiting' for request ${event.requestId} outside its acquire() call`);
      return;
    }
    call.requestId = event.requestId;
    this.byRequest.set(event.requestId, call);
    call.phase = 'waiting';
    this.waiting.set(call.seq, call);
    if (event.priority !== call.priority) {
      this.#violation(`'waiting' says priority ${event.priority}, asked ${call.priority}`);
    }
    if (event.waiting !== this.waiting.size) {
      this.#violation(`'waiting' says ${event.waiting} waiting, model has ${this.waiting.size}`);
    }
  }

  #onTimeout(event: KeyPoolEventMap['timeout']): void {
    const call = this.byRequest.get(event.requestId);
    const current = this.current;
    if (!call && current && current.requestId === undefined) {
      // Fail fast: rejected inside its own acquire() call.
      current.requestId = event.requestId;
      this.byRequest.set(event.requestId, current);
      current.phase = 'failed-fast';
      return;
    }
    if (!call) {
      this.#violation(`'timeout' for unknown request ${event.requestId}`);
      return;
    }
    if (call.phase !== 'waiting') {
      this.#violation(`'timeout' for #${call.seq}, which was ${call.phase}`);
      return;
    }
    const deadline = call.submittedAt + call.timeoutMs;
    if (this.clock.now() !== deadline) {
      this.#violation(`#${call.seq} timed out at ${this.clock.now()}, deadline ${deadline}`);
    }
    const idle = this.pool.snapshot().keys.find(this.eligible);
    if (idle) this.#violation(`#${call.seq} timed out while key ${idle.keyId} was eligible`);
    call.phase = 'timed-out';
    this.waiting.delete(call.seq);
  }

  // ── commands ──────────────────────────────────────────────────────────────────────────────────

  #newCall(kind: Call['kind'], priority: number, timeoutMs: number, controller?: AbortController): Call {
    const call: Call = {
      seq: ++this.seq,
      kind,
      priority,
      timeoutMs,
      submittedAt: this.clock.now(),
      controller,
      abortReason: undefined,
      requestId: undefined,
      phase: 'submitting',
      grants: 0,
      grantIndex: 0,
      keyId: undefined,
      probe: false,
      episode: 0,
      lease: undefined,
      settled: false,
      expectedRetryAfterMs: undefined,
      promise: 'pending',
      value: undefined,
      error: undefined,
    };
    this.calls.push(call);
    return call;
  }

  #track(call: Call, promise: Promise<Lease>): void {
    promise.then(
      (lease) => {
        call.promise = 'fulfilled';
        call.value = lease;
        call.lease = lease;
      },
      (error: unknown) => {
        call.promise = 'rejected';
        call.error = error;
      },
    );
  }

  acquire(priority: number, timeoutMs: number | undefined, signal: SignalMode): void {
    const before = this.pool.snapshot();
    this.before = before;
    const controller = signal === 'none' ? undefined : new AbortController();
    const effective = timeoutMs ?? this.config.acquireTimeoutMs;
    const call = this.#newCall('acquire', priority, effective, controller);
    if (signal === 'aborted' && controller) {
      // Already aborted: rejected at once, never queued, never leased.
      call.abortReason = new Error(`aborted before #${call.seq}`);
      controller.abort(call.abortReason);
      this.preAborted++;
    }
    this.current = call;
    let promise: Promise<Lease>;
    try {
      promise = this.pool.acquire({
        priority,
        ...(timeoutMs === undefined ? {} : { timeoutMs }),
        ...(controller ? { signal: controller.signal } : {}),
      });
    } finally {
      this.current = undefined;
    }
    this.#track(call, promise);
    this.trace.push(`acquire #${call.seq} p${priority} t${effective} ${signal} → ${call.phase}`);
    if (signal === 'aborted') {
      if (call.phase !== 'submitting') this.#violation(`pre-aborted #${call.seq} was ${call.phase}`);
      call.phase = 'aborted';
      return;
    }
    if (call.phase === 'submitting') call.phase = 'failed-fast'; // rejected at once, no event

    // acquire() leases at once when a key is eligible, waits when none is, and fails fast only
    // when no key can come back before the deadline (SPEC §4).
    const now = before.keys.some(this.eligible);
    if (now && call.phase !== 'granted') {
      this.#violation(`#${call.seq} was ${call.phase} although a key was eligible`);
    }
    if (!now) {
      if (call.phase === 'granted') this.#violation(`#${call.seq} granted although no key was eligible`);
      const earliest = earliestReturn(before, this.leasable);
      call.expectedRetryAfterMs = earliest;
      if (earliest === undefined || earliest > effective) {
        if (call.phase !== 'failed-fast') {
          this.#violation(
            `#${call.seq} ${call.phase}: no key can return within ${effective} ms (earliest ${earliest})`,
          );
        }
      } else if (earliest < effective && call.phase !== 'waiting') {
        // (A key due exactly at the deadline may go either way.)
        this.#violation(
          `#${call.seq} ${call.phase} though a key may return in ${earliest} ms ≤ ${effective}`,
        );
      }
    }
  }

  tryAcquire(priority: number): void {
    const before = this.pool.snapshot();
    this.before = before;
    const call = this.#newCall('try', priority, 0);
    this.current = call;
    let lease: Lease | undefined;
    try {
      lease = this.pool.tryAcquire({ priority });
    } finally {
      this.current = undefined;
    }
    const now = before.keys.some(this.eligible);
    if (lease) {
      call.promise = 'fulfilled';
      call.value = lease;
      call.lease = lease;
      if (call.phase !== 'granted') {
        this.#violation(`tryAcquire #${call.seq} returned a lease without 'acquired'`);
      }
      if (!now) this.#violation(`tryAcquire #${call.seq} leased although no key was eligible`);
    } else {
      if (call.phase !== 'submitting') {
        this.#violation(`tryAcquire #${call.seq} ${call.phase} but returned nothing`);
      }
      call.phase = 'unavailable';
      call.promise = 'rejected';
      if (now) this.#violation(`tryAcquire #${call.seq} returned nothing although a key was eligible`);
    }
    this.trace.push(`tryAcquire #${call.seq} p${priority} → ${call.phase}`);
  }

  /**
   * Settles an outstanding lease: on the Lease itself, or (`byKey`) through the seed-compatible
   * string API, which settles the *oldest* outstanding lease on that key (SPEC §1).
   */
  settle(pick: number, outcome: Outcome, byKey: boolean): void {
    const held = this.held().filter((call) => call.lease !== undefined);
    const picked = held[pick % Math.max(1, held.length)];
    if (!picked?.lease) return;
    const call = byKey ? held.find((c) => c.keyId === picked.keyId) : picked;
    const lease = call?.lease;
    if (!call || !lease) return;
    const target: Lease | string = byKey ? lease.key : lease;
    call.settled = true; // before settling: the freed slot may be handed on inside the call
    let state: KeyStateName;
    switch (outcome.type) {
      case 'release': {
        const options = outcome.latencyMs === undefined ? undefined : { latencyMs: outcome.latencyMs };
        state = byKey ? this.pool.release(target, options) : lease.release(options);
        this.settledCount.released++;
        break;
      }
      case 'fail':
        state = byKey ? this.pool.markFailed(target, new Error('boom')) : lease.fail(new Error('boom'));
        this.settledCount.failed++;
        break;
      case 'revoked':
      case 'disabled':
        state = byKey
          ? this.pool.markFailed(target, new Error('auth'), { kind: outcome.type })
          : lease.fail(new Error('auth'), { kind: outcome.type });
        this.settledCount.failed++;
        break;
      case 'rateLimited': {
        const options = outcome.retryAfterMs === undefined ? {} : { retryAfterMs: outcome.retryAfterMs };
        state = byKey ? this.pool.markRateLimited(target, options) : lease.rateLimited(options);
        this.settledCount.rateLimited++;
        break;
      }
    }
    if (!lease.settled) this.#violation(`#${call.seq} is not settled after settling it`);
    for (const other of held) {
      if (other !== call && other.lease?.settled)
        this.#violation(`settling #${call.seq} settled #${other.seq}`);
    }
    // The returned state is the key's state afterwards (after any synchronous hand-off).
    if (!KEY_STATES.includes(state)) this.#violation(`settle returned ${String(state)}`);
    const after = this.pool.snapshot().keys.find((key) => key.keyId === call.keyId);
    if (after && after.state !== state) {
      this.#violation(`settle of #${call.seq} returned '${state}', key is '${after.state}'`);
    }
    this.trace.push(
      `settle${byKey ? ' (by key)' : ''} #${call.seq} on ${call.keyId}${call.probe ? ' (probe)' : ''}: ${outcome.type} → ${state}`,
    );
  }

  /** A second settle throws LeaseSettledError and changes nothing (SPEC §1). */
  settleAgain(pick: number): void {
    const done = this.calls.filter((call) => call.settled && call.lease !== undefined);
    const lease = done[pick % Math.max(1, done.length)]?.lease;
    if (!lease) return;
    const before = this.pool.snapshot().keys.map((key) => [key.keyId, key.inFlight, key.state]);
    expect(() => lease.release()).toThrow(LeaseSettledError);
    expect(() => lease.fail()).toThrow(LeaseSettledError);
    expect(() => lease.rateLimited()).toThrow(LeaseSettledError);
    expect(this.pool.snapshot().keys.map((key) => [key.keyId, key.inFlight, key.state])).toEqual(before);
  }

  advance(ms: number): void {
    this.clock.advance(ms);
    this.trace.push(`advance ${ms}`);
  }

  /** Adds a new key, or (`reuse`) adds back one the test configured before, removed or not. */
  async addKey(cap: Cap, reuse: number | undefined): Promise<void> {
    let secret: string;
    if (reuse === undefined) {
      secret = fakeKey(this.nextKey++);
      this.secrets.push(secret);
    } else {
      secret = this.secrets[reuse % this.secrets.length] ?? fakeKey(1);
    }
    const was = this.#present(secret);
    const keyId = await this.pool.addKey(cap === undefined ? secret : { key: secret, maxConcurrent: cap });
    expect(keyId).toBe(fingerprint(secret));
    const key = this.pool.snapshot().keys.find((k) => k.keyId === keyId);
    const now = key ? `${key.state}/${key.reason}` : 'not in the pool';
    const coolingByProvider =
      key?.state === 'cooling' &&
      key.cooldownUntil > this.clock.now() &&
      (key.reason === 'rate-limited' || key.reason === 'quota' || key.reason === 'paced');
    if (!key || !(key.state === 'available' || key.state === 'busy' || coolingByProvider)) {
      // Adding vouches for the key (pool already has it, or stored): revocation, failure exhaustion
      // and a drain are cleared; only a provider-imposed cooldown stays.
      this.#violation(`addKey(${keyId}) left it ${now} (was ${was?.state ?? 'absent'})`);
    }
    this.trace.push(`addKey ${keyId}${reuse === undefined ? '' : ` again (was ${was?.state ?? 'absent'})`}`);
  }

  async removeKey(pick: number): Promise<void> {
    const secret = this.secrets[pick % this.secrets.length];
    if (secret === undefined) return;
    const present = this.#present(secret);
    if (!present) {
      await expect(this.pool.removeKey(secret)).rejects.toBeInstanceOf(UnknownKeyError);
      return;
    }
    await this.pool.removeKey(secret);
    const outstanding = this.held().filter((call) => call.keyId === present.keyId).length;
    const after = this.pool.snapshot().keys.find((key) => key.keyId === present.keyId);
    // With leases out it drains (takes no new lease, leaves when the last settles); else it is gone.
    if (outstanding > 0) expect(after?.state).toBe('draining');
    else expect(after).toBeUndefined();
    this.trace.push(`removeKey ${present.keyId} (${outstanding} out)`);
  }

  async resetKey(pick: number): Promise<void> {
    const secret = this.secrets[pick % this.secrets.length];
    if (secret === undefined) return;
    const present = this.#present(secret);
    if (!present) {
      await expect(this.pool.resetKey(secret)).rejects.toBeInstanceOf(UnknownKeyError);
      return;
    }
    await this.pool.resetKey(secret);
    const after = this.pool.snapshot().keys.find((key) => key.keyId === present.keyId);
    if (present.state !== 'draining') {
      // Health cleared, eligible again (busy when its leases fill its cap).
      expect(after?.state).toMatch(/^(available|busy)$/);
      expect(after?.reason).toBeNull();
      expect(after?.consecutiveFailures).toBe(0);
    }
    this.trace.push(`resetKey ${present.keyId} (was ${present.state}/${present.reason})`);
  }

  abort(pick: number): void {
    const abortable = this.calls.filter((call) => call.controller && !call.controller.signal.aborted);
    const call = abortable[pick % Math.max(1, abortable.length)];
    if (!call?.controller) return;
    const reason = new Error(`aborted #${call.seq}`);
    call.abortReason = reason;
    const wasWaiting = call.phase === 'waiting';
    call.controller.abort(reason);
    if (wasWaiting) {
      // Removed at once: nothing may be granted to it afterwards.
      call.phase = 'aborted';
      this.waiting.delete(call.seq);
    }
    this.trace.push(`abort #${call.seq} (was ${wasWaiting ? 'waiting' : call.phase})`);
  }

  #present(secret: string): KeySnapshot | undefined {
    const keyId = fingerprint(secret);
    return this.pool.snapshot().keys.find((key) => key.keyId === keyId);
  }

  // ── invariants after every command ────────────────────────────────────────────────────────────

  check(): void {
    const snapshot = this.pool.snapshot();
    const held = this.held();
    const heldByKey = new Map<string, number>();
    for (const call of held) {
      if (call.keyId !== undefined) heldByKey.set(call.keyId, (heldByKey.get(call.keyId) ?? 0) + 1);
    }
    for (const key of snapshot.keys) {
      const mine = heldByKey.get(key.keyId) ?? 0;
      if (key.inFlight !== mine) {
        this.#violation(`key ${key.keyId} (${key.state}) says ${key.inFlight} in flight, test holds ${mine}`);
      }
      // A 429 that came before any success restarts slow start below what is already out: the cap
      // then binds grants (checked at each grant), not the leases granted before it fell — but a key
      // over its cap is never available.
      if (key.inFlight > key.maxConcurrent && key.state === 'available') {
        this.#violation(`key ${key.keyId} has ${key.inFlight} in flight, cap ${key.maxConcurrent}`);
      }
      // Exactly one probe out while probing, none while failing or half-open.
      const probes = this.#currentProbes(key.keyId);
      const expected = probing(key, snapshot.at) ? 1 : 0;
      if (key.state === 'exhausted' && key.reason === 'failures' && probes !== expected) {
        this.#violation(
          `key ${key.keyId} is ${expected ? 'probing' : 'not probing'} with ${probes} probe(s) of this episode out`,
        );
      }
    }
    for (const [keyId, count] of heldByKey) {
      if (count > 0 && !snapshot.keys.some((key) => key.keyId === keyId)) {
        this.#violation(`test holds ${count} lease(s) on ${keyId}, which left the pool`);
      }
    }
    if (snapshot.metrics.waiting !== this.waiting.size) {
      this.#violation(`pool says ${snapshot.metrics.waiting} waiting, model ${this.waiting.size}`);
    }
    // Woken by the event that frees a key: nobody waits while a key could take them.
    if (this.waiting.size > 0) {
      const idle = snapshot.keys.find(this.eligible);
      if (idle) {
        this.#violation(`${this.waiting.size} waiting while key ${idle.keyId} (${idle.state}) is eligible`);
      }
    }
    const eligibleNow = snapshot.keys.filter(this.eligible).length;
    if (this.pool.availableCount() !== eligibleNow) {
      this.#violation(`availableCount() ${this.pool.availableCount()}, eligible keys ${eligibleNow}`);
    }
    this.#checkMetrics(snapshot);
    for (const call of this.calls) this.#checkCall(call);
    expect(this.violations, this.trace.slice(-12).join('\n')).toEqual([]);
  }

  #checkMetrics(snapshot: PoolSnapshot): void {
    const { metrics } = snapshot;
    const count = (phase: Phase) => this.calls.filter((call) => call.phase === phase).length;
    const abortedWaiters = count('aborted') - this.preAborted;
    const expected = {
      acquires: this.grants,
      releases: this.settledCount.released,
      failures: this.settledCount.failed,
      rateLimits: this.settledCount.rateLimited,
    };
    const actual = {
      acquires: metrics.acquires,
      releases: metrics.releases,
      failures: metrics.failures,
      rateLimits: metrics.rateLimits,
    };
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      this.#violation(`metrics ${JSON.stringify(actual)}, model ${JSON.stringify(expected)}`);
    }
    if (metrics.aborts < abortedWaiters || metrics.aborts > count('aborted')) {
      this.#violation(`metrics.aborts ${metrics.aborts}, aborted waiters ${abortedWaiters}`);
    }
    const timedOut = count('timed-out');
    if (metrics.timeouts < timedOut || metrics.timeouts > timedOut + count('failed-fast')) {
      this.#violation(`metrics.timeouts ${metrics.timeouts}, timed out ${timedOut}`);
    }
  }

  #checkCall(call: Call): void {
    const who = `#${call.seq}`;
    switch (call.phase) {
      case 'granted': {
        const lease = call.value;
        if (call.promise !== 'fulfilled' || !lease) {
          this.#violation(`${who} granted but its promise is ${call.promise}`);
        } else if (lease.leaseId !== call.requestId || lease.keyId !== call.keyId) {
          this.#violation(`${who} resolved with a lease that is not the one granted`);
        } else if (lease.probe !== call.probe) {
          this.#violation(`${who} lease.probe differs from the 'acquired' event`);
        }
        break;
      }
      case 'waiting':
        if (call.promise !== 'pending')
          this.#violation(`${who} is waiting but its promise is ${call.promise}`);
        break;
      case 'failed-fast':
      case 'timed-out':
        if (call.promise !== 'rejected' || !(call.error instanceof NoAvailableKeyError)) {
          this.#violation(`${who} ${call.phase}: expected NoAvailableKeyError, got ${outcomeOf(call)}`);
        } else if (call.phase === 'failed-fast' && call.error.retryAfterMs !== call.expectedRetryAfterMs) {
          this.#violation(
            `${who} failed fast with retryAfterMs ${call.error.retryAfterMs}, earliest key back in ${call.expectedRetryAfterMs}`,
          );
        }
        break;
      case 'aborted':
        if (
          call.promise !== 'rejected' ||
          !(call.error instanceof AcquireAbortedError) ||
          call.error.cause !== call.abortReason
        ) {
          this.#violation(
            `${who} aborted: expected AcquireAbortedError with the reason, got ${outcomeOf(call)}`,
          );
        }
        break;
      case 'closed':
        if (call.promise !== 'rejected' || !(call.error instanceof PoolClosedError)) {
          this.#violation(`${who} closed: expected PoolClosedError, got ${outcomeOf(call)}`);
        }
        break;
      case 'unavailable':
      case 'submitting':
        break;
    }
  }

  /** After the run: every caller ends granted or rejected, and close() leaves nothing behind (SPEC §11). */
  async finish(): Promise<void> {
    if (this.config.closeWithWaiters) {
      await this.pool.close();
      for (const call of this.waiting.values()) call.phase = 'closed';
      this.waiting.clear();
      await settleCallbacks();
    } else {
      const deadlines = [...this.waiting.values()].map((call) => call.submittedAt + call.timeoutMs);
      this.clock.advanceTo(Math.max(this.clock.now(), ...deadlines));
      await settleCallbacks();
      if (this.waiting.size > 0) {
        this.#violation(`${this.waiting.size} caller(s) still waiting after every deadline passed`);
      }
      this.check();
      await this.pool.close();
      await settleCallbacks();
    }
    for (const call of this.calls) {
      this.#checkCall(call);
      if (call.promise === 'pending') this.#violation(`#${call.seq} never settled (${call.phase})`);
    }
    expect(this.violations, this.trace.slice(-12).join('\n')).toEqual([]);
    expect(this.clock.pendingTimers).toBe(0);
    await expect(this.pool.acquire()).rejects.toBeInstanceOf(PoolClosedError);
    expect(() => this.pool.tryAcquire()).toThrow(PoolClosedError);
  }
}

// ── commands ─────────────────────────────────────────────────────────────────────────────────────

type Cmd = fc.AsyncCommand<Harness, Harness>;

/** A command whose body runs against the harness, then the invariants are checked. */
function command(label: string, body: (h: Harness) => void | Promise<void>): Cmd {
  return {
    check: () => true,
    async run(_model, h) {
      await body(h);
      await settleCallbacks();
      h.check();
    },
    toString: () => label,
  };
}

const outcomeArb: fc.Arbitrary<Outcome> = fc.oneof(
  {
    arbitrary: fc.record({
      type: fc.constant('release' as const),
      latencyMs: fc.option(fc.integer({ min: 0, max: 2_000 }), { nil: undefined }),
    }),
    weight: 4,
  },
  { arbitrary: fc.constant({ type: 'fail' as const }), weight: 4 },
  { arbitrary: fc.constant({ type: 'revoked' as const }), weight: 1 },
  { arbitrary: fc.constant({ type: 'disabled' as const }), weight: 1 },
  {
    arbitrary: fc.record({
      type: fc.constant('rateLimited' as const),
      retryAfterMs: fc.option(fc.integer({ min: -100, max: 3_000 }), { nil: undefined }),
    }),
    weight: 2,
  },
);

const acquireCmd = fc
  .record({
    priority: fc.integer({ min: 0, max: 2 }),
    timeoutMs: fc.option(fc.integer({ min: 0, max: 4_000 }), { nil: undefined }),
    signal: fc.constantFrom<SignalMode>('none', 'none', 'live', 'live', 'aborted'),
  })
  .map(({ priority, timeoutMs, signal }) =>
    command(`acquire({ priority: ${priority}, timeoutMs: ${timeoutMs}, signal: ${signal} })`, (h) =>
      h.acquire(priority, timeoutMs, signal),
    ),
  );
const settleCmd = fc
  .tuple(fc.nat(), outcomeArb, fc.boolean())
  .map(([pick, outcome, byKey]) =>
    command(`settle(${pick}, ${JSON.stringify(outcome)}${byKey ? ', by key' : ''})`, (h) =>
      h.settle(pick, outcome, byKey),
    ),
  );
const advanceCmd = fc
  .oneof(fc.integer({ min: 0, max: 200 }), fc.integer({ min: 0, max: 3_000 }))
  .map((ms) => command(`advance(${ms})`, (h) => h.advance(ms)));

/** Weighted towards contention: acquires outnumber settles, so callers queue up. */
const commandArbs: fc.Arbitrary<Cmd>[] = [
  ...Array.from({ length: 5 }, () => acquireCmd),
  fc
    .integer({ min: 0, max: 2 })
    .map((priority) => command(`tryAcquire({ priority: ${priority} })`, (h) => h.tryAcquire(priority))),
  ...Array.from({ length: 4 }, () => settleCmd),
  fc.nat().map((pick) => command(`settleAgain(${pick})`, (h) => h.settleAgain(pick))),
  ...Array.from({ length: 3 }, () => advanceCmd),
  fc.nat().map((pick) => command(`abort(${pick})`, (h) => h.abort(pick))),
  fc
    .tuple(capArb, fc.option(fc.nat(), { nil: undefined, freq: 3 }))
    .map(([cap, reuse]) =>
      command(`addKey(cap ${cap}${reuse === undefined ? '' : `, again #${reuse}`})`, (h) =>
        h.addKey(cap, reuse),
      ),
    ),
  fc.nat().map((pick) => command(`removeKey(${pick})`, (h) => h.removeKey(pick))),
  fc.nat().map((pick) => command(`resetKey(${pick})`, (h) => h.resetKey(pick))),
];

describe('KeyPool under random commands (model-based)', () => {
  it('keeps leases, caps, probes, the waiter queue, strategies and close() consistent with the model', async () => {
    await fc.assert(
      fc.asyncProperty(
        configArb,
        fc.commands(commandArbs, { maxCommands: MAX_COMMANDS, size: 'max' }),
        async (config, commands) => {
          const harness = await Harness.create(config);
          try {
            await fc.asyncModelRun(() => ({ model: harness, real: harness }), commands);
            await harness.finish();
          } finally {
            if (!harness.pool.snapshot().closed) await harness.pool.close();
          }
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });
});

// ── what the model found, pinned as examples ─────────────────────────────────────────────────────

describe('KeyPool regressions found by the model', () => {
  const start = (options: Partial<KeyPoolOptions> & { readonly keys: string[] }) =>
    KeyPool.create({ clock: new VirtualClock(), seed: 1, ...options });

  it('least-busy breaks a tie by the least recently leased key, also after priority hand-offs', async () => {
    const [a, b] = [fakeKey(1), fakeKey(2)];
    const pool = await start({ keys: [a, b], maxConcurrentPerKey: 1 });
    const onA = await pool.acquire();
    const onB = await pool.acquire();
    const low = pool.acquire({ priority: 0 });
    const high = pool.acquire({ priority: 1 });
    onA.release(); // a → the high-priority waiter (asked second)
    const first = await high;
    onB.release(); // b → the low-priority waiter: b is now the most recently leased key
    const second = await low;
    expect([first.key, second.key]).toEqual([a, b]);
    first.release();
    second.release();
    // Both idle with nothing in flight: the tie goes to the least recently leased key, a.
    expect((await pool.acquire()).key).toBe(a);
    await pool.close();
  });

  it('lets only the probe of the current recovery episode decide it (one probe out at a time)', async () => {
    const secret = fakeKey(1);
    const clock = new VirtualClock();
    const pool = await start({
      keys: [secret],
      clock,
      maxFailures: 1,
      recovery: { initialDelayMs: 100, maxDelayMs: 100 },
    });
    (await pool.acquire()).fail(); // exhausted: first recovery episode
    clock.advance(100);
    const stale = await pool.acquire();
    expect(stale.probe).toBe(true);
    await pool.resetKey(secret); // the episode ends with its probe still out
    (await pool.acquire()).fail(); // exhausted again: second episode
    clock.advance(100);
    const probe = await pool.acquire();
    expect(probe.probe).toBe(true);
    stale.fail(); // the first episode's probe settles late: it must not decide the second episode
    clock.advance(1_000);
    const next = pool.tryAcquire();
    // Still probing on `probe`: no second probe may be admitted while it is out.
    expect(next?.probe ?? false).toBe(false);
    await pool.close();
  });

  it('brings a revoked key back when it is removed and added again', async () => {
    const clock = new VirtualClock();
    const pool = await start({ keys: [fakeKey(1), fakeKey(2)], clock });
    const lease = await pool.acquire();
    lease.fail(new Error('401'), { kind: 'revoked' });
    clock.advance(10); // a moment passes: the revocation reaches storage
    await pool.removeKey(lease.key);
    const keyId = await pool.addKey(lease.key); // e.g. after the account was fixed
    const key = pool.snapshot().keys.find((k) => k.keyId === keyId);
    expect(key?.state).toBe('available');
    await pool.close();
  });

  it('fails fast under weighted when only drained (weight 0) keys could serve', async () => {
    const clock = new VirtualClock();
    const pool = await KeyPool.create({
      keys: [
        { key: fakeKey(1), weight: 0 },
        { key: fakeKey(2), weight: 1 },
      ],
      strategy: 'weighted',
      clock,
      seed: 1,
    });
    (await pool.acquire()).fail(new Error('401'), { kind: 'revoked' }); // the only weighted key dies
    expect(pool.availableCount()).toBe(0);
    const error = await pool.acquire({ timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoAvailableKeyError);
    expect(clock.now() - 1_700_000_000_000).toBe(0); // at once, not after 5 s
    await pool.close();
  });

  it('keeps a key that is added back while it drains', async () => {
    const [a, b] = [fakeKey(1), fakeKey(2)];
    const pool = await start({ keys: [a, b] });
    const lease = await pool.acquire();
    expect(lease.key).toBe(a);
    await pool.removeKey(a); // a lease is out: a drains
    const keyId = await pool.addKey(a); // …and is wanted back before it has left
    lease.release();
    const key = pool.snapshot().keys.find((k) => k.keyId === keyId);
    expect(key?.state).toBe('available');
    await pool.close();
  });
});
