import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint } from '../../src/fingerprint.js';
import { KeyPool } from '../../src/pool/KeyPool.js';
import { createRandom } from '../../src/sim/random.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import { sqliteStorage } from '../../src/storage/sqlite.js';
import { bundleChild, type ChildBundle, ChildRun } from './child-process.js';
import { ALL_FACTORIES, makeRecord, makeTempDir, removeTempDirs } from './support.js';

const ROUNDS = 20;
const KEY_COUNT = 40;
const START_AT = 1_700_000_000_000;
const CHILD_KEYS = ['sk-test-fake-0000000000000001', 'sk-test-fake-0000000000000002'];

let bundle: ChildBundle;
let bundleWithoutDriver: ChildBundle;
const running = new Set<ChildRun>();

beforeAll(async () => {
  [bundle, bundleWithoutDriver] = await Promise.all([bundleChild(), bundleChild({ withDriver: false })]);
});

afterEach(async () => {
  await Promise.all([...running].map((child) => child.kill()));
  running.clear();
  await removeTempDirs();
});

afterAll(async () => {
  await Promise.all([bundle?.remove(), bundleWithoutDriver?.remove()]);
});

function startChild(from: ChildBundle, args: readonly string[]): ChildRun {
  const child = new ChildRun(from, args);
  running.add(child);
  return child;
}

function idOf(n: number): string {
  return `k_${n.toString(16).padStart(16, '0')}`;
}

const FILE_FACTORIES = ALL_FACTORIES.filter((factory) => factory.name !== 'memory');

describe.each(FILE_FACTORIES)('$name store killed mid-write', (factory) => {
  it(`loads a state no older than the last completed flush after each of ${ROUNDS} SIGKILLs`, async () => {
    const dir = await makeTempDir();
    const store = factory.create(dir);
    const ids = Array.from({ length: KEY_COUNT }, (_, i) => idOf(i + 1));
    // A key this writer never touches: it must survive every crash.
    const bystander = makeRecord('k_ffffffffffffffff', { state: 'cooling', reason: 'rate-limited' });
    const seed = store.open();
    await seed.save([bystander]);
    await seed.close?.();
    const path = factory.name === 'sqlite' ? join(dir, 'state', 'keys.db') : join(dir, 'state', 'keys.json');
    const random = createRandom(20_250_101);
    let lastFlushed = 0;

    for (let round = 1; round <= ROUNDS; round++) {
      const child = startChild(bundle, ['write-loop', factory.name, path, String(KEY_COUNT)]);
      expect(await child.nextLine()).toBe(`started ${lastFlushed + 1}`);
      const flushesToSee = 1 + Math.floor(random.next() * 6);
      for (let seen = 0; seen < flushesToSee; seen++) {
        const line = await child.nextLine();
        lastFlushed = Number(line.replace('flushed ', ''));
      }
      // A few turns of the event loop more, so that the kill lands anywhere in the next write.
      const turns = Math.floor(random.next() * 4);
      for (let turn = 0; turn < turns; turn++) await new Promise((resolve) => setImmediate(resolve));
      await child.kill();
      running.delete(child);

      const reader = store.open();
      const loaded = await reader.load([...ids, bystander.keyId]);
      await reader.close?.();
      const counts = new Set(ids.map((keyId) => loaded.get(keyId)?.successes));
      expect(counts.size, `round ${round}: one save is all or nothing`).toBe(1);
      const [stored = 0] = counts;
      expect(stored, `round ${round}: no older than the last completed flush`).toBeGreaterThanOrEqual(
        lastFlushed,
      );
      expect(loaded.get(bystander.keyId)).toEqual(bystander);
      lastFlushed = stored;
    }
    if (factory.name === 'json-file') {
      expect(await readdir(join(dir, 'state'))).toEqual(['keys.json']); // stale temp files cleaned
    }
  });
});

describe('two processes on one SQLite file', () => {
  it('honours the rate limit and the exhaustion another running process recorded', async () => {
    const dir = await makeTempDir();
    const path = join(dir, 'keys.db');
    const other = startChild(bundle, ['hold-limits', path, String(START_AT)]);
    const ready = await other.nextLine();
    const theirs = JSON.parse(ready.replace('ready ', '')) as {
      keyId: string;
      state: string;
      cooldownUntil: number;
      recoveryAt: number;
    }[];
    const cooling = theirs.find((key) => key.state === 'cooling');
    const exhausted = theirs.find((key) => key.state === 'exhausted');
    if (!cooling || !exhausted) throw new Error(`unexpected child state ${ready}`);

    const clock = new VirtualClock(START_AT + 5_000);
    const pool = await KeyPool.create({
      keys: CHILD_KEYS,
      storage: sqliteStorage(path),
      clock,
      maxFailures: 2,
      seed: 2,
    });
    const byId = (keyId: string) => pool.snapshot().keys.find((key) => key.keyId === keyId);
    expect(byId(cooling.keyId)).toMatchObject({ state: 'cooling', cooldownUntil: cooling.cooldownUntil });
    expect(byId(exhausted.keyId)).toMatchObject({ state: 'exhausted', recoveryAt: exhausted.recoveryAt });
    expect(pool.tryAcquire()).toBeUndefined();
    expect(CHILD_KEYS.map(fingerprint).sort()).toEqual(theirs.map((key) => key.keyId).sort());

    clock.advanceTo(cooling.cooldownUntil);
    expect(byId(cooling.keyId)?.state).toBe('available');
    await pool.close();
    other.process.stdin?.end();
    expect(await other.exited).toEqual({ code: 0, signal: null });
    running.delete(other);
  });
});

describe('without better-sqlite3', () => {
  it('sqliteStorage fails with a StorageError telling how to install it', async () => {
    const dir = await makeTempDir();
    const child = startChild(bundleWithoutDriver, ['open-sqlite', join(dir, 'keys.db')]);
    const line = await child.nextLine();
    expect(line.startsWith('error ')).toBe(true);
    const error = JSON.parse(line.slice('error '.length)) as { name: string; message: string };
    expect(error.name).toBe('StorageError');
    expect(error.message).toContain('npm install better-sqlite3@12');
    expect(await readdir(dir)).toEqual([]); // nothing created
  });
});
