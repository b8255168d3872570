/**
 * Many callers, few slots: 1 000 simultaneous acquires over 3 keys × 2 slots, on a virtual clock.
 * Leases are settled one at a time; every release must hand its slot to the next waiter at once
 * (inside the release call), in priority-then-FIFO order, without ever overfilling a key.
 */
import { describe, expect, it } from 'vitest';
import {
  AcquireAbortedError,
  KeyPool,
  type KeyPoolEventMap,
  type KeyPoolOptions,
  type Lease,
  type StrategyName,
  VirtualClock,
} from '../../src/index.js';

const CALLERS = 1_000;
const KEYS = 3;
const CAP = 2;
const SLOTS = KEYS * CAP;

const fakeKeys = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `sk-test-contention-${String(i + 1).padStart(12, '0')}`);

interface Tracked {
  readonly index: number;
  readonly priority: number;
  state: 'pending' | 'fulfilled' | 'rejected';
  lease: Lease | undefined;
  error: unknown;
  /** How many times a settlement callback ran (must end at exactly 1). */
  settlements: number;
}

function track(index: number, priority: number, promise: Promise<Lease>): Tracked {
  const tracked: Tracked = {
    index,
    priority,
    state: 'pending',
    lease: undefined,
    error: undefined,
    settlements: 0,
  };
  promise.then(
    (lease) => {
      tracked.state = 'fulfilled';
      tracked.lease = lease;
      tracked.settlements++;
    },
    (error: unknown) => {
      tracked.state = 'rejected';
      tracked.error = error;
      tracked.settlements++;
    },
  );
  return tracked;
}

/** A small deterministic generator, so that the order leases are settled in varies but repeats. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

/** One release and what it caused. */
interface HandOff {
  readonly releasedKeyId: string;
  /** Grants emitted inside the release call. */
  readonly grants: ReadonlyArray<KeyPoolEventMap['acquired']>;
  /** Whether the promise of each granted caller was fulfilled one microtask turn after the release. */
  readonly resolvedNextTick: readonly boolean[];
}

interface Contention {
  readonly pool: KeyPool;
  readonly clock: VirtualClock;
  readonly calls: readonly Tracked[];
  /** Every `acquired` event, in emission order. */
  readonly grants: ReadonlyArray<KeyPoolEventMap['acquired']>;
  /** Grants emitted during the 1 000 acquire() calls themselves. */
  readonly immediate: number;
  /** Waiters the pool reported right after the burst. */
  readonly waitingAfterBurst: number;
  readonly handOffs: readonly HandOff[];
  /** Most leases seen in flight on any one key (snapshot after every grant and every release). */
  readonly maxInFlight: number;
  /** In-flight totals seen while callers were still waiting. */
  readonly inFlightWhileWaiting: ReadonlySet<number>;
}

/**
 * Fires `priorities.length` acquires at once, then settles leases one at a time (in a seeded
 * random order) until every caller has been granted, recording what each release caused.
 */
async function contend(
  priorities: readonly number[],
  options: Partial<KeyPoolOptions> = {},
): Promise<Contention> {
  const clock = new VirtualClock();
  const pool = await KeyPool.create({
    keys: fakeKeys(KEYS),
    maxConcurrentPerKey: CAP,
    clock,
    seed: 7,
    ...options,
  });
  const grants: Array<KeyPoolEventMap['acquired']> = [];
  let maxInFlight = 0;
  const observe = () => {
    for (const key of pool.snapshot().keys) maxInFlight = Math.max(maxInFlight, key.inFlight);
  };
  pool.on('acquired', (event) => {
    grants.push(event);
    observe();
  });

  const calls = priorities.map((priority, index) => track(index, priority, pool.acquire({ priority })));
  const immediate = grants.length;
  const waitingAfterBurst = pool.snapshot().metrics.waiting;
  await Promise.resolve();

  const byLeaseId = new Map<number, Tracked>();
  const outstanding: Lease[] = [];
  const collect = () => {
    for (const call of calls) {
      if (call.lease && !byLeaseId.has(call.lease.leaseId)) {
        byLeaseId.set(call.lease.leaseId, call);
        outstanding.push(call.lease);
      }
    }
  };
  collect();

  const random = lcg(42);
  const handOffs: HandOff[] = [];
  const inFlightWhileWaiting = new Set<number>();
  while (outstanding.length > 0) {
    const [lease] = outstanding.splice(Math.floor(random() * outstanding.length), 1);
    if (!lease) break;
    const before = grants.length;
    lease.release();
    const handed = grants.slice(before);
    observe();
    const snapshot = pool.snapshot();
    if (snapshot.metrics.waiting > 0) {
      inFlightWhileWaiting.add(snapshot.keys.reduce((sum, key) => sum + key.inFlight, 0));
    }
    await Promise.resolve(); // one microtask turn: the granted caller's promise must be settled by now
    handOffs.push({
      releasedKeyId: lease.keyId,
      grants: handed,
      resolvedNextTick: handed.map((grant) =>
        calls.some((call) => call.state === 'fulfilled' && call.lease?.leaseId === grant.leaseId),
      ),
    });
    collect();
  }
  await pool.close();
  return {
    pool,
    clock,
    calls,
    grants,
    immediate,
    waitingAfterBurst,
    handOffs,
    maxInFlight,
    inFlightWhileWaiting,
  };
}

/** Call index of each grant, in grant order. */
function grantOrder(run: Contention): number[] {
  const indexByLease = new Map<number, number>();
  for (const call of run.calls) if (call.lease) indexByLease.set(call.lease.leaseId, call.index);
  return run.grants.map((grant) => indexByLease.get(grant.leaseId) ?? -1);
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe(`${CALLERS} callers contending for ${KEYS} keys × ${CAP} slots`, () => {
  const samePriority = range(CALLERS).map(() => 0);

  it('leases the six free slots at once and queues the other 994 callers', async () => {
    const run = await contend(samePriority);
    expect(run.immediate).toBe(SLOTS);
    expect(run.waitingAfterBurst).toBe(CALLERS - SLOTS);
    expect(run.calls.slice(0, SLOTS).every((call) => call.lease !== undefined)).toBe(true);
  });

  it('hands each released slot to the oldest waiter: grant order is call order', async () => {
    const run = await contend(samePriority);
    expect(grantOrder(run)).toEqual(range(CALLERS));
  });

  it('hands the slot over inside release(): the waiter is resolved before the next release', async () => {
    const run = await contend(samePriority);
    const withWaiters = run.handOffs.slice(0, CALLERS - SLOTS);
    expect(withWaiters.map((handOff) => handOff.grants.length)).toEqual(withWaiters.map(() => 1));
    expect(withWaiters.every((handOff) => handOff.resolvedNextTick.every(Boolean))).toBe(true);
    // Once the queue is empty a release hands nothing on.
    expect(run.handOffs.slice(CALLERS - SLOTS).every((handOff) => handOff.grants.length === 0)).toBe(true);
  });

  it('gives the waiter the key that was just released (the only one with a free slot)', async () => {
    const run = await contend(samePriority);
    const mismatched = run.handOffs.filter((handOff) =>
      handOff.grants.some((grant) => grant.keyId !== handOff.releasedKeyId),
    );
    expect(mismatched).toEqual([]);
  });

  it('never puts more than maxConcurrent leases on a key, and keeps every slot busy while callers wait', async () => {
    const run = await contend(samePriority);
    expect(run.maxInFlight).toBe(CAP);
    expect([...run.inFlightWhileWaiting]).toEqual([SLOTS]);
  });

  it('resolves every acquire exactly once, each with its own lease', async () => {
    const run = await contend(samePriority);
    expect(run.calls.every((call) => call.state === 'fulfilled' && call.settlements === 1)).toBe(true);
    expect(run.grants).toHaveLength(CALLERS);
    expect(new Set(run.grants.map((grant) => grant.leaseId)).size).toBe(CALLERS);
    expect(new Set(run.calls.map((call) => call.lease?.leaseId)).size).toBe(CALLERS);
    expect(run.pool.snapshot().metrics.acquires).toBe(CALLERS);
    expect(run.clock.pendingTimers).toBe(0);
  });

  it('serves waiters by priority, then in call order, under contention', async () => {
    const random = lcg(9);
    const priorities = range(CALLERS).map(() => Math.floor(random() * 3));
    const run = await contend(priorities);
    // The first six find a free slot whatever their priority; the queue is then served highest
    // priority first, FIFO within a priority.
    const queued = range(CALLERS)
      .slice(SLOTS)
      .sort((a, b) => (priorities[b] ?? 0) - (priorities[a] ?? 0) || a - b);
    expect(grantOrder(run)).toEqual([...range(SLOTS), ...queued]);
    expect(run.handOffs.slice(0, CALLERS - SLOTS).every((handOff) => handOff.grants.length === 1)).toBe(true);
    expect(run.maxInFlight).toBe(CAP);
  });
});

describe('hand-off to the head waiter', () => {
  const strategies: readonly StrategyName[] = ['least-busy', 'round-robin', 'weighted', 'latency'];

  it.each(strategies)(
    '%s: a release gives that exact key to the head waiter when it is the only eligible key',
    async (strategy) => {
      const pool = await KeyPool.create({
        keys: fakeKeys(3),
        strategy,
        maxConcurrentPerKey: 1,
        clock: new VirtualClock(),
        seed: 3,
      });
      const held = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
      const waiters = range(3).map((index) => track(index, 0, pool.acquire()));
      const granted: string[] = [];
      pool.on('acquired', (event) => granted.push(event.keyId));
      // Release in an order no strategy would pick by itself: last, first, middle.
      for (const [step, lease] of [held[2], held[0], held[1]].entries()) {
        if (!lease) throw new Error('missing lease');
        lease.release();
        expect(granted).toHaveLength(step + 1);
        expect(granted[step]).toBe(lease.keyId);
        await Promise.resolve();
        expect(waiters[step]?.lease?.keyId).toBe(lease.keyId);
      }
      await pool.close();
    },
  );
});

describe('a long queue', () => {
  it('stays FIFO past 1 024 hand-offs, with callers aborting and arriving on the way', async () => {
    const pool = await KeyPool.create({
      keys: fakeKeys(1),
      maxConcurrentPerKey: 1,
      acquireTimeoutMs: Number.POSITIVE_INFINITY,
      clock: new VirtualClock(),
      seed: 5,
    });
    const byLeaseId = new Map<number, Tracked>();
    const calls: Tracked[] = [];
    const controllers: AbortController[] = [];
    const arrive = () => {
      const controller = new AbortController();
      const promise = pool.acquire({ signal: controller.signal });
      const call = track(calls.length, 0, promise);
      promise.then(
        (lease) => byLeaseId.set(lease.leaseId, call),
        () => {},
      );
      calls.push(call);
      controllers.push(controller);
    };
    let current: Lease | undefined = await pool.acquire();
    for (let i = 0; i < 3_000; i++) arrive();
    const granted: number[] = [];
    pool.on('acquired', (event) => granted.push(event.leaseId));

    const aborted = new Set<number>();
    for (let handed = 1; current; handed++) {
      const before = granted.length;
      current.release();
      await Promise.resolve();
      const leaseId = granted.length > before ? granted[granted.length - 1] : undefined;
      current = leaseId === undefined ? undefined : byLeaseId.get(leaseId)?.lease;
      if (handed === 1_600) {
        // Well after the queue dropped its served prefix: some waiters give up, others arrive.
        for (let i = handed + 1; i < 3_000; i += 7) {
          controllers[i]?.abort(new Error(`caller ${i} gave up`));
          aborted.add(i);
        }
        for (let n = 0; n < 200; n++) arrive();
      }
    }

    const served = granted.map((leaseId) => byLeaseId.get(leaseId)?.index);
    expect(served).toEqual(range(calls.length).filter((i) => !aborted.has(i)));
    expect([...aborted].every((i) => calls[i]?.error instanceof AcquireAbortedError)).toBe(true);
    expect(pool.snapshot().metrics.waiting).toBe(0);
    await pool.close();
  });
});
