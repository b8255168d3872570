import { spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { StorageCorruptError, StorageError } from '../../src/errors.js';
import { KeyPool } from '../../src/pool/KeyPool.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import { jsonFileStorage, type StorageQuarantineEvent } from '../../src/storage/json-file.js';
import {
  ID_A,
  ID_B,
  KEY_A,
  KEY_B,
  makeRecord,
  makeTempDir,
  removeTempDirs,
  TrackedAdapter,
} from './support.js';

afterEach(removeTempDirs);

async function statePath(): Promise<string> {
  return join(await makeTempDir(), 'keys.json');
}

const VALID_DOCUMENT = JSON.stringify({ format: 'keymesh', version: 1, keys: { [ID_A]: makeRecord(ID_A) } });

const CORRUPT_FILES: readonly (readonly [string, string])[] = [
  ['not JSON at all', 'this is not json'],
  ['cut off mid-write', VALID_DOCUMENT.slice(0, VALID_DOCUMENT.length / 2)],
  ['empty', ''],
  ['another format', JSON.stringify({ format: 'other', version: 1, keys: {} })],
  ['a JSON array', '[]'],
  ['without a version', JSON.stringify({ format: 'keymesh', keys: {} })],
  ['with keys that are not an object', JSON.stringify({ format: 'keymesh', version: 1, keys: [] })],
  // JSON.parse reads this; JSON.stringify overflows the stack on it, so it could never be written back.
  [
    'with an extra field nested 100 000 levels deep',
    `{"format": "keymesh", "version": 1, "keys": {}, "notes": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
  ],
];

describe('jsonFileStorage', () => {
  describe('writing', () => {
    it('writes the documented format, one record per key', async () => {
      const path = await statePath();
      const adapter = jsonFileStorage(path);
      await adapter.save([makeRecord(ID_A), makeRecord(ID_B, { successes: 3 })]);
      const document = JSON.parse(await readFile(path, 'utf8'));
      expect(document).toEqual({
        format: 'keymesh',
        version: 1,
        keys: { [ID_A]: makeRecord(ID_A), [ID_B]: makeRecord(ID_B, { successes: 3 }) },
      });
    });

    it('creates a missing folder (0700) and the file (0600)', async () => {
      const dir = join(await makeTempDir(), 'deep', 'er');
      const path = join(dir, 'keys.json');
      await jsonFileStorage(path).save([makeRecord(ID_A)]);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect((await stat(dir)).mode & 0o777).toBe(0o700);
    });

    it('makes the file 0600 even over a file that had wider permissions', async () => {
      const path = await statePath();
      await writeFile(path, VALID_DOCUMENT, { mode: 0o644 });
      await jsonFileStorage(path).save([makeRecord(ID_B)]);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
    });

    it('leaves no temp file behind', async () => {
      const path = await statePath();
      const adapter = jsonFileStorage(path);
      await Promise.all(
        Array.from({ length: 10 }, (_, n) => adapter.save([makeRecord(ID_A, { successes: n })])),
      );
      expect(await readdir(join(path, '..'))).toEqual(['keys.json']);
    });

    it('removes temp files of dead processes on open, and keeps those of live ones', async () => {
      const path = await statePath();
      const dir = join(path, '..');
      const deadPid = spawnSync(process.execPath, ['-e', '']).pid;
      if (deadPid === undefined) throw new Error('no child pid');
      await writeFile(join(dir, `.keys.json.${deadPid}.0abc.tmp`), '{"format":"kee');
      await writeFile(join(dir, `.keys.json.${process.ppid}.0abc.tmp`), '{"format":"kee');
      await jsonFileStorage(path).load([ID_A]);
      expect((await readdir(dir)).sort()).toEqual([`.keys.json.${process.ppid}.0abc.tmp`]);
    });

    it('keeps top-level fields it does not know', async () => {
      const path = await statePath();
      await writeFile(path, JSON.stringify({ format: 'keymesh', version: 1, note: 'ops', keys: {} }));
      await jsonFileStorage(path).save([makeRecord(ID_A)]);
      expect(JSON.parse(await readFile(path, 'utf8')).note).toBe('ops');
    });

    it('merges what another writer stored since its own last write', async () => {
      const path = await statePath();
      const first = jsonFileStorage(path);
      const second = jsonFileStorage(path);
      await first.save([makeRecord(ID_A, { successes: 1 })]);
      await second.save([makeRecord(ID_B, { successes: 1 })]);
      await first.save([makeRecord(ID_A, { successes: 2 })]);
      const loaded = await jsonFileStorage(path).load([ID_A, ID_B]);
      expect(loaded.get(ID_A)?.successes).toBe(2);
      expect(loaded.get(ID_B)?.successes).toBe(1);
    });

    it('rewrites everything it knows when the file is deleted under it', async () => {
      const path = await statePath();
      const adapter = jsonFileStorage(path);
      await adapter.save([makeRecord(ID_A)]);
      await rm(path);
      await adapter.save([makeRecord(ID_B)]);
      expect((await jsonFileStorage(path).load([ID_A, ID_B])).size).toBe(2);
    });
  });

  describe('a corrupt file', () => {
    it.each(CORRUPT_FILES)(
      'is a StorageCorruptError naming the path when %s, and is left untouched',
      async (_, text) => {
        const path = await statePath();
        await writeFile(path, text);
        const adapter = jsonFileStorage(path);
        const error = await adapter.load([ID_A]).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(StorageCorruptError);
        expect((error as StorageCorruptError).path).toBe(path);
        expect((error as StorageCorruptError).message).toContain(path);
        await expect(adapter.save([makeRecord(ID_A)])).rejects.toBeInstanceOf(StorageCorruptError);
        expect(await readFile(path, 'utf8')).toBe(text);
        expect(await readdir(join(path, '..'))).toEqual(['keys.json']);
      },
    );

    it('stops KeyPool.create with a StorageCorruptError naming the path', async () => {
      const path = await statePath();
      await writeFile(path, '{"format": "keymesh", "version": 1, "keys": {');
      const created = KeyPool.create({
        keys: [KEY_A],
        storage: jsonFileStorage(path),
        clock: new VirtualClock(),
      });
      await expect(created).rejects.toMatchObject({
        name: 'StorageCorruptError',
        code: 'STORAGE_CORRUPT',
        path,
      });
    });

    it('never quotes the file in the error message', async () => {
      const path = await statePath();
      await writeFile(path, `{"keys": ${KEY_A}}`);
      const error = await jsonFileStorage(path)
        .load([ID_A])
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StorageCorruptError);
      expect((error as Error).message).not.toContain(KEY_A);
      expect((error as Error).message).not.toContain(KEY_A.slice(-8));
    });

    it('is moved aside with onCorrupt: quarantine, said in an event, and the store starts fresh', async () => {
      const path = await statePath();
      const text = 'garbage that used to be state';
      await writeFile(path, text);
      const events: StorageQuarantineEvent[] = [];
      const clock = new VirtualClock(Date.UTC(2025, 0, 2, 3, 4, 5, 6));
      const adapter = jsonFileStorage(path, {
        onCorrupt: 'quarantine',
        onQuarantine: (e) => events.push(e),
        clock,
      });
      expect((await adapter.load([ID_A])).size).toBe(0);
      const movedTo = `${path}.corrupt-2025-01-02T03-04-05-006Z`;
      expect(events).toEqual([
        { type: 'quarantined', path, movedTo, error: expect.any(StorageCorruptError) },
      ]);
      expect(events[0]?.error.path).toBe(path);
      expect(await readFile(movedTo, 'utf8')).toBe(text);
      expect((await stat(movedTo)).mode & 0o777).toBe(0o600);

      await adapter.save([makeRecord(ID_A)]);
      expect((await jsonFileStorage(path).load([ID_A])).size).toBe(1);
    });

    it('never overwrites an earlier quarantined file', async () => {
      const path = await statePath();
      const clock = new VirtualClock();
      const events: StorageQuarantineEvent[] = [];
      for (const text of ['first garbage', 'second garbage']) {
        await writeFile(path, text);
        await jsonFileStorage(path, {
          onCorrupt: 'quarantine',
          onQuarantine: (e) => events.push(e),
          clock,
        }).load([]);
      }
      const [first, second] = events;
      expect(second?.movedTo).toBe(`${first?.movedTo}-1`);
      expect(await readFile(first?.movedTo ?? '', 'utf8')).toBe('first garbage');
      expect(await readFile(second?.movedTo ?? '', 'utf8')).toBe('second garbage');
    });

    it('found at a later write is quarantined while the adapter keeps what it knows', async () => {
      const path = await statePath();
      const events: StorageQuarantineEvent[] = [];
      const adapter = jsonFileStorage(path, { onCorrupt: 'quarantine', onQuarantine: (e) => events.push(e) });
      await adapter.save([makeRecord(ID_A)]);
      await writeFile(path, 'scribbled over by someone');
      await adapter.save([makeRecord(ID_B)]);
      expect(events).toHaveLength(1);
      expect((await jsonFileStorage(path).load([ID_A, ID_B])).size).toBe(2);
    });
  });

  describe('a file it cannot use', () => {
    it('written by a newer KeyMesh is a StorageError, never quarantined', async () => {
      const path = await statePath();
      const text = JSON.stringify({ format: 'keymesh', version: 2, keys: {} });
      await writeFile(path, text);
      const events: StorageQuarantineEvent[] = [];
      const adapter = jsonFileStorage(path, { onCorrupt: 'quarantine', onQuarantine: (e) => events.push(e) });
      const error = await adapter.load([ID_A]).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).not.toBeInstanceOf(StorageCorruptError);
      expect((error as Error).message).toMatch(/newer KeyMesh \(file version 2/);
      expect(events).toEqual([]);
      expect(await readFile(path, 'utf8')).toBe(text);
    });

    it('that is a folder is a StorageError naming the path, at KeyPool.create', async () => {
      const path = await statePath();
      await mkdir(path); // a folder where the file should be
      const created = KeyPool.create({
        keys: [KEY_A],
        storage: jsonFileStorage(path),
        clock: new VirtualClock(),
      });
      const error = await created.catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(StorageError);
      expect((error as Error).message).toContain(`${path} is a folder, not a regular file`);
    });
  });

  it('keeps a pool serving while its folder cannot be written, and stores everything once it can', async () => {
    const dir = await makeTempDir();
    const blocked = join(dir, 'state');
    const clock = new VirtualClock();
    const storage = new TrackedAdapter(jsonFileStorage(join(blocked, 'keys.json')));
    const pool = await KeyPool.create({ keys: [KEY_A, KEY_B], storage, clock, seed: 1 });
    await writeFile(blocked, 'a file where the folder should be');
    const errors: number[] = [];
    pool.on('storage-error', ({ attempt }) => errors.push(attempt));

    const lease = await pool.acquire();
    lease.rateLimited({ retryAfterMs: 60_000 });
    clock.advance(0);
    await storage.settled();
    expect(errors).toEqual([1]);
    (await pool.acquire()).release();

    await rm(blocked);
    clock.advance(100);
    await storage.settled();
    expect(errors).toEqual([1]);
    const stored = await jsonFileStorage(join(blocked, 'keys.json')).load([lease.keyId]);
    expect(stored.get(lease.keyId)?.state).toBe('cooling');
    await pool.close();
  });
});
