import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, relative, resolve } from 'node:path';
import { KeyMeshError } from '../errors.js';
import { openRegularFile } from '../storage/file-utils.js';
import { JSON_FILE_FORMAT, JSON_FILE_VERSION, jsonFileStorage } from '../storage/json-file.js';
import { memoryStorage } from '../storage/memory.js';
import { readStoredRecord, type StorageRecordListener } from '../storage/problems.js';
import { SQLITE_SCHEMA_VERSION, sqliteStorage } from '../storage/sqlite.js';
import type { KeyRecord, StorageAdapter } from '../storage/types.js';
import { CliError, EXIT } from './exit-codes.js';

/** Where key state lives, as given on the command line. */
export type StoreSpec =
  | { readonly kind: 'sqlite'; readonly path: string }
  | { readonly kind: 'json'; readonly path: string }
  | { readonly kind: 'memory' };

/** The forms `--store` accepts, for help texts and errors. */
export const STORE_FORMS =
  'sqlite:<path>, json:<path>, a file path (.json → JSON file, else SQLite), or memory';

/** Where every command keeps and reads key state when `--store` is not given (SQLite). */
export const DEFAULT_SQLITE_STORE = '.keymesh/demo.db';
/** The default store when better-sqlite3 is not installed. */
export const DEFAULT_JSON_STORE = '.keymesh/demo.json';

/** How help texts describe the default store. */
export const DEFAULT_STORE_HELP = `${DEFAULT_SQLITE_STORE}, or ${DEFAULT_JSON_STORE} when better-sqlite3 is not installed`;

const SQLITE_MAGIC = 'SQLite format 3\u0000';

/**
 * Reads a `--store` value: `sqlite:<path>`, `json:<path>`, `memory`, or a bare file path (`.json`
 * → the JSON file store; anything else → SQLite).
 *
 * @throws CliError with {@link EXIT.usage}, saying what is accepted, for an empty path, a scheme
 *   other than `sqlite:` and `json:` (`postgres://…`), or a directory.
 */
export function parseStoreSpec(value: string): StoreSpec {
  if (value === 'memory') return { kind: 'memory' };
  const wrong = (problem: string) =>
    new CliError(EXIT.usage, `--store ${JSON.stringify(value)}: ${problem}. It takes ${STORE_FORMS}`);
  const match = /^(sqlite|json):(.*)$/.exec(value);
  // Two letters at least, so that a Windows drive (`C:\…`) stays a path.
  const scheme = match ? undefined : /^([a-z][a-z\d+.-]+):/i.exec(value)?.[1];
  if (scheme !== undefined) throw wrong(`unknown store scheme "${scheme}:"`);
  const kind = match
    ? (match[1] as 'sqlite' | 'json')
    : extname(value).toLowerCase() === '.json'
      ? 'json'
      : 'sqlite';
  const path = match ? (match[2] ?? '') : value;
  if (path.trim() === '') throw wrong('the path is empty');
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory() === true) {
    throw wrong(`${resolve(path)} is a directory, not a file (e.g. ${join(path, 'keys.db')})`);
  }
  return { kind, path };
}

/**
 * The store a command uses: the `--store` value (see {@link parseStoreSpec}), or, when it is not
 * given, the default every command shares — {@link DEFAULT_SQLITE_STORE}, or
 * {@link DEFAULT_JSON_STORE} when better-sqlite3 is not installed.
 *
 * @throws CliError with {@link EXIT.store} when an SQLite store is asked for and better-sqlite3 is
 *   not installed.
 */
export async function resolveStore(value: string | undefined): Promise<StoreSpec> {
  if (value === undefined) {
    return (await sqliteAvailable())
      ? { kind: 'sqlite', path: DEFAULT_SQLITE_STORE }
      : { kind: 'json', path: DEFAULT_JSON_STORE };
  }
  const spec = parseStoreSpec(value);
  if (spec.kind === 'sqlite' && !(await sqliteAvailable())) {
    throw new CliError(
      EXIT.store,
      `The SQLite store ${describeStore(spec)} needs the optional peer dependency better-sqlite3: run \`npm install better-sqlite3@12\`, or give --store json:<path>`,
    );
  }
  return spec;
}

/** `sqlite:.keymesh/demo.db` — how the CLI names a store to people. */
export function describeStore(spec: StoreSpec, cwd = process.cwd()): string {
  if (spec.kind === 'memory') return 'memory (not saved)';
  const shown = relative(cwd, resolve(spec.path)) || spec.path;
  return `${spec.kind}:${shown.startsWith('..') ? resolve(spec.path) : shown}`;
}

/** The storage adapter for a spec. */
export function openStorage(spec: StoreSpec): StorageAdapter {
  if (spec.kind === 'memory') return memoryStorage();
  return spec.kind === 'json' ? jsonFileStorage(spec.path) : sqliteStorage(spec.path);
}

/**
 * True when better-sqlite3 (the optional peer behind the SQLite store) works here: installed, and
 * its native module built for this Node.js (it is loaded on the first open, not on import).
 */
export async function sqliteAvailable(): Promise<boolean> {
  try {
    const { default: Driver } = await import('better-sqlite3');
    new Driver(':memory:').close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Every key record in a store, whichever keys it holds (adapters only load the keys they are asked
 * for, so this reads the medium itself, read-only: it never creates, migrates or repairs a store,
 * and leaves no file behind, not even SQLite's `-wal`/`-shm`). A bare path of an existing file is
 * sniffed: an SQLite header means SQLite whatever its name. One key's bad record costs that key
 * alone: `onBadRecord` is told and the others are read.
 *
 * @throws CliError with {@link EXIT.store} when the store is missing, unreadable (a named pipe or a
 *   folder included: refused at once, never a read that blocks), corrupt or newer.
 */
export async function readStoredRecords(
  spec: StoreSpec,
  onBadRecord?: StorageRecordListener,
): Promise<KeyRecord[]> {
  if (spec.kind === 'memory') {
    throw new CliError(EXIT.usage, 'A memory store lives only inside the process that made it: give a file');
  }
  const bytes = await readStoreFile(spec.path);
  const isSqlite = bytes.subarray(0, SQLITE_MAGIC.length).toString('latin1') === SQLITE_MAGIC;
  return isSqlite || spec.kind === 'sqlite'
    ? readSqlite(spec.path, bytes, onBadRecord)
    : readJson(spec.path, bytes.toString('utf8'), onBadRecord);
}

/** The whole store file, refusing anything but a regular file. */
async function readStoreFile(path: string): Promise<Buffer> {
  try {
    const handle = await openRegularFile(resolve(path));
    if (handle === undefined) throw missing(path);
    try {
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof CliError) throw error;
    if (error instanceof KeyMeshError) throw new CliError(EXIT.store, error.message, { cause: error });
    throw new CliError(EXIT.store, `Cannot read ${resolve(path)}: ${messageOf(error)}`, { cause: error });
  }
}

function missing(path: string): CliError {
  return new CliError(
    EXIT.store,
    `No store at ${resolve(path)}: nothing has been saved there yet (run the demo first, or give --store the path a pool writes to)`,
  );
}

async function readJson(
  path: string,
  text: string,
  onBadRecord: StorageRecordListener | undefined,
): Promise<KeyRecord[]> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CliError(EXIT.store, `${resolve(path)} is not valid JSON: ${messageOf(error)}`, {
      cause: error,
    });
  }
  if (!isRecord(json) || json.format !== JSON_FILE_FORMAT || !isRecord(json.keys)) {
    throw new CliError(EXIT.store, `${resolve(path)} is not a KeyMesh state file`);
  }
  if (typeof json.version !== 'number' || json.version > JSON_FILE_VERSION) {
    throw new CliError(
      EXIT.store,
      `${resolve(path)} was written by a newer KeyMesh (file version ${String(json.version)}; this one reads ${JSON_FILE_VERSION}): upgrade keymesh`,
    );
  }
  return readRecords(Object.entries(json.keys), `json:${resolve(path)}`, onBadRecord);
}

/**
 * Reads an SQLite store without leaving a trace: SQLite opens a WAL database, read-only or not, by
 * creating `-wal` and `-shm` files, and would leave them behind. With no `-wal` file no pool is
 * writing and the file holds every commit, so its bytes are read in memory; with one, a pool is at
 * work (or crashed) and the database is opened read-only beside the files it already has.
 */
async function readSqlite(
  path: string,
  bytes: Buffer,
  onBadRecord: StorageRecordListener | undefined,
): Promise<KeyRecord[]> {
  let Driver: typeof import('better-sqlite3');
  try {
    Driver = (await import('better-sqlite3')).default;
  } catch (error) {
    throw new CliError(
      EXIT.store,
      'Reading an SQLite store needs the optional peer dependency better-sqlite3: run `npm install better-sqlite3@12`',
      { cause: error },
    );
  }
  if (bytes.length === 0) return []; // created by a pool that has not written yet
  let db: InstanceType<typeof Driver>;
  try {
    if (await exists(`${path}-wal`)) {
      db = new Driver(path, { readonly: true, fileMustExist: true });
    } else {
      // Bytes 18–19 say "WAL"; an in-memory copy has no WAL, so it is read as a rollback journal.
      if (bytes.length > 19 && bytes[18] === 2 && bytes[19] === 2) bytes.fill(1, 18, 20);
      db = new Driver(bytes, { readonly: true });
    }
  } catch (error) {
    if (isNotFound(error) || /unable to open|does not exist/i.test(messageOf(error))) throw missing(path);
    throw new CliError(EXIT.store, `Cannot open ${resolve(path)}: ${messageOf(error)}`, { cause: error });
  }
  try {
    const version = db.pragma('user_version', { simple: true });
    if (typeof version === 'number' && version > SQLITE_SCHEMA_VERSION) {
      throw new CliError(
        EXIT.store,
        `${resolve(path)} was written by a newer KeyMesh (schema ${version}; this one reads ${SQLITE_SCHEMA_VERSION}): upgrade keymesh`,
      );
    }
    const table = db
      .prepare<[], { name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'keymesh_keys'",
      )
      .get();
    if (table === undefined) return [];
    const rows = db
      .prepare<[], { keyId: unknown; record: unknown }>('SELECT key_id AS keyId, record FROM keymesh_keys')
      .all();
    const entries = rows.map((row): [string, unknown] => {
      try {
        return [String(row.keyId), JSON.parse(String(row.record))];
      } catch {
        return [String(row.keyId), undefined]; // not JSON: reported as a bad record of its key
      }
    });
    return readRecords(entries, `sqlite:${resolve(path)}`, onBadRecord);
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(EXIT.store, `Cannot read ${resolve(path)}: ${messageOf(error)}`, { cause: error });
  } finally {
    db.close();
  }
}

function readRecords(
  entries: readonly (readonly [string, unknown])[],
  storeName: string,
  onBadRecord: StorageRecordListener | undefined,
): KeyRecord[] {
  const records: KeyRecord[] = [];
  for (const [keyId, value] of entries) {
    const record = readStoredRecord(value, keyId, storeName, onBadRecord ?? (() => {}));
    if (record) records.push(record);
  }
  return records;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function isNotFound(error: unknown): boolean {
  return typeof error === 'object' && error !== null && 'code' in error && error.code === 'ENOENT';
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
