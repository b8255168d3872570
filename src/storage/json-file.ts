import { resolve } from 'node:path';
import { type Clock, systemClock } from '../clock.js';
import { InvalidConfigError, StorageCorruptError, StorageError } from '../errors.js';
import {
  type FileStamp,
  moveAside,
  readWithStamp,
  removeStaleTempFiles,
  sameStamp,
  statStamp,
  writeFileAtomic,
} from './file-utils.js';
import { readStoredRecord, type StorageRecordListener, tell } from './problems.js';
import { recordToStore } from './record-shape.js';
import type { KeyRecord, StorageAdapter } from './types.js';

/** `"format"` of a KeyMesh state file: `{ "format": "keymesh", "version": 1, "keys": { "<keyId>": KeyRecord } }`. */
export const JSON_FILE_FORMAT = 'keymesh';
/** `"version"` of the state file layout this KeyMesh reads and writes. */
export const JSON_FILE_VERSION = 1;

/** Told when a corrupt state file was moved aside (`onCorrupt: 'quarantine'`). */
export interface StorageQuarantineEvent {
  readonly type: 'quarantined';
  /** The store's file. */
  readonly path: string;
  /** Where the corrupt file now is (`<path>.corrupt-<time>`); it is never deleted. */
  readonly movedTo: string;
  /** What was wrong with it. */
  readonly error: StorageCorruptError;
}

/** Options of {@link jsonFileStorage}. */
export interface JsonFileStorageOptions {
  /**
   * What to do with a file that is not valid KeyMesh state.
   *
   * - `'throw'` (default): `load()` and `save()` reject with a `StorageCorruptError` naming the
   *   path, and the file is left exactly as it is for you to inspect, repair or delete.
   * - `'quarantine'`: the file is renamed to `<path>.corrupt-<time>` (never deleted, never
   *   overwritten), {@link JsonFileStorageOptions.onQuarantine} is told, and the store goes on
   *   without it (empty at start; with what this process knows, later).
   *
   * A file written by a *newer* KeyMesh is never called corrupt: it is a `StorageError` either way.
   */
  readonly onCorrupt?: 'throw' | 'quarantine';
  /**
   * Called after a corrupt file was moved aside. Default: nothing. Runs synchronously inside
   * `load()`/`save()`; an exception it throws is re-thrown asynchronously, like a pool listener's.
   */
  readonly onQuarantine?: (event: StorageQuarantineEvent) => void;
  /**
   * Called when one key's record cannot be loaded as written (see `StorageRecordEvent`): it
   * is repaired or dropped, and no other key's record is affected. Default: a process warning
   * (code `KEYMESH_STORAGE`). Runs synchronously inside `load()`/`save()`.
   */
  readonly onBadRecord?: StorageRecordListener;
  /** Names quarantined files by time. Default: the system clock. */
  readonly clock?: Clock;
}

interface CachedFile {
  readonly records: ReadonlyMap<string, KeyRecord>;
  /** Top-level fields other than format/version/keys, kept so that a rewrite drops nothing. */
  readonly extra: Readonly<Record<string, unknown>>;
  /** The version on disk this mirrors; `undefined` when there was no file. */
  readonly stamp: FileStamp | undefined;
}

type Parsed =
  | { readonly kind: 'ok'; readonly records: Map<string, KeyRecord>; readonly extra: Record<string, unknown> }
  | { readonly kind: 'corrupt'; readonly problem: string; readonly cause?: unknown }
  | { readonly kind: 'newer'; readonly version: number };

const RESERVED_FIELDS: ReadonlySet<string> = new Set(['format', 'version', 'keys']);

/**
 * Per-key state in one JSON file, for one process at a time (to share state between processes, use
 * `sqliteStorage`).
 *
 * - Crash-safe: every write replaces the file atomically (temp file in the same folder, fsync,
 *   rename, fsync of the folder), so a crash or `SIGKILL` at any instant leaves the last complete
 *   write. Temp files left by a killed process are removed on the next open.
 * - Private: the file is mode 0600 (its folder, when created, 0700). It never holds a secret.
 * - Coalesced: the pool writes through its coalescing writer (state changes at the next tick,
 *   counters at most once per key per the pool's `flushIntervalMs`, everything on `close()`), and
 *   the adapter serialises its own writes.
 * - Nothing is dropped: the file keeps records of keys this pool does not configure, and a file
 *   changed or replaced by someone else since the last write is re-read and merged before writing
 *   (per key, the newer record wins; a key missing from it keeps what this process knows). A file
 *   deleted while in use is written again, whole, at the next write.
 * - A corrupt file is a `StorageCorruptError` naming the path, or is quarantined when asked
 *   (`onCorrupt`, and then always told: `onQuarantine` or a process warning). It is never silently
 *   replaced. One key's bad record does not make the file corrupt: it costs that key alone (repaired
 *   or dropped, and reported: `onBadRecord`). A file nested too deeply to be written again is corrupt.
 * - Records are checked on the way in as strictly as on the way out: `save()` rejects a record that
 *   would not load (`StorageError`) and writes nothing of that call.
 * - Only a regular file is read: a named pipe, device or folder at the path is a `StorageError`
 *   naming it, at once (never a read that blocks).
 *
 * @param path the state file, e.g. `.keymesh/keys.json`; relative paths resolve against the working
 *   directory at creation. Missing folders are created on the first write.
 */
export function jsonFileStorage(path: string, options: JsonFileStorageOptions = {}): StorageAdapter {
  return new JsonFileStorage(path, options);
}

class JsonFileStorage implements StorageAdapter {
  readonly name: string;
  readonly #path: string;
  readonly #onCorrupt: 'throw' | 'quarantine';
  readonly #onQuarantine: ((event: StorageQuarantineEvent) => void) | undefined;
  readonly #onBadRecord: StorageRecordListener | undefined;
  readonly #clock: Clock;
  #cache: CachedFile | undefined;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(path: string, options: JsonFileStorageOptions) {
    if (typeof path !== 'string' || path.length === 0) {
      throw new InvalidConfigError('path', 'expected the path of the JSON state file');
    }
    const onCorrupt = options.onCorrupt ?? 'throw';
    if (onCorrupt !== 'throw' && onCorrupt !== 'quarantine') {
      throw new InvalidConfigError('onCorrupt', "expected 'throw' or 'quarantine'");
    }
    for (const field of ['onQuarantine', 'onBadRecord'] as const) {
      if (options[field] !== undefined && typeof options[field] !== 'function') {
        throw new InvalidConfigError(field, 'expected a function');
      }
    }
    this.#path = resolve(path);
    this.name = `json-file:${this.#path}`;
    this.#onCorrupt = onCorrupt;
    this.#onQuarantine = options.onQuarantine;
    this.#onBadRecord = options.onBadRecord;
    this.#clock = options.clock ?? systemClock;
  }

  load(keyIds: readonly string[]): Promise<ReadonlyMap<string, KeyRecord>> {
    return this.#serially(async () => {
      const file = await this.#current();
      const found = new Map<string, KeyRecord>();
      for (const keyId of keyIds) {
        const record = file.records.get(keyId);
        if (record) found.set(keyId, { ...record });
      }
      return found;
    });
  }

  save(batch: readonly KeyRecord[]): Promise<void> {
    return this.#serially(async () => {
      // Checked before anything is read or written: a record that would not load is never written.
      const checked = Array.from(batch, (record) => recordToStore(record, this.name));
      if (checked.length === 0) return;
      const file = await this.#current();
      const records = new Map(file.records);
      for (const record of checked) records.set(record.keyId, record);
      let stamp: FileStamp;
      try {
        stamp = await writeFileAtomic(this.#path, serialize(records, file.extra));
      } catch (cause) {
        throw new StorageError(`Could not write key state to ${this.#path}`, cause);
      }
      this.#cache = { records, extra: file.extra, stamp };
    });
  }

  /** Waits for writes in progress. The adapter may be used again afterwards (it re-reads the file). */
  async close(): Promise<void> {
    await this.#tail.catch(() => {});
    this.#cache = undefined;
  }

  // One operation at a time: a save computes the next file from the previous one.
  #serially<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(operation, operation);
    this.#tail = run.catch(() => {});
    return run;
  }

  /** The file's contents, from the cache unless the file changed on disk since it was read or written. */
  async #current(): Promise<CachedFile> {
    const cache = this.#cache;
    if (cache === undefined) await removeStaleTempFiles(this.#path);
    let onDisk: FileStamp | undefined;
    try {
      onDisk = await statStamp(this.#path);
    } catch (cause) {
      throw new StorageError(`Could not read key state from ${this.#path}`, cause);
    }
    // A file deleted under us: what this process knows is all there is; the next write restores it.
    if (cache && (onDisk === undefined || sameStamp(onDisk, cache.stamp))) return cache;
    if (onDisk === undefined) {
      const empty: CachedFile = { records: new Map(), extra: {}, stamp: undefined };
      this.#cache = empty;
      return empty;
    }
    let read: Awaited<ReturnType<typeof readWithStamp>>;
    try {
      read = await readWithStamp(this.#path);
    } catch (cause) {
      if (cause instanceof StorageError) throw cause;
      throw new StorageError(`Could not read key state from ${this.#path}`, cause);
    }
    if (read === undefined) {
      // Deleted between the stat and the read.
      const empty: CachedFile = cache ?? { records: new Map(), extra: {}, stamp: undefined };
      this.#cache = empty;
      return empty;
    }
    const parsed = parse(read.text, this.name, this.#onBadRecord);
    if (parsed.kind === 'newer') {
      throw new StorageError(
        `Key state at ${this.#path} was written by a newer KeyMesh (file version ${parsed.version}; this version reads ${JSON_FILE_VERSION}). Upgrade KeyMesh or use another file.`,
      );
    }
    if (parsed.kind === 'corrupt') {
      const error = new StorageCorruptError(this.#path, parsed.problem, parsed.cause);
      if (this.#onCorrupt === 'throw') throw error;
      await this.#quarantine(error);
      const fresh: CachedFile = {
        records: cache?.records ?? new Map(),
        extra: cache?.extra ?? {},
        stamp: undefined,
      };
      this.#cache = fresh;
      return fresh;
    }
    // Someone else wrote since we last did (or replaced the file): their records stay, and what
    // this process knows stays where it is newer or missing there; a batch is applied on top at save.
    const records = parsed.records;
    for (const [keyId, ours] of cache?.records ?? []) {
      const theirs = records.get(keyId);
      if (theirs === undefined || theirs.updatedAt < ours.updatedAt) records.set(keyId, ours);
    }
    const file: CachedFile = { records, extra: parsed.extra, stamp: read.stamp };
    this.#cache = file;
    return file;
  }

  async #quarantine(error: StorageCorruptError): Promise<void> {
    const at = new Date(this.#clock.now()).toISOString().replace(/[:.]/g, '-');
    let movedTo: string;
    try {
      movedTo = await moveAside(this.#path, at);
    } catch (cause) {
      throw new StorageError(
        `Key state at ${this.#path} is corrupt and could not be moved aside; fix or remove it`,
        cause,
      );
    }
    tell(
      this.#onQuarantine,
      { type: 'quarantined', path: this.#path, movedTo, error },
      `KeyMesh: ${error.message}; moved it to ${movedTo} and started without it (keys it held start fresh)`,
    );
  }
}

function parse(text: string, store: string, onBadRecord: StorageRecordListener | undefined): Parsed {
  if (text.trim().length === 0) return { kind: 'corrupt', problem: 'the file is empty' };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    // The parser's message quotes the file, which could hold anything: keep it in `cause` only.
    return { kind: 'corrupt', problem: 'it is not valid JSON', cause };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'corrupt', problem: 'the top level is not an object' };
  }
  const document = value as Record<string, unknown>;
  if (document.format !== JSON_FILE_FORMAT) {
    return {
      kind: 'corrupt',
      problem: `it is not a KeyMesh state file (no "format": "${JSON_FILE_FORMAT}")`,
    };
  }
  const version = document.version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    return { kind: 'corrupt', problem: 'it has no valid "version"' };
  }
  if (version > JSON_FILE_VERSION) return { kind: 'newer', version };
  const keys = document.keys;
  if (typeof keys !== 'object' || keys === null || Array.isArray(keys)) {
    return { kind: 'corrupt', problem: '"keys" is not an object' };
  }
  const extra: Record<string, unknown> = {};
  for (const [field, fieldValue] of Object.entries(document)) {
    if (!RESERVED_FIELDS.has(field)) extra[field] = fieldValue;
  }
  // Whatever is read must be writable again: a file this KeyMesh could not rewrite is refused now,
  // not at the first save. (JSON.parse reads nesting that JSON.stringify overflows the stack on.)
  try {
    serialize(new Map(), extra);
    JSON.stringify(keys);
  } catch (cause) {
    return { kind: 'corrupt', problem: 'it nests too deeply for KeyMesh to rewrite it', cause };
  }
  const records = new Map<string, KeyRecord>();
  for (const [keyId, entry] of Object.entries(keys)) {
    // One key's bad record costs that key alone (repaired or dropped, and reported).
    const record = readStoredRecord(entry, keyId, store, onBadRecord);
    if (record) records.set(keyId, record);
  }
  return { kind: 'ok', records, extra };
}

/** One record per line: readable, diffable, and small. */
function serialize(
  records: ReadonlyMap<string, KeyRecord>,
  extra: Readonly<Record<string, unknown>>,
): string {
  const lines = [
    `  "format": ${JSON.stringify(JSON_FILE_FORMAT)}`,
    `  "version": ${JSON_FILE_VERSION}`,
    ...Object.entries(extra).map(([field, value]) => `  ${JSON.stringify(field)}: ${JSON.stringify(value)}`),
  ];
  const entries = [...records].map(
    ([keyId, record]) => `    ${JSON.stringify(keyId)}: ${JSON.stringify(record)}`,
  );
  lines.push(entries.length === 0 ? '  "keys": {}' : `  "keys": {\n${entries.join(',\n')}\n  }`);
  return `{\n${lines.join(',\n')}\n}\n`;
}
