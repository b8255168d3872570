import { describe, expect, it } from 'vitest';
import { KeyPool, memoryStorage, NoAvailableKeyError, VirtualClock } from '../src/index.js';
import { fakeKeys, pools } from './helpers.js';

const make = pools();
const HOUR = 3_600_000;

/**
 * The system clock in miniature: timers and `monotonic()` run on elapsed (virtual) time, while
 * `now()`, the wall clock, can be stepped by `step(ms)` as NTP or an operator would.
 */
class SteppingClock extends VirtualClock {
  #offset = 0;
  override now(): number {
    return super.now() + this.#offset;
  }
  monotonic(): number {
    return super.now();
  }
  step(ms: number): void {
    this.#offset += ms;
  }
}

/** eta(), acquire() and the snapshot tell the same story about every key. */
async function consistent(pool: KeyPool): Promise<void> {
  const snapshot = pool.snapshot();
  for (const key of snapshot.keys) {
    if (key.state === 'cooling') expect(key.cooldownUntil).toBeGreaterThan(snapshot.at);
  }
  const eta = pool.eta();
  const now = await pool.acquire({ timeoutMs: 0 }).then(
    (lease) => {
      lease.release({ latencyMs: 1 });
      return true;
    },
    (error: unknown) => {
      expect(error).toBeInstanceOf(NoAvailableKeyError);
      return false;
    },
  );
  expect(now).toBe(eta === 0);
}

describe('clock steps: waits are measured on elapsed time, instants given out are on the wall clock', () => {
  it('a 2 h step forward during a 1 h cooldown: the key rests the rest of its hour, and everything says so', async () => {
    const clock = new SteppingClock();
    const { pool } = await make(1, {}, clock);
    (await pool.acquire()).rateLimited({ retryAfterMs: HOUR });
    clock.advance(10 * 60_000);
    clock.step(2 * HOUR);

    expect(pool.eta()).toBe(50 * 60_000);
    await consistent(pool);
    const [key] = pool.snapshot().keys;
    // On the wall clock the deadline moved with the step: the key is not cooling past it.
    expect((key?.cooldownUntil ?? 0) - clock.now()).toBe(50 * 60_000);
    const error = await pool.acquire({ timeoutMs: 1_000 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ retryAfterMs: 50 * 60_000 });

    clock.advance(50 * 60_000);
    expect(pool.snapshot().keys[0]?.state).toBe('available');
    expect(pool.eta()).toBe(0);
    await consistent(pool);
  });

  it('a 1 h step back never stalls an rpm key, nor a cooldown, for the step', async () => {
    const clock = new SteppingClock();
    const keys = fakeKeys(2);
    const { pool } = await make(2, { keys: [{ key: keys[0] ?? '', rpm: 60 }, keys[1] ?? ''] }, clock);
    const paced = await pool.acquire();
    const other = await pool.acquire();
    paced.release({ latencyMs: 5 });
    other.rateLimited({ retryAfterMs: 60_000 });
    clock.step(-HOUR);
    await consistent(pool);

    clock.advance(1_000);
    const next = await pool.acquire({ timeoutMs: 0 });
    expect(next.keyId).toBe(paced.keyId);
    next.release({ latencyMs: 5 });
    clock.advance(59_000);
    expect(pool.snapshot().keys.map((key) => key.state)).toEqual(['available', 'available']);
    await consistent(pool);
  });

  it('never reports a negative waitedMs or latencyMs across a step back', async () => {
    const clock = new SteppingClock();
    const { pool } = await make(1, { maxConcurrentPerKey: 1 }, clock);
    const waited: number[] = [];
    const latencies: number[] = [];
    pool.on('acquired', (event) => waited.push(event.waitedMs));
    pool.on('released', (event) => latencies.push(event.latencyMs));
    const first = await pool.acquire();
    const second = pool.acquire();
    clock.advance(100);
    clock.step(-HOUR);
    first.release();
    const lease = await second;
    clock.advance(50);
    clock.step(-HOUR);
    lease.release();
    expect(waited).toEqual([0, 100]);
    expect(latencies).toEqual([100, 50]);
  });

  it('stores deadlines on the wall clock, so a restart after the step resumes the same rest', async () => {
    const clock = new SteppingClock();
    const storage = memoryStorage();
    const keys = fakeKeys(1);
    const pool = await KeyPool.create({ keys, clock, storage, seed: 1 });
    (await pool.acquire()).rateLimited({ retryAfterMs: HOUR });
    clock.step(2 * HOUR);
    await pool.close();
    const [record] = [...(await storage.load(pool.snapshot().keys.map((key) => key.keyId))).values()];
    expect((record?.cooldownUntil ?? 0) - clock.now()).toBe(HOUR);

    const restarted = make.track(
      await KeyPool.create({ keys, clock: new VirtualClock(clock.now()), storage }),
    );
    expect(restarted.snapshot().keys[0]?.state).toBe('cooling');
    expect(restarted.eta()).toBe(HOUR);
  });
});
