import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { StorageCorruptError, StorageError } from '../../src/errors.js';
import { KeyPool } from '../../src/pool/KeyPool.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import { SQLITE_SCHEMA_VERSION, sqliteStorage } from '../../src/storage/sqlite.js';
import type { KeyRecord, StorageAdapter } from '../../src/storage/types.js';
import { ID_A, ID_B, KEY_A, makeRecord, makeTempDir, removeTempDirs } from './support.js';

const opened: { close(): unknown }[] = [];

afterEach(async () => {
  for (const handle of opened.splice(0)) await handle.close();
  await removeTempDirs();
});

async function dbPath(): Promise<string> {
  return join(await makeTempDir(), 'keys.db');
}

function adapterAt(path: string, options: Parameters<typeof sqliteStorage>[1] = {}): StorageAdapter {
  const adapter = sqliteStorage(path, options);
  opened.push({ close: () => adapter.close?.() });
  return adapter;
}

/** A second, plain connection to look at what the adapter wrote. */
function inspect(path: string): Database.Database {
  const db = new Database(path);
  opened.push(db);
  return db;
}

describe('sqliteStorage', () => {
  describe('the database', () => {
    it('is in WAL mode at the current schema version, one row per key in keymesh_keys', async () => {
      const path = await dbPath();
      const adapter = adapterAt(path);
      await adapter.save([makeRecord(ID_A), makeRecord(ID_B)]);
      await adapter.save([makeRecord(ID_A, { successes: 2 })]);
      const db = inspect(path);
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION);
      const rows = db.prepare('SELECT key_id, record FROM keymesh_keys ORDER BY key_id').all() as {
        key_id: string;
        record: string;
      }[];
      expect(rows.map((row) => row.key_id)).toEqual([ID_A, ID_B].sort());
      const recordOfA = rows.find((row) => row.key_id === ID_A)?.record ?? '{}';
      expect(JSON.parse(recordOfA)).toEqual(makeRecord(ID_A, { successes: 2 }));
    });

    it('refuses a database of someone else untouched: no table added, journal mode kept', async () => {
      const path = await dbPath();
      const own = new Database(path);
      own.exec("CREATE TABLE app_settings (name TEXT); INSERT INTO app_settings VALUES ('kept')");
      own.close();
      const adapter = adapterAt(path);
      const error = await adapter.save([makeRecord(ID_A)]).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toContain(`${path} is not a KeyMesh store`);
      const db = inspect(path);
      expect(db.prepare('SELECT name FROM sqlite_schema').pluck().all()).toEqual(['app_settings']);
      expect(db.pragma('user_version', { simple: true })).toBe(0);
      expect(db.pragma('journal_mode', { simple: true })).toBe('delete');
    });

    it('refuses a database written by a newer KeyMesh, and changes nothing in it', async () => {
      const path = await dbPath();
      const newer = new Database(path);
      newer.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
      newer.exec('CREATE TABLE keymesh_keys (key_id TEXT PRIMARY KEY, everything_else BLOB)');
      newer.close();
      const error = await adapterAt(path)
        .load([ID_A])
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toMatch(/newer KeyMesh/);
      expect(inspect(path).pragma('user_version', { simple: true })).toBe(SQLITE_SCHEMA_VERSION + 1);
      expect(inspect(path).pragma('journal_mode', { simple: true })).toBe('delete');
    });

    it("refuses another application's versioned database", async () => {
      const path = await dbPath();
      const theirs = new Database(path);
      theirs.pragma('user_version = 1');
      theirs.exec('CREATE TABLE invoices (id INTEGER)');
      theirs.close();
      await expect(adapterAt(path).load([ID_A])).rejects.toThrow(/not a KeyMesh store/);
    });

    it('creates the file 0600 and its folder 0700', async () => {
      const dir = join(await makeTempDir(), 'nested');
      const path = join(dir, 'keys.db');
      await adapterAt(path).save([makeRecord(ID_A)]);
      const { stat } = await import('node:fs/promises');
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await stat(dir)).mode & 0o777).toBe(0o700);
    });
  });

  describe('a store it cannot use', () => {
    it('that is not an SQLite database is a StorageCorruptError naming the path, left untouched', async () => {
      const path = await dbPath();
      const text = 'definitely not a database, just some text that is long enough to have a header';
      await writeFile(path, text);
      const error = await adapterAt(path)
        .load([ID_A])
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StorageCorruptError);
      expect((error as StorageCorruptError).path).toBe(path);
      expect(await readFile(path, 'utf8')).toBe(text);
    });

    it('stops KeyPool.create with the StorageCorruptError', async () => {
      const path = await dbPath();
      await writeFile(path, 'not a database'.repeat(20));
      const created = KeyPool.create({ keys: [KEY_A], storage: adapterAt(path), clock: new VirtualClock() });
      await expect(created).rejects.toMatchObject({ code: 'STORAGE_CORRUPT', path });
    });

    it('fails a write held up by another lock beyond busyTimeoutMs with a StorageError, and takes the retry', async () => {
      const path = await dbPath();
      const adapter = adapterAt(path, { busyTimeoutMs: 0 });
      await adapter.save([makeRecord(ID_A)]);
      const other = inspect(path);
      other.exec('BEGIN IMMEDIATE');
      const error = await adapter
        .save([makeRecord(ID_A, { successes: 1 })])
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toMatch(/locked for longer than busyTimeoutMs \(0 ms\)/);
      other.exec('ROLLBACK');
      await adapter.save([makeRecord(ID_A, { successes: 1 })]);
      expect((await adapter.load([ID_A])).get(ID_A)?.successes).toBe(1);
    });
  });

  describe('watch', () => {
    it("reports rows other connections commit, on the clock's schedule, and stops when unsubscribed", async () => {
      const path = await dbPath();
      const clock = new VirtualClock();
      const watcher = adapterAt(path, { clock, watchIntervalMs: 500 });
      const writer = adapterAt(path);
      await watcher.load([]);
      const seen: KeyRecord[][] = [];
      const stop = watcher.watch?.((records) => seen.push([...records]));
      if (!stop) throw new Error('sqliteStorage should implement watch');
      await new Promise((resolve) => setImmediate(resolve)); // the baseline

      await writer.save([makeRecord(ID_A, { state: 'cooling', reason: 'rate-limited', cooldownUntil: 5 })]);
      expect(seen).toEqual([]);
      clock.advance(499);
      await new Promise((resolve) => setImmediate(resolve));
      expect(seen).toEqual([]);
      clock.advance(1);
      await new Promise((resolve) => setImmediate(resolve));
      expect(seen).toEqual([
        [makeRecord(ID_A, { state: 'cooling', reason: 'rate-limited', cooldownUntil: 5 })],
      ]);

      await watcher.save([makeRecord(ID_B)]); // its own write: heard at once, not again from the poll
      expect(seen).toHaveLength(2);
      clock.advance(500);
      await new Promise((resolve) => setImmediate(resolve));
      expect(seen).toHaveLength(2);

      stop();
      expect(clock.pendingTimers).toBe(0);
    });
  });
});
