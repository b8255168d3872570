import { type Clock, MAX_TIMER_MS } from '../clock.js';
import { InvalidConfigError, KeyMeshError, StorageError } from '../errors.js';
import type { KeyRecord, StorageAdapter } from './types.js';

/** Default of `storageTimeoutMs`: how long `KeyPool.create` and `addKey` wait for `load()` (ms). */
export const DEFAULT_STORAGE_TIMEOUT_MS = 30_000;

/** Checks the `storageTimeoutMs` option: a number of ms in [1, 2³¹ − 1], default 30 000. */
export function checkStorageTimeoutMs(value: unknown): number {
  if (value === undefined) return DEFAULT_STORAGE_TIMEOUT_MS;
  if (typeof value !== 'number' || !(value >= 1 && value <= MAX_TIMER_MS)) {
    throw new InvalidConfigError(
      'storageTimeoutMs',
      `expected a number of milliseconds from 1 to ${MAX_TIMER_MS}, got ${typeof value === 'number' ? String(value) : typeof value}`,
    );
  }
  return value;
}

/**
 * `storage.load(keyIds)`, bounded: rejects with a `StorageError` naming the store when it has not
 * answered within `timeoutMs` on `clock` (a store that never answers must not hang a pool's
 * creation), when it fails with anything but a `KeyMeshError`, or when it answers with something
 * other than a `Map`.
 */
export function loadRecords(
  storage: StorageAdapter,
  keyIds: readonly string[],
  timeoutMs: number,
  clock: Clock,
): Promise<ReadonlyMap<string, KeyRecord>> {
  return new Promise((resolve, reject) => {
    let done = false;
    const timer = clock.setTimeout(() => {
      if (done) return;
      done = true;
      reject(
        new StorageError(
          `Reading key state from ${storage.name} did not finish within storageTimeoutMs (${timeoutMs} ms)`,
        ),
      );
    }, timeoutMs);
    const finish = (settle: () => void) => {
      if (done) return;
      done = true;
      clock.clearTimeout(timer);
      settle();
    };
    let loading: Promise<ReadonlyMap<string, KeyRecord>>;
    try {
      loading = Promise.resolve(storage.load(keyIds));
    } catch (cause) {
      loading = Promise.reject(cause);
    }
    loading.then(
      (records) =>
        finish(() =>
          records instanceof Map
            ? resolve(records)
            : reject(new StorageError(`load() of ${storage.name} answered with something other than a Map`)),
        ),
      (cause: unknown) =>
        finish(() =>
          reject(
            cause instanceof KeyMeshError
              ? cause
              : new StorageError(`Could not read key state from ${storage.name}`, cause),
          ),
        ),
    );
  });
}
