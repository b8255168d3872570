/**
 * Property-based fuzzing of the public entry points a caller drives: `create` options,
 * `acquire`/`tryAcquire` options, every settle (lease and seed-style), `on`, and a clock that steps
 * and fails. Invariant for every call: a typed `KeyMeshError` or success — never an untyped throw,
 * a hang (time is virtual, so "settles within a few event-loop turns" is the bound), a non-finite
 * number in a snapshot, or a pool that serves wrongly afterwards.
 *
 * Seeded: `KEYMESH_FUZZ_SEED=<n>` replays a run; fast-check prints the seed and path of a failure.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyMeshError, KeyPool, type Lease, NoAvailableKeyError, VirtualClock } from '../../src/index.js';
import { fakeKeys } from '../helpers.js';

const SEED = Number(process.env.KEYMESH_FUZZ_SEED ?? 20_261_203);
const KEYS = fakeKeys(3, 'sk-test-fuzz');
const TPM = 10_000;

/** Numbers and values a hostile or careless caller passes. */
const hostile = fc.oneof(
  fc.constantFrom(
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -0,
    0,
    1,
    -1,
    0.5,
    1e308,
    -1e308,
    2 ** 31,
    2 ** 31 - 1,
    2 ** 53,
    Number.MAX_SAFE_INTEGER,
    Number.MIN_VALUE,
    '',
    '5',
    'NaN',
    KEYS[0],
    null,
    true,
    10n,
    [],
    {},
    [1],
  ),
  fc.double(),
  fc.integer(),
  fc.string({ maxLength: 8 }),
  fc.anything({ maxDepth: 1 }),
);

/** An options object: some known names with hostile or sane values, sometimes a stray name. */
function optionsOf(names: readonly string[], sane: fc.Arbitrary<unknown>) {
  return fc
    .tuple(
      fc.dictionary(fc.constantFrom(...names), fc.oneof(sane, hostile), { maxKeys: names.length }),
      fc.option(fc.tuple(fc.oneof(fc.string({ maxLength: 12 }), fc.constant(KEYS[1] ?? '')), hostile), {
        freq: 4,
      }),
    )
    .map(([known, stray]) => (stray ? { ...known, [stray[0]]: stray[1] } : known));
}

const saneNumber = fc.oneof(fc.integer({ min: 0, max: 5_000 }), fc.constant(undefined));

/** Calls `call`; a throw must be a KeyMeshError. Returns what it returned, or the error. */
async function typedOrSuccess<T>(
  call: () => T | Promise<T>,
  clock?: VirtualClock,
): Promise<{ ok: true; value: T } | { ok: false }> {
  let result: T | Promise<T>;
  try {
    result = call();
  } catch (error) {
    expectTypedAndSecretFree(error);
    return { ok: false };
  }
  if (!(result instanceof Promise)) return { ok: true, value: result };
  const settled = await settlesSoon(result, clock);
  if (settled.ok) return settled;
  expectTypedAndSecretFree(settled.error);
  return { ok: false };
}

/** A KeyMeshError, and no raw key in its message, stack or any property (names or values). */
function expectTypedAndSecretFree(error: unknown): void {
  expect(error).toBeInstanceOf(KeyMeshError);
  const parts = [String((error as Error).message), String((error as Error).stack)];
  for (const name of Object.getOwnPropertyNames(error)) {
    parts.push(name, String((error as unknown as Record<string, unknown>)[name]));
  }
  const text = parts.join('\n');
  for (const key of KEYS) expect(text).not.toContain(key);
}

/**
 * The promise settles within a few event-loop turns, with the virtual clock firing what is due now
 * (time never moves by itself, so a wait for a later instant shows as a hang).
 */
async function settlesSoon<T>(
  promise: Promise<T>,
  clock?: VirtualClock,
): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
  promise.then(
    (value) => {
      outcome = { ok: true, value };
    },
    (error: unknown) => {
      outcome = { ok: false, error };
    },
  );
  for (let turn = 0; turn < 20 && outcome === undefined; turn++) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    clock?.advance(0);
  }
  if (outcome === undefined) throw new Error('hang: the call neither resolved nor rejected');
  return outcome;
}

/** Every number in a snapshot is finite (a key's uncapped `maxConcurrent` is the one Infinity). */
function checkSnapshot(pool: KeyPool, outstanding: ReadonlySet<Lease>): void {
  const snapshot = pool.snapshot();
  const walk = (value: unknown, path: string): void => {
    if (typeof value === 'number') {
      if (!Number.isFinite(value) && !path.endsWith('.maxConcurrent')) {
        throw new Error(`non-finite ${path}: ${value}`);
      }
    } else if (typeof value === 'object' && value !== null) {
      for (const [name, inner] of Object.entries(value)) walk(inner, `${path}.${name}`);
    }
  };
  walk(snapshot, 'snapshot');
  for (const key of snapshot.keys) {
    const mine = [...outstanding].filter((lease) => lease.keyId === key.keyId).length;
    expect(key.inFlight).toBe(mine);
  }
}

/**
 * A normal round still works: once every key is back (advance by `eta()`), a plain acquire gets a
 * lease and a plain release settles it; when `eta()` says no key will return, acquire says so too.
 */
async function servesNormally(
  pool: KeyPool,
  clock: VirtualClock,
  outstanding: Set<Lease>,
  budgeted = true,
): Promise<void> {
  for (const lease of outstanding) lease.release({ latencyMs: 1 });
  outstanding.clear();
  const eta = pool.eta();
  if (Number.isFinite(eta)) clock.advance(eta);
  const got = await settlesSoon(pool.acquire({ timeoutMs: 0 }), clock);
  if (Number.isFinite(eta)) {
    if (!got.ok) throw got.error;
    got.value.release({ latencyMs: 1 });
  } else {
    expect(got.ok).toBe(false);
    if (!got.ok) expect(got.error).toBeInstanceOf(NoAvailableKeyError);
  }
  checkSnapshot(pool, outstanding);
  if (budgeted) budgetsBind(pool, clock);
}

/**
 * Every key has a `tpm` budget of 10 000: after a full minute's refill, a key grants one call of
 * 10 000 tokens and then rests (`budget`) — a hostile call earlier must not have switched it off.
 */
function budgetsBind(pool: KeyPool, clock: VirtualClock): void {
  clock.advance(60_000);
  const granted = new Map<string, number>();
  for (let i = 0; i < 10; i++) {
    const lease = pool.tryAcquire({ tokens: TPM });
    if (!lease) break;
    granted.set(lease.keyId, (granted.get(lease.keyId) ?? 0) + 1);
    lease.release({ latencyMs: 1, usage: { totalTokens: TPM } });
  }
  for (const [keyId, count] of granted) {
    expect(count, `key ${keyId} granted ${count} full-budget calls in one instant`).toBe(1);
  }
}

async function fuzzPool(clock = new VirtualClock()) {
  const pool = await KeyPool.create({
    keys: [
      { key: KEYS[0] ?? '', tpm: TPM },
      { key: KEYS[1] ?? '', tpm: TPM, rpm: 600 },
      { key: KEYS[2] ?? '', tpm: TPM, maxConcurrent: 2 },
    ],
    clock,
    seed: 7,
    maxFailures: 3,
    recovery: { initialDelayMs: 1_000, maxDelayMs: 8_000 },
  });
  return { pool, clock };
}

describe('fuzz: public entry points answer with a typed error or success, and the pool serves on', () => {
  it('KeyPool.create options', async () => {
    let runs = 0;
    const keysArb = fc.oneof(
      fc.constant(KEYS),
      fc.array(fc.oneof(fc.constantFrom(...KEYS), hostile), { maxLength: 4 }),
      fc.integer({ min: 1, max: 3 }).map((n) => new Array<string>(n)),
      fc.array(
        optionsOf(['key', 'label', 'weight', 'maxConcurrent', 'rpm', 'tpm', 'rpd', 'group'], saneNumber).map(
          (config) => ({ key: KEYS[0], ...config }),
        ),
        { maxLength: 3 },
      ),
      hostile,
    );
    const names = [
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
      'flushIntervalMs',
      'outage',
    ];
    const nested = fc.oneof(
      optionsOf(['initialDelayMs', 'maxDelayMs', 'windowMs', 'initialBackoffMs', 'maxBackoffMs'], saneNumber),
      fc.constantFrom('round-robin', 'least-busy', 'weighted', 'latency'),
    );
    await fc.assert(
      fc.asyncProperty(keysArb, optionsOf(names, nested), async (keys, options) => {
        runs++;
        const clock = new VirtualClock();
        const created = await typedOrSuccess(() => KeyPool.create({ ...options, keys, clock } as never));
        if (!created.ok) return;
        // A pool made is a pool of keys: one of none (a list of holes) should have been refused.
        expect(created.value.snapshot().keys.length).toBeGreaterThan(0);
        const outstanding = new Set<Lease>();
        try {
          await servesNormally(created.value, clock, outstanding, false);
        } finally {
          await created.value.close();
        }
      }),
      { seed: SEED, numRuns: 300 },
    );
    expect(runs).toBeGreaterThanOrEqual(300);
  });

  it('acquire() and tryAcquire() options', async () => {
    let runs = 0;
    const acquireOptions = fc.oneof(
      optionsOf(['tokens', 'priority', 'timeoutMs', 'signal'], saneNumber),
      hostile,
      fc.constant(undefined),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.boolean(), acquireOptions), { minLength: 1, maxLength: 6 }),
        async (calls) => {
          runs++;
          const { pool, clock } = await fuzzPool();
          const outstanding = new Set<Lease>();
          try {
            for (const [sync, options] of calls) {
              const got = await typedOrSuccess(() =>
                sync ? pool.tryAcquire(options as never) : pool.acquire(options as never),
              );
              if (got.ok && got.value) outstanding.add(got.value);
              checkSnapshot(pool, outstanding);
            }
            await servesNormally(pool, clock, outstanding);
          } finally {
            await pool.close();
          }
        },
      ),
      { seed: SEED, numRuns: 100 },
    );
    expect(runs).toBeGreaterThanOrEqual(100);
  });

  it('every settle: release, fail, rateLimited and the seed-style names', async () => {
    let runs = 0;
    const settleOptions = fc.oneof(
      optionsOf(['latencyMs', 'usage', 'headers'], fc.oneof(saneNumber, fc.constant({ totalTokens: 5 }))),
      optionsOf(
        ['kind', 'retryAfterMs', 'scope'],
        fc.constantFrom('provider', 'quota', 'revoked', 'group', 100),
      ),
      optionsOf(
        ['retryAfterMs', 'cooldownMs', 'headers', 'scope'],
        fc.oneof(saneNumber, fc.constant({ 'retry-after': '2' })),
      ),
      optionsOf(['inputTokens', 'outputTokens', 'totalTokens'], saneNumber).map((usage) => ({ usage })),
      hostile,
      fc.constant(undefined),
    );
    const how = fc.constantFrom(
      'release',
      'fail',
      'rateLimited',
      'pool.release',
      'pool.markFailed',
      'pool.markRateLimited',
    );
    const target = fc.constantFrom('lease', 'raw key', 'hostile');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(how, target, settleOptions, hostile), { minLength: 1, maxLength: 8 }),
        async (settles) => {
          runs++;
          const { pool, clock } = await fuzzPool();
          const outstanding = new Set<Lease>();
          try {
            for (const [method, to, options, junk] of settles) {
              const acquired = await settlesSoon(pool.acquire({ timeoutMs: 0 }), clock);
              if (!acquired.ok) {
                expect(acquired.error).toBeInstanceOf(KeyMeshError);
                clock.advance(Math.min(pool.eta(), 60_000));
                continue;
              }
              const lease = acquired.value;
              outstanding.add(lease);
              const ref = to === 'lease' ? lease : to === 'raw key' ? lease.key : junk;
              const settled = await typedOrSuccess(() => {
                switch (method) {
                  case 'release':
                    return lease.release(options as never);
                  case 'fail':
                    return lease.fail(junk, options as never);
                  case 'rateLimited':
                    return lease.rateLimited(options as never);
                  case 'pool.release':
                    return pool.release(ref as never, options as never);
                  case 'pool.markFailed':
                    return pool.markFailed(ref as never, junk, options as never);
                  default:
                    return pool.markRateLimited(ref as never, options as never);
                }
              });
              // A raw key settles that key's oldest lease, which may be an earlier one.
              for (const out of outstanding) if (out.settled) outstanding.delete(out);
              if (settled.ok) expect(typeof settled.value).toBe('string');
              checkSnapshot(pool, outstanding);
              clock.advance(1);
            }
            await servesNormally(pool, clock, outstanding);
          } finally {
            await pool.close();
          }
        },
      ),
      { seed: SEED, numRuns: 100 },
    );
    expect(runs).toBeGreaterThanOrEqual(100);
  });

  it('on()', async () => {
    let runs = 0;
    const eventName = fc.oneof(
      fc.constantFrom('acquired', 'released', 'cooling', 'timeout', 'clock-error', 'aquired', 'Acquired', ''),
      hostile,
    );
    const listener = fc.oneof(
      fc.constant(() => {}),
      hostile,
    );
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(eventName, listener), { maxLength: 5 }), async (subscriptions) => {
        runs++;
        const { pool, clock } = await fuzzPool();
        try {
          for (const [name, fn] of subscriptions) {
            const got = await typedOrSuccess(() => pool.on(name as never, fn as never));
            if (got.ok) expect(typeof got.value).toBe('function');
          }
          const lease = await pool.acquire();
          lease.rateLimited({ retryAfterMs: 10 });
          await servesNormally(pool, clock, new Set());
        } finally {
          await pool.close();
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
    expect(runs).toBeGreaterThanOrEqual(60);
  });
});

/** A virtual clock whose wall clock can step and whose readings can fail. */
class HostileClock extends VirtualClock {
  offset = 0;
  fault: unknown;
  override now(): number {
    if (this.fault === 'throw') throw new Error('clock broke');
    if (this.fault !== undefined) return this.fault as number;
    return super.now() + this.offset;
  }
  monotonic(): number {
    return super.now();
  }
}

describe('fuzz: a clock that steps and fails mid-run', () => {
  it('never makes a call throw untyped, a wait negative, a snapshot non-finite, or the pool stop serving', async () => {
    let runs = 0;
    const step = fc.oneof(
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 120_000 }) }),
      fc.record({ kind: fc.constant('step' as const), ms: fc.integer({ min: -7_200_000, max: 7_200_000 }) }),
      fc.record({
        kind: fc.constant('fault' as const),
        value: fc.constantFrom('throw', Number.NaN, Number.POSITIVE_INFINITY, 'soon', undefined),
      }),
      fc.record({
        kind: fc.constant('use' as const),
        outcome: fc.constantFrom('release', 'rateLimited', 'fail'),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
        runs++;
        const clock = new HostileClock();
        const { pool } = await fuzzPool(clock);
        const waits: number[] = [];
        pool.on('acquired', (event) => waits.push(event.waitedMs));
        pool.on('released', (event) => waits.push(event.latencyMs));
        pool.on('timeout', (event) => waits.push(event.waitedMs));
        const outstanding = new Set<Lease>();
        try {
          for (const s of steps) {
            if (s.kind === 'advance') clock.advance(s.ms);
            else if (s.kind === 'step') clock.offset += s.ms;
            else if (s.kind === 'fault') clock.fault = s.value;
            else {
              const got = await typedOrSuccess(() => pool.acquire({ timeoutMs: 1_000 }), clock);
              clock.advance(1_000);
              await Promise.resolve();
              if (!got.ok) continue;
              const lease = got.value;
              if (s.outcome === 'release') lease.release();
              else if (s.outcome === 'rateLimited') lease.rateLimited({ retryAfterMs: 30_000 });
              else lease.fail(new Error('x'));
            }
            checkSnapshot(pool, outstanding);
          }
          clock.fault = undefined;
          await servesNormally(pool, clock, outstanding);
          for (const ms of waits) expect(ms).toBeGreaterThanOrEqual(0);
        } finally {
          clock.fault = undefined;
          await pool.close();
        }
      }),
      { seed: SEED, numRuns: 80 },
    );
    expect(runs).toBeGreaterThanOrEqual(80);
  });
});
