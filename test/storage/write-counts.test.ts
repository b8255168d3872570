import { afterEach, describe, expect, it } from 'vitest';
import { KeyPool } from '../../src/pool/KeyPool.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import { ALL_FACTORIES, makeTempDir, removeTempDirs, TrackedAdapter } from './support.js';

/**
 * Write amplification through the pool: store writes per 10 000 acquire/release pairs. The target
 * is at most one write per key per flush interval (plus the final flush on close). Set
 * KEYMESH_PRINT_WRITES=1 to print the figures.
 */
const PAIRS = 10_000;
const KEYS = Array.from({ length: 4 }, (_, i) => `sk-test-fake-${String(i + 1).padStart(16, '0')}`);
const FLUSH_INTERVAL_MS = 1_000;

afterEach(removeTempDirs);

const SCENARIOS = [
  { name: 'one pair per ms (10 s)', stepMs: 1 },
  { name: 'a burst in one instant', stepMs: 0 },
] as const;

describe.each(ALL_FACTORIES)('$name store writes per 10 000 acquire/release pairs', (factory) => {
  it.each(SCENARIOS)('$name: at most one write per key per flush interval', async ({ stepMs }) => {
    const clock = new VirtualClock();
    const storage = new TrackedAdapter(factory.create(await makeTempDir()).open());
    const pool = await KeyPool.create({
      keys: KEYS,
      storage,
      clock,
      seed: 1,
      flushIntervalMs: FLUSH_INTERVAL_MS,
    });
    for (let pair = 1; pair <= PAIRS; pair++) {
      (await pool.acquire()).release({ latencyMs: 40 });
      clock.advance(stepMs);
      if (pair % 100 === 0) await storage.settled(); // let the real I/O finish, as it would in real time
    }
    await pool.close();
    const intervals = Math.ceil((PAIRS * stepMs) / FLUSH_INTERVAL_MS);
    const { records, batches } = pool.storageWrites;
    if (process.env.KEYMESH_PRINT_WRITES) {
      process.stdout.write(
        `[writes] ${factory.name} ${stepMs === 0 ? 'burst' : '1 pair/ms'}: ${records} records in ${batches} batches (${KEYS.length} keys, ${intervals} intervals)\n`,
      );
    }
    expect(records).toBeLessThanOrEqual(KEYS.length * (intervals + 1));
    expect(batches).toBeLessThanOrEqual(intervals + 1);
  });
});
