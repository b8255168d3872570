import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import {
  type Clock,
  ClockError,
  createKeyMachine,
  createPoolMachine,
  InvalidConfigError,
  KeyPool,
  type PoolEmitted,
  VirtualClock,
} from '../src/index.js';
import type { KeyInput } from '../src/machines/key.types.js';
import { leastBusy } from '../src/pool/strategies/least-busy.js';
import { fakeKeys, keySettings, pools } from './helpers.js';

const make = pools();

/** A virtual clock whose `now()` can be made to misbehave; `limit` bounds how often it does. */
class FaultyClock extends VirtualClock {
  fault: (() => unknown) | undefined;
  faults = 0;
  limit = Number.POSITIVE_INFINITY;
  override now(): number {
    if (this.fault && this.faults < this.limit) {
      this.faults++;
      return this.fault() as number;
    }
    return super.now();
  }
}

const THROWS = () => {
  throw new Error('clock broke');
};

describe('a clock that fails at create', () => {
  it.each([
    ['throws', THROWS],
    ['returns NaN', () => Number.NaN],
    ['returns Infinity', () => Number.POSITIVE_INFINITY],
    ['returns a string', () => '1700000000000'],
    ['returns a BigInt', () => 1n],
  ])('is refused when now() %s, with a typed error naming the clock', async (_name, fault) => {
    const clock = new FaultyClock();
    clock.fault = fault;
    // Bounded, so that code without the check ends instead of spinning forever.
    clock.limit = 500;
    const crashed: unknown[] = [];
    const created = await KeyPool.create({ keys: fakeKeys(2), clock }).then(
      (pool) => {
        pool.on('key-crashed', (event) => crashed.push(event));
        return pool;
      },
      (error: unknown) => error,
    );
    if (created instanceof KeyPool) await created.close();
    expect(created).toBeInstanceOf(InvalidConfigError);
    expect((created as InvalidConfigError).field).toBe('clock');
    expect(crashed).toEqual([]);
  });

  it('is refused when its monotonic() is given and fails', async () => {
    const clock = Object.assign(new VirtualClock(), { monotonic: () => Number.NaN });
    await expect(KeyPool.create({ keys: fakeKeys(1), clock })).rejects.toMatchObject({ field: 'clock' });
  });
});

describe('a clock that fails while the pool runs', () => {
  it.each([
    ['throws', THROWS],
    ['returns NaN', () => Number.NaN],
    ['returns a string', () => 'soon'],
  ])(
    'when now() %s: the last good reading stands in, one clock-error, and the pool keeps serving',
    async (_name, fault) => {
      const clock = new FaultyClock();
      const { pool } = await make(2, { maxConcurrentPerKey: 1 }, clock);
      const errors: ClockError[] = [];
      const crashed: unknown[] = [];
      pool.on('clock-error', ({ error }) => errors.push(error));
      pool.on('key-crashed', (event) => crashed.push(event));
      const cooling = await pool.acquire();
      cooling.rateLimited({ retryAfterMs: 1_000 });

      clock.fault = fault;
      for (let i = 0; i < 3; i++) (await pool.acquire({ timeoutMs: 0 })).release({ latencyMs: 5 });
      clock.advance(5_000);
      await Promise.resolve();
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(ClockError);
      expect(errors[0]?.code).toBe('CLOCK');

      clock.fault = undefined;
      clock.advance(1);
      const both = [await pool.acquire({ timeoutMs: 0 }), await pool.acquire({ timeoutMs: 0 })];
      for (const lease of both) lease.release({ latencyMs: 5 });
      expect(crashed).toEqual([]);
      for (const key of pool.snapshot().keys) {
        expect(Number.isFinite(key.cooldownUntil)).toBe(true);
        expect(Number.isFinite(key.lastUsedAt)).toBe(true);
      }
    },
  );
});

describe('a key actor that crashes on every start', () => {
  it('is replaced at once only a few times, then after a growing delay, and comes back once it can run', () => {
    const clock = new VirtualClock();
    const broken = { on: false, calls: 0 };
    const keyMachine = createKeyMachine({
      now: () => {
        // Bounded, so that code without the backoff ends instead of spinning forever.
        if (broken.on && broken.calls++ < 5_000) throw new Error('clock broke');
        return clock.now();
      },
      random: () => 0.5,
    });
    const { machine, runtime } = createPoolMachine({
      clock,
      keyMachine,
      strategy: leastBusy,
      maxWaiters: Number.POSITIVE_INFINITY,
      seed: 1,
    });
    const keys: KeyInput[] = ['k_aaaaaaaaaaaaaaaa', 'k_bbbbbbbbbbbbbbbb'].map((keyId, order) => ({
      keyId,
      order,
      settings: keySettings(),
    }));
    const pool = createActor(machine, { input: { keys }, clock });
    const crashes: PoolEmitted[] = [];
    pool.on('key.crashed', (event) => crashes.push(event));
    pool.start();
    const victim = runtime.index.get('k_aaaaaaaaaaaaaaaa');
    pool.send({ type: 'pool.acquire', requestId: 1, priority: 0, timeoutMs: 0, wait: false, tokens: 0 });
    expect(victim?.inFlight).toBe(1);
    broken.on = true;
    victim?.ref.send({ type: 'lease.rateLimit', seq: 1, retryAfterMs: 1_000, latencyMs: 5 });
    // The first crash and three immediate replacements; the fifth start waits 1 s.
    expect(crashes).toHaveLength(4);
    expect(runtime.index.get('k_aaaaaaaaaaaaaaaa')).toBeUndefined();
    clock.advance(999);
    expect(crashes).toHaveLength(4);
    clock.advance(1);
    expect(crashes).toHaveLength(5);
    clock.advance(2_000);
    expect(crashes).toHaveLength(6);

    broken.on = false;
    clock.advance(4_000);
    expect(crashes).toHaveLength(6);
    expect(runtime.index.get('k_aaaaaaaaaaaaaaaa')?.state).toBe('available');
    pool.stop();
  });
});

describe('the pool time does not depend on a clock being well behaved in between', () => {
  it('probes a custom clock once at create', async () => {
    let reads = 0;
    const clock: Clock = {
      now: () => {
        reads++;
        return 1_700_000_000_000;
      },
      setTimeout: () => 0,
      clearTimeout: () => {},
    };
    const pool = await KeyPool.create({ keys: fakeKeys(1), clock });
    expect(reads).toBeGreaterThan(0);
    await pool.close();
  });
});
