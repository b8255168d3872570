import { afterEach, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { KeyPool } from '../../src/pool/KeyPool.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import {
  type AdapterFactory,
  ALL_FACTORIES,
  ID_A,
  ID_B,
  ID_C,
  KEY_A,
  KEY_B,
  makeRecord,
  makeTempDir,
  removeTempDirs,
  type Store,
  TrackedAdapter,
} from './support.js';

const TEN_MINUTES = 600_000;

afterEach(removeTempDirs);

function keyOf(pool: KeyPool, keyId: string) {
  const key = pool.snapshot().keys.find((candidate) => candidate.keyId === keyId);
  if (!key) throw new Error(`key ${keyId} is not in the pool`);
  return key;
}

describe.each(ALL_FACTORIES)('$name storage contract', (factory: AdapterFactory) => {
  async function newStore(): Promise<Store> {
    return factory.create(await makeTempDir());
  }

  describe('records', () => {
    it('loads nothing from an empty store', async () => {
      const adapter = (await newStore()).open();
      expect((await adapter.load([ID_A, ID_B])).size).toBe(0);
      await adapter.close?.();
    });

    it('loads what it saved, field for field', async () => {
      const adapter = (await newStore()).open();
      const record = makeRecord(ID_A, {
        label: 'primary',
        state: 'cooling',
        reason: 'rate-limited',
        cooldownUntil: 1_700_000_600_000,
        successes: 12,
        failures: 3,
        rateLimits: 1,
        latencyEwma: 123.456,
        lastUsedAt: 1_700_000_000_123,
        lastPenaltyAt: 1_700_000_000_456,
      });
      await adapter.save([record]);
      expect((await adapter.load([ID_A])).get(ID_A)).toEqual(record);
      await adapter.close?.();
    });

    it("keeps one record per key: a later save replaces the key's record", async () => {
      const adapter = (await newStore()).open();
      await adapter.save([makeRecord(ID_A, { successes: 1 }), makeRecord(ID_B, { successes: 1 })]);
      await adapter.save([makeRecord(ID_A, { successes: 2 })]);
      const loaded = await adapter.load([ID_A, ID_B]);
      expect(loaded.get(ID_A)?.successes).toBe(2);
      expect(loaded.get(ID_B)?.successes).toBe(1);
      await adapter.close?.();
    });

    it('loads only the keys asked for', async () => {
      const adapter = (await newStore()).open();
      await adapter.save([makeRecord(ID_A), makeRecord(ID_B), makeRecord(ID_C)]);
      expect([...(await adapter.load([ID_B])).keys()]).toEqual([ID_B]);
      await adapter.close?.();
    });

    it('treats an empty save as nothing to do', async () => {
      const adapter = (await newStore()).open();
      await adapter.save([]);
      expect((await adapter.load([ID_A])).size).toBe(0);
      await adapter.close?.();
    });

    it('keeps records across close and reopen', async () => {
      const store = await newStore();
      const first = store.open();
      await first.save([makeRecord(ID_A, { successes: 7 })]);
      await first.close?.();
      const second = store.open();
      expect((await second.load([ID_A])).get(ID_A)?.successes).toBe(7);
      await second.close?.();
    });

    it('can be used again after close', async () => {
      const adapter = (await newStore()).open();
      await adapter.save([makeRecord(ID_A, { successes: 1 })]);
      await adapter.close?.();
      await adapter.save([makeRecord(ID_B, { successes: 2 })]);
      const loaded = await adapter.load([ID_A, ID_B]);
      expect(loaded.get(ID_A)?.successes).toBe(1);
      expect(loaded.get(ID_B)?.successes).toBe(2);
      await adapter.close?.();
    });

    it('keeps every record when saves race in one process, the last save of a key winning', async () => {
      const adapter = (await newStore()).open();
      const saves: Promise<void>[] = [];
      for (let n = 1; n <= 30; n++) {
        saves.push(
          adapter.save([
            makeRecord(`k_${n.toString(16).padStart(16, '0')}`),
            makeRecord(ID_A, { successes: n }),
          ]),
        );
      }
      await Promise.all(saves);
      const ids = Array.from({ length: 30 }, (_, i) => `k_${(i + 1).toString(16).padStart(16, '0')}`);
      expect((await adapter.load(ids)).size).toBe(30);
      expect((await adapter.load([ID_A])).get(ID_A)?.successes).toBe(30);
      await adapter.close?.();
    });

    it('leaves records of keys another writer does not know in place', async () => {
      const store = await newStore();
      const first = store.open();
      await first.save([makeRecord(ID_A), makeRecord(ID_B, { state: 'cooling', reason: 'rate-limited' })]);
      await first.close?.();
      const second = store.open();
      await second.save([makeRecord(ID_A, { successes: 5 })]);
      await second.close?.();
      const third = store.open();
      expect((await third.load([ID_B])).get(ID_B)?.state).toBe('cooling');
      await third.close?.();
    });

    it('returns copies: changing a loaded record changes nothing stored', async () => {
      const adapter = (await newStore()).open();
      await adapter.save([makeRecord(ID_A, { successes: 1 })]);
      const loaded = (await adapter.load([ID_A])).get(ID_A);
      if (loaded) (loaded as { successes: number }).successes = 99;
      expect((await adapter.load([ID_A])).get(ID_A)?.successes).toBe(1);
      await adapter.close?.();
    });
  });

  describe('restoring a pool', () => {
    it('keeps a key rate-limited for 10 minutes cooling across a restart, available exactly at its deadline', async () => {
      const store = await newStore();
      const clock = new VirtualClock();
      const first = await KeyPool.create({ keys: [KEY_A, KEY_B], storage: store.open(), clock, seed: 1 });
      const lease = await first.acquire();
      lease.rateLimited({ retryAfterMs: TEN_MINUTES });
      const deadline = clock.now() + TEN_MINUTES;
      await first.close();

      clock.advance(30_000); // the deploy
      const second = await KeyPool.create({ keys: [KEY_A, KEY_B], storage: store.open(), clock, seed: 2 });
      expect(keyOf(second, lease.keyId)).toMatchObject({
        state: 'cooling',
        reason: 'rate-limited',
        cooldownUntil: deadline,
      });
      clock.advanceTo(deadline - 1);
      expect(keyOf(second, lease.keyId).state).toBe('cooling');
      clock.advanceTo(deadline);
      expect(keyOf(second, lease.keyId).state).toBe('available');
      await second.close();
    });

    it('keeps an exhausted key on its recovery schedule across a restart', async () => {
      const store = await newStore();
      const clock = new VirtualClock();
      const options = { keys: [KEY_A], clock, maxFailures: 2, recovery: { initialDelayMs: 30_000 } };
      const first = await KeyPool.create({ ...options, storage: store.open(), seed: 3 });
      (await first.acquire()).fail(new Error('500'));
      (await first.acquire()).fail(new Error('500'));
      const { state, recoveryAt } = keyOf(first, ID_A);
      expect(state).toBe('exhausted');
      expect(recoveryAt).toBeGreaterThan(clock.now());
      await first.close();

      clock.advance(1_000);
      const second = await KeyPool.create({ ...options, storage: store.open(), seed: 4 });
      expect(keyOf(second, ID_A)).toMatchObject({ state: 'exhausted', reason: 'failures', recoveryAt });
      clock.advanceTo(recoveryAt - 1);
      expect(second.tryAcquire()).toBeUndefined();
      clock.advanceTo(recoveryAt);
      const probe = second.tryAcquire();
      expect(probe?.probe).toBe(true);
      probe?.release();
      expect(keyOf(second, ID_A).state).toBe('available');
      await second.close();
    });

    it('continues counters and latency, and restarts in-flight at 0', async () => {
      const store = await newStore();
      const clock = new VirtualClock();
      const first = await KeyPool.create({ keys: [KEY_A], storage: store.open(), clock, seed: 5 });
      for (const latencyMs of [100, 200, 300]) (await first.acquire()).release({ latencyMs });
      (await first.acquire()).fail(new Error('500'));
      await first.acquire(); // left out when the process stops
      const before = keyOf(first, ID_A);
      expect(before.inFlight).toBe(1);
      await first.close();

      const second = await KeyPool.create({ keys: [KEY_A], storage: store.open(), clock, seed: 6 });
      expect(keyOf(second, ID_A)).toMatchObject({
        state: 'available',
        inFlight: 0,
        successes: 3,
        failures: 1,
        consecutiveFailures: 1,
        latencyEwma: before.latencyEwma,
        lastUsedAt: before.lastUsedAt,
      });
      (await second.acquire()).release({ latencyMs: 100 });
      expect(keyOf(second, ID_A).successes).toBe(4);
      await second.close();
    });

    it('ignores stored keys that are no longer configured and leaves them in storage', async () => {
      const store = await newStore();
      const clock = new VirtualClock();
      const first = await KeyPool.create({ keys: [KEY_A, KEY_B], storage: store.open(), clock, seed: 7 });
      const leaseA = await first.acquire();
      const leaseB = await first.acquire();
      const onB = leaseA.keyId === ID_B ? leaseA : leaseB;
      const onA = onB === leaseA ? leaseB : leaseA;
      onB.rateLimited({ retryAfterMs: TEN_MINUTES });
      onA.release();
      await first.close();

      const withoutB = await KeyPool.create({ keys: [KEY_A], storage: store.open(), clock, seed: 8 });
      expect(withoutB.snapshot().keys.map((key) => key.keyId)).toEqual([ID_A]);
      (await withoutB.acquire()).release();
      await withoutB.close();

      const withB = await KeyPool.create({ keys: [KEY_A, KEY_B], storage: store.open(), clock, seed: 9 });
      expect(keyOf(withB, ID_B).state).toBe('cooling');
      expect(keyOf(withB, ID_A).successes).toBe(2);
      await withB.close();
    });

    it('keeps serving while writes fail, reports storage-error and retries with backoff until stored', async () => {
      const store = await newStore();
      const clock = new VirtualClock();
      const tracked = new TrackedAdapter(store.open());
      const pool = await KeyPool.create({ keys: [KEY_A, KEY_B], storage: tracked, clock, seed: 10 });
      const errors: { error: StorageError; attempt: number }[] = [];
      pool.on('storage-error', (event) => errors.push(event));
      tracked.failNext(2);

      const lease = await pool.acquire();
      lease.rateLimited({ retryAfterMs: TEN_MINUTES });
      const deadline = clock.now() + TEN_MINUTES;
      clock.advance(0); // the urgent flush
      await tracked.settled();
      expect(errors.map((event) => event.attempt)).toEqual([1]);
      expect(errors[0]?.error).toBeInstanceOf(StorageError);
      expect(errors[0]?.error.cause).toBeInstanceOf(Error);

      const other = await pool.acquire(); // still serving
      other.release();

      clock.advance(100); // first retry, fails again
      await tracked.settled();
      expect(errors.map((event) => event.attempt)).toEqual([1, 2]);
      clock.advance(199);
      await tracked.settled();
      expect(tracked.saves).toBe(2); // backoff doubled: not yet
      clock.advance(1);
      await tracked.settled();
      expect(tracked.saves).toBe(3);
      expect(errors).toHaveLength(2);

      const reader = store.open();
      const stored = await reader.load([lease.keyId]);
      expect(stored.get(lease.keyId)).toMatchObject({ state: 'cooling', cooldownUntil: deadline });
      await reader.close?.();
      await pool.close();
    });
  });
});
