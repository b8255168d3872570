import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { KeyPool } from '../../src/pool/KeyPool.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import { jsonFileStorage, type StorageQuarantineEvent } from '../../src/storage/json-file.js';
import { memoryStorage } from '../../src/storage/memory.js';
import type { StorageRecordEvent, StorageRecordListener } from '../../src/storage/problems.js';
import { MAX_STORED_TIME } from '../../src/storage/record-shape.js';
import { sqliteStorage } from '../../src/storage/sqlite.js';
import type { KeyRecord, StorageAdapter } from '../../src/storage/types.js';
import { CoalescingWriter } from '../../src/storage/writer.js';
import {
  type AdapterFactory,
  ALL_FACTORIES,
  ID_A,
  ID_B,
  ID_C,
  KEY_A,
  KEY_B,
  KEY_C,
  makeRecord,
  makeTempDir,
  removeTempDirs,
} from './support.js';

afterEach(removeTempDirs);

/** Records that would not load: what an unchecked write of an in-memory `Infinity` or `NaN` leaves. */
const UNLOADABLE: readonly (readonly [string, KeyRecord])[] = [
  ['an infinite cooldown', makeRecord(ID_A, { state: 'cooling', reason: 'budget', cooldownUntil: Infinity })],
  ['a NaN recovery time', makeRecord(ID_A, { recoveryAt: Number.NaN })],
  ['a negative counter', makeRecord(ID_A, { successes: -1 })],
  ['an infinite latency', makeRecord(ID_A, { latencyEwma: Infinity })],
  ['an infinite budget meter', makeRecord(ID_A, { budget: { requestsAt: 0, tokensAt: Infinity, dayAt: 0 } })],
  ['an unknown state', { ...makeRecord(ID_A), state: 'asleep' as KeyRecord['state'] }],
  ['another format version', { ...makeRecord(ID_A), v: 2 }],
];

const REVOKED_A = makeRecord(ID_A, { state: 'exhausted', reason: 'revoked', failures: 1 });

describe.each(ALL_FACTORIES)('$name store: nothing it writes is unreadable', (factory: AdapterFactory) => {
  it.each(UNLOADABLE)('refuses a record with %s and writes nothing of that call', async (_, bad) => {
    const adapter = factory.create(await makeTempDir()).open();
    const error = await adapter.save([makeRecord(ID_B), bad]).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StorageError);
    expect((error as Error).message).toContain(ID_A);
    expect((await adapter.load([ID_A, ID_B])).size).toBe(0);
    // The store is still whole: the next good write lands and loads.
    await adapter.save([makeRecord(ID_B, { successes: 2 })]);
    expect((await adapter.load([ID_B])).get(ID_B)?.successes).toBe(2);
    await adapter.close?.();
  });

  it.each(['paced', 'slow-start', 'rate-limited', 'quota'] as const)(
    'saves and loads a key resting with reason %s, as every reason a key can hold',
    async (reason) => {
      const adapter = factory.create(await makeTempDir()).open();
      const resting = makeRecord(ID_A, { state: 'cooling', reason, cooldownUntil: 5_000 });
      await adapter.save([resting]);
      expect((await adapter.load([ID_A])).get(ID_A)?.reason).toBe(reason);
      await adapter.close?.();
    },
  );

  it('stores only the fields of a record, so that what is saved is what loads', async () => {
    const adapter = factory.create(await makeTempDir()).open();
    const withExtra = { ...makeRecord(ID_A, { successes: 1 }), secretive: 'not a record field' };
    await adapter.save([withExtra]);
    expect((await adapter.load([ID_A])).get(ID_A)).toEqual(makeRecord(ID_A, { successes: 1 }));
    await adapter.close?.();
  });
});

describe('a pool whose keys hold deadlines no store can keep', () => {
  const STORES: readonly (readonly [string, (dir: string) => StorageAdapter])[] = [
    ['json-file', (dir) => jsonFileStorage(join(dir, 'keys.json'))],
    ['sqlite', (dir) => sqliteStorage(join(dir, 'keys.db'))],
  ];

  it.each(STORES)('%s: the store opens again, the revoked key stays revoked', async (_, open) => {
    const dir = await makeTempDir();
    const keys = [{ key: KEY_A }, { key: KEY_B, tpm: 1_000 }, { key: KEY_C }];
    const pool = await KeyPool.create({ keys, storage: open(dir), strategy: 'round-robin', seed: 1 });
    (await pool.acquire()).fail(new Error('401'), { kind: 'revoked' });
    // However the pool treats these (a refusal, or a budget wait "for ever"), the store must hold.
    for (const tokens of [Number.NaN, 1e308]) {
      try {
        pool.tryAcquire({ tokens })?.release();
      } catch (error) {
        expect(error).toBeInstanceOf(Error);
      }
    }
    await pool.close();
    const again = await KeyPool.create({ keys, storage: open(dir) });
    const states = again.snapshot().keys.map((key) => [key.keyId, key.state, key.reason]);
    expect(states).toContainEqual([ID_A, 'exhausted', 'revoked']);
    await again.close();
  });
});

describe('the coalescing writer', () => {
  it('stores a record holding an infinite deadline as the latest storable time, and says so', async () => {
    const storage = memoryStorage();
    const errors: [StorageError, number][] = [];
    const writer = new CoalescingWriter({
      adapter: storage,
      clock: new VirtualClock(),
      flushIntervalMs: 1_000,
      build: (keyId) =>
        keyId === ID_A
          ? makeRecord(ID_A, {
              state: 'cooling',
              reason: 'budget',
              cooldownUntil: Infinity,
              recoveryAt: Number.NaN,
            })
          : makeRecord(keyId, { successes: 5 }),
      onError: (error, attempt) => errors.push([error, attempt]),
    });
    writer.mark(ID_A, false);
    writer.mark(ID_B, false);
    await writer.flush();
    const loaded = await storage.load([ID_A, ID_B]);
    expect(loaded.get(ID_A)).toMatchObject({
      state: 'cooling',
      cooldownUntil: MAX_STORED_TIME,
      recoveryAt: 0,
    });
    expect(loaded.get(ID_B)?.successes).toBe(5);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.[1]).toBe(0);
    expect(errors[0]?.[0].message).toMatch(
      new RegExp(`key ${ID_A}.*\`cooldownUntil\` Infinity → ${MAX_STORED_TIME}`),
    );
  });
});

/** The record of A as an unchecked writer left it: `JSON.stringify` writes `Infinity` as `null`. */
function nulledRecordOf(record: KeyRecord): Record<string, unknown> {
  return { ...record, cooldownUntil: null };
}

describe.each([
  {
    name: 'json-file',
    async write(dir: string, rows: Record<string, unknown>): Promise<string> {
      const path = join(dir, 'keys.json');
      await writeFile(path, JSON.stringify({ format: 'keymesh', version: 1, keys: rows }));
      return path;
    },
    open: (path: string, onBadRecord?: StorageRecordListener) =>
      jsonFileStorage(path, { onBadRecord, onCorrupt: 'quarantine' }),
  },
  {
    name: 'sqlite',
    async write(dir: string, rows: Record<string, unknown>): Promise<string> {
      const path = join(dir, 'keys.db');
      const seeding = sqliteStorage(path);
      await seeding.save([makeRecord(ID_C)]);
      await seeding.close?.();
      const db = new Database(path);
      const upsert = db.prepare(
        'INSERT OR REPLACE INTO keymesh_keys (key_id, record, updated_at, writer, origin, seq) VALUES (?, ?, 0, ?, ?, 1)',
      );
      for (const [keyId, value] of Object.entries(rows))
        upsert.run(keyId, JSON.stringify(value), 'test', 'test');
      db.close();
      return path;
    },
    open: (path: string, onBadRecord?: StorageRecordListener) => sqliteStorage(path, { onBadRecord }),
  },
])('$name store with one bad record', ({ write, open }) => {
  it('costs only that key: the others load, a revoked key stays revoked, and it is reported', async () => {
    const dir = await makeTempDir();
    const path = await write(dir, {
      [ID_A]: nulledRecordOf(REVOKED_A),
      [ID_B]: { ...makeRecord(ID_B), state: 'asleep' },
      [ID_C]: makeRecord(ID_C, { successes: 7 }),
    });
    const events: StorageRecordEvent[] = [];
    const storage = open(path, (event) => events.push(event));
    const pool = await KeyPool.create({ keys: [KEY_A, KEY_B, KEY_C], storage, clock: new VirtualClock() });
    const byId = new Map(pool.snapshot().keys.map((key) => [key.keyId, key]));
    expect(byId.get(ID_A)).toMatchObject({ state: 'exhausted', reason: 'revoked' });
    expect(byId.get(ID_B)).toMatchObject({ state: 'available', reason: null });
    expect(byId.get(ID_C)?.successes).toBe(7);
    expect(events.map((event) => [event.type, event.keyId])).toEqual([
      ['record-repaired', ID_A],
      ['record-dropped', ID_B],
    ]);
    expect(events[0]?.problem).toContain('`cooldownUntil` null → 0');
    await pool.close();
  });

  it('is a process warning when nobody listens', async () => {
    const dir = await makeTempDir();
    const path = await write(dir, { [ID_A]: nulledRecordOf(REVOKED_A) });
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const storage = open(path);
      expect((await storage.load([ID_A])).get(ID_A)?.reason).toBe('revoked');
      await new Promise((resolve) => setImmediate(resolve));
      await storage.close?.();
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.map((warning) => (warning as Error & { code?: string }).code)).toEqual([
      'KEYMESH_STORAGE',
    ]);
    expect(warnings[0]?.message).toContain(ID_A);
  });
});

describe('a quarantined JSON file', () => {
  it('is said in a process warning when nobody listens, never silently', async () => {
    const path = join(await makeTempDir(), 'keys.json');
    await writeFile(path, '{"format": "keymesh", "version": 1, "keys": {');
    const warnings: Error[] = [];
    const onWarning = (warning: Error) => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      expect((await jsonFileStorage(path, { onCorrupt: 'quarantine' }).load([ID_A])).size).toBe(0);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.message).toMatch(/moved it to .*keys\.json\.corrupt-.*keys it held start fresh/);
  });

  it('is not what one bad record leads to', async () => {
    const path = join(await makeTempDir(), 'keys.json');
    await writeFile(
      path,
      JSON.stringify({ format: 'keymesh', version: 1, keys: { [ID_A]: nulledRecordOf(REVOKED_A) } }),
    );
    const quarantined: StorageQuarantineEvent[] = [];
    const storage = jsonFileStorage(path, {
      onCorrupt: 'quarantine',
      onQuarantine: (event) => quarantined.push(event),
      onBadRecord: () => {},
    });
    expect((await storage.load([ID_A])).get(ID_A)?.reason).toBe('revoked');
    expect(quarantined).toEqual([]);
  });
});
