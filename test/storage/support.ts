import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerprint } from '../../src/fingerprint.js';
import { type JsonFileStorageOptions, jsonFileStorage } from '../../src/storage/json-file.js';
import { memoryStorage } from '../../src/storage/memory.js';
import { type SqliteStorageOptions, sqliteStorage } from '../../src/storage/sqlite.js';
import { KEY_RECORD_VERSION, type KeyRecord, type StorageAdapter } from '../../src/storage/types.js';

export const KEY_A = 'sk-test-fake-0000000000000001';
export const KEY_B = 'sk-test-fake-0000000000000002';
export const KEY_C = 'sk-test-fake-0000000000000003';
export const ID_A = fingerprint(KEY_A);
export const ID_B = fingerprint(KEY_B);
export const ID_C = fingerprint(KEY_C);

/** A temp folder per test, removed by {@link removeTempDirs} in `afterEach`. */
const tempDirs: string[] = [];

export async function makeTempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'keymesh-storage-'));
  tempDirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** A well-formed record; `overrides` set the fields a test cares about. */
export function makeRecord(keyId: string, overrides: Partial<KeyRecord> = {}): KeyRecord {
  return {
    v: KEY_RECORD_VERSION,
    keyId,
    label: null,
    state: 'available',
    reason: null,
    cooldownUntil: 0,
    recoveryAt: 0,
    recoveryDelayMs: 0,
    consecutiveFailures: 0,
    rateLimitStreak: 0,
    successes: 0,
    failures: 0,
    rateLimits: 0,
    latencyEwma: null,
    lastUsedAt: 0,
    lastPenaltyAt: 0,
    updatedAt: 1_700_000_000_000,
    writer: 'test',
    ...overrides,
  };
}

/** One store on some medium. `open()` is what a process does at start: for memory, the same instance. */
export interface Store {
  open(): StorageAdapter;
  /** Every file of the store on disk (none for memory). */
  files(): Promise<string[]>;
}

export interface AdapterFactory {
  readonly name: 'memory' | 'json-file' | 'sqlite';
  create(dir: string): Store;
}

async function filesIn(dir: string): Promise<string[]> {
  return (await readdir(dir)).map((name) => join(dir, name));
}

export const memoryFactory: AdapterFactory = {
  name: 'memory',
  create() {
    const adapter = memoryStorage();
    return { open: () => adapter, files: async () => [] };
  },
};

export function jsonFactory(options: JsonFileStorageOptions = {}): AdapterFactory {
  return {
    name: 'json-file',
    create(dir) {
      const path = join(dir, 'state', 'keys.json');
      return { open: () => jsonFileStorage(path, options), files: () => filesIn(join(dir, 'state')) };
    },
  };
}

export function sqliteFactory(options: SqliteStorageOptions = {}): AdapterFactory {
  return {
    name: 'sqlite',
    create(dir) {
      const path = join(dir, 'state', 'keys.db');
      return { open: () => sqliteStorage(path, options), files: () => filesIn(join(dir, 'state')) };
    },
  };
}

export const ALL_FACTORIES: readonly AdapterFactory[] = [memoryFactory, jsonFactory(), sqliteFactory()];

/** How {@link TrackedAdapter} makes saves go wrong. */
export type SaveFault = 'none' | 'throw' | 'hang' | 'half-write';

/**
 * Wraps an adapter to see its writes: how many are in flight, and a way to wait until none is.
 * `failNext(n)` makes the next `n` saves fail the way a full disk would; `fault` makes every save
 * throw, hang (until `releaseHung()`, when it goes through late) or write half its batch and throw.
 */
export class TrackedAdapter implements StorageAdapter {
  readonly name: string;
  readonly #inner: StorageAdapter;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #hung: (() => void)[] = [];
  #failures = 0;
  saves = 0;
  fault: SaveFault = 'none';

  constructor(inner: StorageAdapter) {
    this.#inner = inner;
    this.name = inner.name;
  }

  failNext(count: number): void {
    this.#failures = count;
  }

  load(keyIds: readonly string[]): Promise<ReadonlyMap<string, KeyRecord>> {
    return this.#track(this.#inner.load(keyIds));
  }

  save(records: readonly KeyRecord[]): Promise<void> {
    this.saves++;
    if (this.#failures > 0 || this.fault === 'throw') {
      this.#failures = Math.max(0, this.#failures - 1);
      return this.#track(Promise.reject(new Error('ENOSPC: no space left on device (simulated)')));
    }
    if (this.fault === 'hang') {
      return new Promise((resolve, reject) => {
        this.#hung.push(() => {
          this.#track(this.#inner.save(records)).then(resolve, reject);
        });
      });
    }
    if (this.fault === 'half-write') {
      const half = records.slice(0, Math.ceil(records.length / 2));
      return this.#track(
        this.#inner.save(half).then(() => {
          throw new Error('EIO: i/o error after half the batch (simulated)');
        }),
      );
    }
    return this.#track(this.#inner.save(records));
  }

  /** Lets every hung save go through, late. */
  releaseHung(): void {
    for (const release of this.#hung.splice(0)) release();
  }

  close(): Promise<void> {
    return this.#inner.close?.() ?? Promise.resolve();
  }

  /** Resolves once no load or save is in flight and the callbacks they trigger have run. */
  async settled(): Promise<void> {
    do {
      await Promise.allSettled([...this.#inFlight]);
      // Let the pool's writer run its continuations (they may start another write).
      await new Promise((resolve) => setImmediate(resolve));
    } while (this.#inFlight.size > 0);
  }

  #track<T>(operation: Promise<T>): Promise<T> {
    this.#inFlight.add(operation);
    const done = () => this.#inFlight.delete(operation);
    operation.then(done, done);
    return operation;
  }
}

/** Every byte of every file, to look for secrets in. */
export async function readAll(files: readonly string[]): Promise<Buffer> {
  return Buffer.concat(await Promise.all(files.map((file) => readFile(file))));
}
