import { describe, expect, it } from 'vitest';
import {
  InvalidConfigError,
  KeyMeshError,
  KeyPool,
  type KeyPoolOptions,
  keymeshFetch,
  LeaseSettledError,
  StorageError,
  VirtualClock,
} from '../../src/index.js';
import { fakeKeys, pools } from '../helpers.js';

const make = pools();
const CANARY = 'sk-test-canary-secret-0123456789abcdef';

/** What a call threw (synchronously or by rejecting). */
async function thrown(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw');
}

/** Every string an error carries: message, field and every own property, stringified. */
function everything(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const parts = [String((error as Error).message), String((error as Error).stack)];
  for (const name of Object.getOwnPropertyNames(error)) {
    parts.push(name, String((error as Record<string, unknown>)[name]));
  }
  return parts.join('\n');
}

/** After a rejected call, the pool still leases and settles normally, and a tpm budget still binds. */
async function servesNormally(pool: KeyPool): Promise<void> {
  const lease = await pool.acquire({ timeoutMs: 0 });
  lease.release({ latencyMs: 5 });
  expect(pool.snapshot().keys.every((key) => key.inFlight === 0)).toBe(true);
}

describe('acquire() and tryAcquire() options: one validation', () => {
  const bad: ReadonlyArray<[string, Record<string, unknown>, string]> = [
    ['tokens NaN', { tokens: Number.NaN }, 'tokens'],
    ['tokens Infinity', { tokens: Number.POSITIVE_INFINITY }, 'tokens'],
    ['tokens 1e308', { tokens: 1e308 }, 'tokens'],
    ['tokens as a string', { tokens: '5' }, 'tokens'],
    ['tokens as an object', { tokens: { n: 5 } }, 'tokens'],
    ['tokens as a BigInt', { tokens: 5n }, 'tokens'],
    ['negative tokens', { tokens: -1 }, 'tokens'],
    ['priority NaN', { priority: Number.NaN }, 'priority'],
    ['priority Infinity', { priority: Number.NEGATIVE_INFINITY }, 'priority'],
    ['priority as a string', { priority: '1' }, 'priority'],
    ['priority as a BigInt', { priority: 1n }, 'priority'],
  ];
  it.each(bad)(
    'tryAcquire rejects %s with a typed error naming the option',
    async (_name, options, field) => {
      const { pool } = await make(1, { keys: [{ key: fakeKeys(1)[0] ?? '', tpm: 1_000 }] });
      const error = await thrown(() => pool.tryAcquire(options));
      expect(error).toBeInstanceOf(InvalidConfigError);
      expect((error as InvalidConfigError).field).toBe(field);
      await servesNormally(pool);
    },
  );

  it.each(bad)('acquire rejects %s the same way', async (_name, options, field) => {
    const { pool } = await make(1);
    const error = await thrown(() => pool.acquire(options));
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as InvalidConfigError).field).toBe(field);
    await servesNormally(pool);
  });

  it('keeps a tpm budget binding after a rejected tryAcquire({ tokens: NaN })', async () => {
    const { pool } = await make(1, { keys: [{ key: fakeKeys(1)[0] ?? '', tpm: 1_000 }] });
    expect(() => pool.tryAcquire({ tokens: Number.NaN })).toThrow(InvalidConfigError);
    let granted = 0;
    for (let i = 0; i < 20; i++) {
      const lease = pool.tryAcquire({ tokens: 1_000 });
      if (lease) {
        granted++;
        lease.release({ usage: { totalTokens: 1_000 } });
      }
    }
    expect(granted).toBe(1);
  });

  it('rejects unknown option names, saying which are accepted', async () => {
    const { pool } = await make(1);
    const error = await thrown(() => pool.acquire({ timeout: 5 } as never));
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as Error).message).toMatch(/timeoutMs/);
    expect((error as Error).message).toMatch(/accepted: tokens, priority, timeoutMs, signal/);
    const sync = await thrown(() => pool.tryAcquire({ timeoutMs: 5 } as never));
    expect(sync).toBeInstanceOf(InvalidConfigError);
    expect((sync as Error).message).toMatch(/accepted: tokens, priority/);
    await servesNormally(pool);
  });

  it('bounds timeoutMs to what a timer can hold', async () => {
    const { pool } = await make(1);
    const error = await thrown(() => pool.acquire({ timeoutMs: 2 ** 31 }));
    expect(error).toMatchObject({ field: 'timeoutMs' });
    expect((error as Error).message).toContain('2147483647');
    await servesNormally(pool);
  });
});

describe('signal', () => {
  it.each([
    ['an AbortController', () => new AbortController()],
    ['a plain object', () => ({ aborted: false })],
    ['a string', () => 'abort'],
    ['a number', () => 1],
  ])('rejects %s with a typed error at the call, and the pool is unharmed', async (_name, signal) => {
    const { pool, clock } = await make(1, { maxConcurrentPerKey: 1 });
    const held = await pool.acquire();
    const error = await thrown(() => pool.acquire({ signal: signal() } as never));
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as InvalidConfigError).field).toBe('signal');
    // No waiter was left queued: the release goes back to the key, nobody gets it.
    expect(pool.snapshot().metrics.waiting).toBe(0);
    held.release();
    expect(pool.snapshot().keys[0]?.inFlight).toBe(0);
    const later = pool.acquire({ timeoutMs: 500 });
    clock.advance(1);
    (await later).release();
    await servesNormally(pool);
  });
});

describe('on()', () => {
  it('rejects a listener that is not a function', async () => {
    const { pool } = await make(1);
    expect(() => pool.on('acquired', undefined as never)).toThrow(InvalidConfigError);
    // Nothing was registered: the next event reaches no broken listener.
    await servesNormally(pool);
  });

  it('rejects an unknown event name', async () => {
    const { pool } = await make(1);
    const error = await thrown(() => pool.on('aquired' as never, () => {}));
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as Error).message).toMatch(/did you mean `acquired`/);
    expect(await thrown(() => pool.on(CANARY as never, () => {}))).toBeInstanceOf(InvalidConfigError);
  });
});

describe('configuration errors never echo a name that could be a secret', () => {
  it.each([
    ['a key config field', { keys: [{ [CANARY]: {} }] }],
    ['a top-level option', { keys: fakeKeys(1), [CANARY]: 1 }],
    ['a recovery field', { keys: fakeKeys(1), recovery: { [CANARY]: 1 } }],
    ['an outage field', { keys: fakeKeys(1), outage: { [CANARY]: 1 } }],
  ])('names %s by position', async (_name, options) => {
    const error = await thrown(() =>
      KeyPool.create({ clock: new VirtualClock(), ...options } as KeyPoolOptions),
    );
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(everything(error)).not.toContain(CANARY);
    expect(everything(error)).not.toContain(CANARY.slice(-12));
    expect((error as Error).message).toMatch(/(1st|3rd) one given; its name is not shown/);
  });

  it('also for acquire(), settle and on() options', async () => {
    const { pool } = await make(1);
    const lease = await pool.acquire();
    for (const call of [
      () => pool.acquire({ [CANARY]: 1 } as never),
      () => pool.tryAcquire({ [CANARY]: 1 } as never),
      () => lease.release({ [CANARY]: 1 } as never),
      () => lease.fail(new Error('x'), { [CANARY]: 1 } as never),
      () => lease.rateLimited({ [CANARY]: 1 } as never),
      () => pool.on(CANARY as never, () => {}),
    ]) {
      const error = await thrown(call);
      expect(error).toBeInstanceOf(InvalidConfigError);
      expect(everything(error)).not.toContain(CANARY);
    }
    lease.release();
  });
});

describe('durations are bounded to what a timer can hold', () => {
  it.each([
    ['flushIntervalMs', { flushIntervalMs: 2 ** 31 }],
    ['defaultCooldownMs', { defaultCooldownMs: 2 ** 31 }],
    ['acquireTimeoutMs', { acquireTimeoutMs: 2 ** 31 }],
    ['latencyPenaltyMs', { latencyPenaltyMs: 1e12 }],
    ['recovery.initialDelayMs', { recovery: { initialDelayMs: 2 ** 31, maxDelayMs: 2 ** 32 } }],
    ['recovery.maxDelayMs', { recovery: { maxDelayMs: 2 ** 32 } }],
    ['outage.windowMs', { outage: { windowMs: 2 ** 31 } }],
    ['outage.maxBackoffMs', { outage: { maxBackoffMs: 2 ** 31 } }],
  ])('%s', async (field, options) => {
    const error = await thrown(() => KeyPool.create({ keys: fakeKeys(1), ...options } as KeyPoolOptions));
    expect(error).toBeInstanceOf(InvalidConfigError);
    expect((error as InvalidConfigError).field).toBe(field);
    expect((error as Error).message).toContain(String(2 ** 31 - 1));
  });

  it('still takes Infinity for acquireTimeoutMs, and the bound itself', async () => {
    await (await KeyPool.create({ keys: fakeKeys(1), acquireTimeoutMs: Number.POSITIVE_INFINITY })).close();
    await (await KeyPool.create({ keys: fakeKeys(1), flushIntervalMs: 2 ** 31 - 1 })).close();
  });
});

describe('validation gaps', () => {
  it('refuses a key list with holes', async () => {
    const error = await thrown(() => KeyPool.create({ keys: new Array(3) }));
    expect(error).toMatchObject({ field: 'keys[0]' });
  });

  it.each([
    ['recovery', { recovery: { initialDelay: 5 } }, 'recovery.initialDelay'],
    ['outage', { outage: { windowMS: 5 } }, 'outage.windowMS'],
  ])('refuses a typo inside %s', async (_name, options, field) => {
    const error = await thrown(() => KeyPool.create({ keys: fakeKeys(1), ...options } as KeyPoolOptions));
    expect(error).toMatchObject({ field });
  });

  it('refuses latencyMs beyond a timer (1e308), NaN or negative, and the lease stays out to settle again', async () => {
    const { pool } = await make(1);
    const lease = await pool.acquire();
    for (const latencyMs of [1e308, Number.NaN, -1, Number.POSITIVE_INFINITY]) {
      expect(() => lease.release({ latencyMs })).toThrow(InvalidConfigError);
    }
    expect(lease.settled).toBe(false);
    lease.release({ latencyMs: 5 });
    expect(pool.snapshot().keys[0]?.latencyEwma).toBe(5);
  });

  it('takes an infinite or NaN provider wait as no hint (counted), and refuses a non-number', async () => {
    const { pool, clock } = await make(3);
    const leases = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    expect(() => leases[0]?.rateLimited({ retryAfterMs: '5' as never })).toThrow(InvalidConfigError);
    leases[0]?.rateLimited({ retryAfterMs: Number.POSITIVE_INFINITY });
    leases[1]?.fail(new Error('quota'), { kind: 'quota', retryAfterMs: 1e308 });
    leases[2]?.rateLimited({ retryAfterMs: Number.NaN });
    const { keys, metrics } = pool.snapshot();
    const [infinite, quota, escalated] = keys;
    // Beyond maxRetryAfterMs: the no-hint escalation's first step, as NaN gets.
    expect((infinite?.cooldownUntil ?? 0) - clock.now()).toBe(1_000);
    expect(metrics.ignoredHints).toBe(3);
    expect(quota?.state).toBe('exhausted');
    expect(Number.isFinite(quota?.cooldownUntil)).toBe(true);
    expect((escalated?.cooldownUntil ?? 0) - clock.now()).toBe(1_000);
  });

  it('withKey(undefined) is a typed error before any key is leased', async () => {
    const { pool } = await make(1, { maxFailures: 3 });
    for (let i = 0; i < 5; i++) {
      const error = await thrown(() => pool.withKey(undefined as never));
      expect(error).toBeInstanceOf(InvalidConfigError);
    }
    const [key] = pool.snapshot().keys;
    expect(key?.state).toBe('available');
    expect(key?.consecutiveFailures).toBe(0);
    expect(pool.snapshot().metrics.acquires).toBe(0);
  });

  it('a custom store whose load() is not a Map is a StorageError', async () => {
    for (const loaded of [null, [], {}, 'records', 42]) {
      const storage = { name: 'custom', load: async () => loaded as never, save: async () => {} };
      const error = await thrown(() => KeyPool.create({ keys: fakeKeys(1), storage }));
      expect(error).toBeInstanceOf(StorageError);
    }
  });

  it('keymeshFetch(null) fails at creation', async () => {
    for (const pool of [null, undefined, {}, 'pool']) {
      expect(() => keymeshFetch(pool as never)).toThrow(InvalidConfigError);
    }
    const { pool } = await make(1);
    expect(() => keymeshFetch(pool, { retry: 2 } as never)).toThrow(InvalidConfigError);
    expect(() => keymeshFetch(pool, { acquire: { tokens: Number.NaN } })).toThrow(InvalidConfigError);
  });

  it('settling a lease after close() is a no-op: settled once, nothing emitted, nothing stored', async () => {
    const { pool } = await make(1);
    const leases = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    const before = pool.snapshot().keys[0];
    const events: string[] = [];
    for (const name of ['released', 'failed', 'rate-limited', 'cooling', 'exhausted'] as const) {
      pool.on(name, () => events.push(name));
    }
    await pool.close();
    const writes = pool.storageWrites.records;
    expect(leases[0]?.release()).toBe(before?.state);
    expect(leases[1]?.fail(new Error('x'), { kind: 'revoked' })).toBe(before?.state);
    expect(leases[2]?.rateLimited({ retryAfterMs: 60_000 })).toBe(before?.state);
    expect(leases.every((lease) => lease.settled)).toBe(true);
    expect(() => leases[0]?.release()).toThrow(LeaseSettledError);
    expect(() => pool.release(leases[1] as never)).toThrow(LeaseSettledError);
    expect(events).toEqual([]);
    expect(pool.snapshot().keys[0]).toEqual(before);
    expect(pool.storageWrites.records).toBe(writes);
  });

  it('every error here is a KeyMeshError with a code', async () => {
    const error = await thrown(() => KeyPool.create({ keys: new Array(1) }));
    expect(error).toBeInstanceOf(KeyMeshError);
    expect((error as KeyMeshError).code).toBe('INVALID_CONFIG');
  });
});
