import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StorageCorruptError } from '../../src/errors.js';
import { KeyPool } from '../../src/pool/KeyPool.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import { jsonFileStorage } from '../../src/storage/json-file.js';
import { sqliteStorage } from '../../src/storage/sqlite.js';
import type { StorageAdapter } from '../../src/storage/types.js';
import {
  type AdapterFactory,
  ALL_FACTORIES,
  ID_C,
  KEY_A,
  KEY_B,
  KEY_C,
  makeRecord,
  makeTempDir,
  removeTempDirs,
  type SaveFault,
  TrackedAdapter,
} from './support.js';

/**
 * Storage faults while a pool runs: the pool keeps serving, reports each failed write
 * (`storage-error`), retries, and once the store works again holds every key's latest state.
 * (Tests run as root, which `chmod` does not stop: a store that cannot be written is made by putting
 * a folder where its file or folder should be.)
 */
afterEach(removeTempDirs);

const TIMEOUT_MS = 1_000;

interface Running {
  readonly pool: KeyPool;
  readonly clock: VirtualClock;
  readonly storage: TrackedAdapter;
  readonly errors: { message: string; attempt: number; cause: unknown }[];
}

async function running(adapter: StorageAdapter): Promise<Running> {
  const clock = new VirtualClock();
  const storage = new TrackedAdapter(adapter);
  const pool = await KeyPool.create({
    keys: [KEY_A, KEY_B, KEY_C],
    storage,
    clock,
    strategy: 'round-robin',
    seed: 1,
    storageTimeoutMs: TIMEOUT_MS,
  });
  const errors: Running['errors'] = [];
  pool.on('storage-error', ({ error, attempt }) =>
    errors.push({ message: error.message, attempt, cause: error.cause }),
  );
  return { pool, clock, storage, errors };
}

/**
 * A mixed minute of traffic: every acquire is served whatever the store is doing. The real I/O of
 * each step finishes before virtual time moves on, as it would in real time.
 */
async function traffic({ pool, clock, storage }: Running): Promise<void> {
  for (let i = 0; i < 30; i++) {
    const lease = await pool.acquire({ timeoutMs: 120_000 });
    if (i === 4) lease.rateLimited({ retryAfterMs: 600_000 });
    else if (i === 8) lease.fail(new Error('401'), { kind: 'revoked' });
    else lease.release({ latencyMs: 10 + i });
    clock.advance(2_000);
    await storage.settled();
  }
}

/** Advances through the writer's retries (100 ms doubling, ≤ 30 s) and lets the real I/O finish. */
async function drive({ clock, storage }: Running, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 100) {
    clock.advance(100);
    await storage.settled();
  }
}

/** The store, read afresh, holds exactly what the pool knows of every key. */
async function expectStoreMatches(pool: KeyPool, reopen: () => StorageAdapter): Promise<void> {
  const keys = pool.snapshot().keys;
  const adapter = reopen();
  const stored = await adapter.load(keys.map((key) => key.keyId));
  await adapter.close?.();
  for (const key of keys) {
    expect(stored.get(key.keyId)).toMatchObject({
      state: key.state === 'busy' ? 'available' : key.state,
      reason: key.reason,
      successes: key.successes,
      failures: key.failures,
      rateLimits: key.rateLimits,
    });
  }
}

describe.each(ALL_FACTORIES)('$name store whose saves go wrong', (factory: AdapterFactory) => {
  it.each<SaveFault>(['throw', 'hang', 'half-write'])(
    '%s: serves, reports, retries, loses nothing',
    async (fault) => {
      const store = factory.create(await makeTempDir());
      const run = await running(store.open());
      run.storage.fault = fault;
      await traffic(run);
      await drive(run, 3_000);
      expect(run.errors.length).toBeGreaterThan(0);
      expect(run.errors.every((e) => e.attempt >= 1)).toBe(true);
      if (fault === 'hang') expect(run.errors[0]?.message).toMatch(/did not finish within 1000 ms/);
      run.storage.fault = 'none';
      await drive(run, 31_000);
      if (fault === 'hang') {
        run.storage.releaseHung(); // the old batches land late, over newer records ...
        await drive(run, 1_000); // ... and the writer puts the latest back on top
      }
      await expectStoreMatches(run.pool, () => store.open());
      await run.pool.close();
      await expectStoreMatches(run.pool, () => store.open());
    },
  );
});

describe('a JSON file changed under a running pool', () => {
  async function jsonRun() {
    const dir = await makeTempDir();
    const path = join(dir, 'state', 'keys.json');
    return { dir, path, run: await running(jsonFileStorage(path)) };
  }

  it('deleted: the next write puts every key back', async () => {
    const { path, run } = await jsonRun();
    await traffic(run);
    await drive(run, 2_000);
    await rm(path);
    (await run.pool.acquire()).release();
    await drive(run, 2_000);
    await expectStoreMatches(run.pool, () => jsonFileStorage(path));
    await run.pool.close();
  });

  it('replaced by a folder (cannot be written): serves and reports, then stores everything once it can', async () => {
    const { path, run } = await jsonRun();
    await drive(run, 100);
    await mkdir(path, { recursive: true });
    await traffic(run);
    await drive(run, 3_000);
    expect(run.errors.length).toBeGreaterThan(0);
    await rm(path, { recursive: true });
    await drive(run, 31_000);
    await expectStoreMatches(run.pool, () => jsonFileStorage(path));
    await run.pool.close();
  });

  it('replaced by another state file: its keys are kept, ours are written on top', async () => {
    const { path, run } = await jsonRun();
    await traffic(run);
    await drive(run, 2_000);
    const other = makeRecord(ID_C, { successes: 999 });
    await writeFile(
      path,
      JSON.stringify({
        format: 'keymesh',
        version: 1,
        keys: { k_0000000000000000: { ...other, keyId: 'k_0000000000000000' } },
      }),
    );
    (await run.pool.acquire()).release();
    await run.pool.close();
    const document = JSON.parse(await readFile(path, 'utf8')) as { keys: Record<string, unknown> };
    expect(Object.keys(document.keys)).toContain('k_0000000000000000');
    await expectStoreMatches(run.pool, () => jsonFileStorage(path));
  });

  it('half-written (cut off): reported while it is corrupt, and whole again once it is removed', async () => {
    const { path, run } = await jsonRun();
    await traffic(run);
    await drive(run, 2_000);
    const text = await readFile(path, 'utf8');
    await writeFile(path, text.slice(0, text.length / 2));
    (await run.pool.acquire()).release();
    await drive(run, 3_000);
    expect(run.errors.some((e) => e.cause instanceof StorageCorruptError)).toBe(true);
    await rm(path);
    await drive(run, 31_000);
    await expectStoreMatches(run.pool, () => jsonFileStorage(path));
    await run.pool.close();
  });
});

describe('an SQLite file made unwritable under a running pool', () => {
  it('replaced by a folder: serves and reports, then stores everything once it can', async () => {
    const path = join(await makeTempDir(), 'keys.db');
    const run = await running(sqliteStorage(path));
    await traffic(run);
    await drive(run, 2_000);
    for (const suffix of ['', '-wal', '-shm']) await rm(`${path}${suffix}`, { force: true });
    await mkdir(path);
    (await run.pool.acquire()).rateLimited({ retryAfterMs: 60_000 });
    await drive(run, 3_000);
    expect(run.errors.length).toBeGreaterThan(0);
    await rm(path, { recursive: true });
    await drive(run, 31_000);
    await expectStoreMatches(run.pool, () => sqliteStorage(path));
    await run.pool.close();
  });
});
