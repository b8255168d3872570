import { describe, expect, it } from 'vitest';
import { InvalidConfigError, KeyPool, type KeyPoolOptions } from '../../src/index.js';

const SECRET = 'sk-test-config-secret-0000000001';

async function fieldOf(options: unknown): Promise<string> {
  const error = await KeyPool.create(options as KeyPoolOptions).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidConfigError);
  expect(String((error as Error).message)).not.toContain(SECRET);
  return (error as InvalidConfigError).field;
}

describe('configuration validation', () => {
  it.each([
    ['no keys', { keys: [] }, 'keys'],
    ['keys not an array', { keys: SECRET }, 'keys'],
    ['an empty key', { keys: [SECRET, ''] }, 'keys[1]'],
    ['a non-string key', { keys: [SECRET, 42] }, 'keys[1]'],
    ['a duplicate key', { keys: [SECRET, SECRET] }, 'keys[1]'],
    ['a config without key', { keys: [{ label: 'x' }] }, 'keys[0].key'],
    ['an unknown key option', { keys: [{ key: SECRET, wieght: 2 }] }, 'keys[0].wieght'],
    ['a negative weight', { keys: [{ key: SECRET, weight: -1 }] }, 'keys[0].weight'],
    ['a fractional cap', { keys: [{ key: SECRET, maxConcurrent: 1.5 }] }, 'keys[0].maxConcurrent'],
    ['a label holding the key', { keys: [{ key: SECRET, label: `prod ${SECRET}` }] }, 'keys[0].label'],
    ['an unknown strategy', { keys: [SECRET], strategy: 'fastest' }, 'strategy'],
    ['a zero cap', { keys: [SECRET], maxConcurrentPerKey: 0 }, 'maxConcurrentPerKey'],
    ['a NaN cooldown', { keys: [SECRET], defaultCooldownMs: Number.NaN }, 'defaultCooldownMs'],
    [
      'an infinite cooldown',
      { keys: [SECRET], defaultCooldownMs: Number.POSITIVE_INFINITY },
      'defaultCooldownMs',
    ],
    ['a negative timeout', { keys: [SECRET], acquireTimeoutMs: -1 }, 'acquireTimeoutMs'],
    ['zero maxFailures', { keys: [SECRET], maxFailures: 0 }, 'maxFailures'],
    ['a fractional maxWaiters', { keys: [SECRET], maxWaiters: 2.5 }, 'maxWaiters'],
    ['alpha above 1', { keys: [SECRET], latencyAlpha: 1.5 }, 'latencyAlpha'],
    ['alpha of 0', { keys: [SECRET], latencyAlpha: 0 }, 'latencyAlpha'],
    [
      'a recovery cap below the first delay',
      { keys: [SECRET], recovery: { initialDelayMs: 10_000, maxDelayMs: 1_000 } },
      'recovery.maxDelayMs',
    ],
    ['a fractional seed', { keys: [SECRET], seed: 0.5 }, 'seed'],
    ['a storage without load', { keys: [SECRET], storage: { save: async () => {} } }, 'storage'],
    ['a clock without now', { keys: [SECRET], clock: { setTimeout() {}, clearTimeout() {} } }, 'clock'],
    ['a misspelt option', { keys: [SECRET], acquireTimeout: 10 }, 'acquireTimeout'],
  ])('names the field for %s', async (_name, options, field) => {
    expect(await fieldOf(options)).toBe(field);
  });

  it('accepts Infinity where unbounded makes sense', async () => {
    const pool = await KeyPool.create({
      keys: [SECRET],
      maxConcurrentPerKey: Number.POSITIVE_INFINITY,
      acquireTimeoutMs: Number.POSITIVE_INFINITY,
      maxWaiters: Number.POSITIVE_INFINITY,
    });
    await pool.close();
  });

  it('validates acquire options', async () => {
    const pool = await KeyPool.create({ keys: [SECRET] });
    await expect(pool.acquire({ timeoutMs: -5 })).rejects.toMatchObject({ field: 'timeoutMs' });
    await expect(pool.acquire({ priority: Number.NaN })).rejects.toMatchObject({ field: 'priority' });
    await pool.close();
  });

  it('refuses a non-memory store in the synchronous constructor', () => {
    expect(
      () =>
        new KeyPool({
          keys: [SECRET],
          storage: { name: 'x', load: async () => new Map(), save: async () => {} },
        }),
    ).toThrow(InvalidConfigError);
  });
});
