import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InvalidConfigError, StorageError } from '../../src/errors.js';
import { KeyPool } from '../../src/pool/KeyPool.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import { jsonFileStorage } from '../../src/storage/json-file.js';
import { sqliteStorage } from '../../src/storage/sqlite.js';
import type { KeyRecord, StorageAdapter } from '../../src/storage/types.js';
import { flushMicrotasks, track } from '../helpers.js';
import { ID_A, ID_B, KEY_A, KEY_B, makeTempDir, removeTempDirs, TrackedAdapter } from './support.js';

afterEach(removeTempDirs);

/** A store whose `load()` never answers. */
function silentStore(): StorageAdapter {
  return { name: 'silent', load: () => new Promise<never>(() => {}), save: async () => {} };
}

describe('a store that never answers', () => {
  it('makes KeyPool.create reject with a StorageError after storageTimeoutMs', async () => {
    const clock = new VirtualClock();
    const created = track(
      KeyPool.create({ keys: [KEY_A], storage: silentStore(), clock, storageTimeoutMs: 5_000 }),
    );
    clock.advance(4_999);
    await flushMicrotasks();
    expect(created.state).toBe('pending');
    clock.advance(1);
    await flushMicrotasks();
    expect(created.state).toBe('rejected');
    expect(created.error).toBeInstanceOf(StorageError);
    expect((created.error as Error).message).toMatch(
      /silent did not finish within storageTimeoutMs \(5000 ms\)/,
    );
  });

  it('waits 30 s by default', async () => {
    const clock = new VirtualClock();
    const created = track(KeyPool.create({ keys: [KEY_A], storage: silentStore(), clock }));
    clock.advance(29_999);
    await flushMicrotasks();
    expect(created.state).toBe('pending');
    clock.advance(1);
    await flushMicrotasks();
    expect(created.error).toBeInstanceOf(StorageError);
  });

  it('makes addKey reject the same way, and the pool keeps serving', async () => {
    const clock = new VirtualClock();
    let answer = true;
    const storage: StorageAdapter = {
      name: 'sometimes',
      load: () => (answer ? Promise.resolve(new Map()) : new Promise<never>(() => {})),
      save: async () => {},
    };
    const pool = await KeyPool.create({ keys: [KEY_A], storage, clock, storageTimeoutMs: 100 });
    answer = false;
    const adding = track(pool.addKey(KEY_B));
    clock.advance(100);
    await flushMicrotasks();
    expect(adding.error).toBeInstanceOf(StorageError);
    (await pool.acquire()).release();
    await pool.close();
  });

  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, '5000'])(
    'refuses storageTimeoutMs %s',
    (value) => {
      expect(() => new KeyPool({ keys: [KEY_A], storageTimeoutMs: value as number })).toThrow(
        InvalidConfigError,
      );
    },
  );

  it('is a StorageError when load() answers with something other than a Map', async () => {
    const storage = {
      name: 'odd',
      load: async () => ({}) as ReadonlyMap<string, KeyRecord>,
      save: async () => {},
    };
    await expect(
      KeyPool.create({ keys: [KEY_A], storage, clock: new VirtualClock() }),
    ).rejects.toBeInstanceOf(StorageError);
  });
});

describe('a named pipe at the store path', () => {
  it.each([
    ['json-file', (path: string) => jsonFileStorage(path)],
    ['sqlite', (path: string) => sqliteStorage(path)],
  ])('%s: KeyPool.create rejects at once with a StorageError naming the path', async (_, open) => {
    const path = join(await makeTempDir(), 'keys');
    execFileSync('mkfifo', [path]);
    const error = await KeyPool.create({
      keys: [KEY_A],
      storage: open(path),
      clock: new VirtualClock(),
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toContain(`${path} is a named pipe, not a regular file`);
  });
});

describe('an SQLite file deleted while a pool runs', () => {
  it('is a storage-error, then the file is recreated with every record the pool wrote', async () => {
    const dir = await makeTempDir();
    const path = join(dir, 'keys.db');
    const clock = new VirtualClock();
    const storage = new TrackedAdapter(sqliteStorage(path));
    const pool = await KeyPool.create({ keys: [KEY_A, KEY_B], storage, clock, strategy: 'round-robin' });
    const errors: string[] = [];
    pool.on('storage-error', ({ error }) => errors.push(error.message));
    (await pool.acquire()).fail(new Error('401'), { kind: 'revoked' }); // A: written at once
    clock.advance(0);
    await storage.settled();
    for (const suffix of ['', '-wal', '-shm']) await rm(`${path}${suffix}`, { force: true });
    (await pool.acquire()).rateLimited({ retryAfterMs: 60_000 }); // B, after the file is gone
    clock.advance(0);
    await storage.settled();
    expect(errors).toEqual([expect.stringContaining(`${path} was deleted while in use`)]);
    clock.advance(100); // the writer's first retry
    await storage.settled();
    await pool.close();

    const reopened = await sqliteStorage(path).load([ID_A, ID_B]);
    expect(reopened.get(ID_A)).toMatchObject({ state: 'exhausted', reason: 'revoked' });
    expect(reopened.get(ID_B)).toMatchObject({ state: 'cooling', reason: 'rate-limited' });
  });
});
