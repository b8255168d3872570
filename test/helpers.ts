import { afterEach } from 'vitest';
import { KeyPool, type KeyPoolOptions, type KeySettings, VirtualClock } from '../src/index.js';

/** Obviously fake keys, long enough (16+) to have a mask. */
export const fakeKeys = (n: number, prefix = 'sk-test-fake'): string[] =>
  Array.from({ length: n }, (_, i) => `${prefix}-${String(i + 1).padStart(16, '0')}`);

/** Key settings for driving a key machine directly: the pool's defaults, with `overrides`. */
export function keySettings(overrides: Partial<KeySettings> = {}): KeySettings {
  return {
    label: null,
    mask: '****',
    maxConcurrent: null,
    weight: 1,
    maxFailures: 3,
    defaultCooldownMs: 60_000,
    recoveryInitialDelayMs: 1_000,
    recoveryMaxDelayMs: 8_000,
    latencyAlpha: 0.2,
    budget: null,
    group: null,
    ...overrides,
  };
}

/** A plain success of lease `seq` as the key actor receives it (5 ms, no headers, no tokens). */
export const releaseEvent = (seq: number) =>
  ({
    type: 'lease.release',
    seq,
    latencyMs: 5,
    tokenDelta: 0,
    restMs: undefined,
    allowance: undefined,
  }) as const;

export interface TestPool {
  readonly pool: KeyPool;
  readonly clock: VirtualClock;
  readonly keys: string[];
}

/** A pool on a virtual clock with `n` fake keys (seeded, so runs repeat exactly). */
export async function createTestPool(
  n: number,
  options: Partial<KeyPoolOptions> = {},
  clock = new VirtualClock(),
): Promise<TestPool> {
  const keys = fakeKeys(n);
  const pool = await KeyPool.create({ keys, clock, seed: 42, ...options });
  return { pool, clock, keys };
}

/**
 * A `createTestPool` that also closes every pool it made after each test (register it at the top
 * of a file: `const make = pools();`). `track(pool)` adds a pool made some other way.
 */
export function pools(): ((...args: Parameters<typeof createTestPool>) => Promise<TestPool>) & {
  track(pool: KeyPool): KeyPool;
} {
  const open: KeyPool[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((pool) => pool.close()));
  });
  const make = async (...args: Parameters<typeof createTestPool>) => {
    const made = await createTestPool(...args);
    open.push(made.pool);
    return made;
  };
  return Object.assign(make, {
    track(pool: KeyPool) {
      open.push(pool);
      return pool;
    },
  });
}

/** Lets queued promise callbacks run (grants resolve promises; continuations need a microtask turn). */
export async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

/** Tracks a promise's settlement without awaiting it. */
export function track<T>(promise: Promise<T>): {
  readonly promise: Promise<T>;
  state: 'pending' | 'fulfilled' | 'rejected';
  value: T | undefined;
  error: unknown;
} {
  const tracked = {
    promise,
    state: 'pending' as 'pending' | 'fulfilled' | 'rejected',
    value: undefined as T | undefined,
    error: undefined as unknown,
  };
  promise.then(
    (value) => {
      tracked.state = 'fulfilled';
      tracked.value = value;
    },
    (error: unknown) => {
      tracked.state = 'rejected';
      tracked.error = error;
    },
  );
  return tracked;
}
