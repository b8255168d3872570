import { statSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { extname, join, relative, resolve } from 'node:path';
import { JSON_FILE_FORMAT, JSON_FILE_VERSION, jsonFileStorage } from '../storage/json-file.js';
import { memoryStorage } from '../storage/memory.js';
import { checkStoredRecord } from '../storage/record-shape.js';
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
 * for, so this reads the medium itself, read-only: it never creates, migrates or repairs a store).
 * A bare path of an existing file is sniffed: an SQLite header means SQLite whatever its name.
 *
 * @throws CliError with {@link EXIT.store} when the store is missing, unreadable, corrupt or newer.
 */
export async function readStoredRecords(spec: StoreSpec): Promise<KeyRecord[]> {
  if (spec.kind === 'memory') {
    throw new CliError(EXIT.usage, 'A memory store lives only inside the process that made it: give a file');
  }
  const kind = (await startsWithSqliteHeader(spec.path)) ? 'sqlite' : spec.kind;
  return kind === 'sqlite' ? readSqlite(spec.path) : readJson(spec.path);
}

async function startsWithSqliteHeader(path: string): Promise<boolean> {
  return (await fileStart(path, SQLITE_MAGIC.length)) === SQLITE_MAGIC;
}

/** The first `length` bytes of a file (latin-1), or `undefined` when it is shorter or unreadable. */
async function fileStart(path: string, length: number): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(path, 'r');
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return bytesRead === buffer.length ? buffer.toString('latin1') : undefined;
  } catch {
    return undefined;
  } finally {
    await handle?.close();
  }
}

function missing(path: string): CliError {
  return new CliError(
    EXIT.store,
    `No store at ${resolve(path)}: nothing has been saved there yet (run the demo first, or give --store the path a pool writes to)`,
  );
}

async function readJson(path: string): Promise<KeyRecord[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (isNotFound(error)) throw missing(path);
    throw new CliError(EXIT.store, `Cannot read ${resolve(path)}: ${messageOf(error)}`, { cause: error });
  }
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
  return Object.entries(json.keys).map(([keyId, value]) => checked(value, keyId, `json:${resolve(path)}`));
}

async function readSqlite(path: string): Promise<KeyRecord[]> {
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
  let db: InstanceType<typeof Driver>;
  try {
    db = new Driver(path, { readonly: true, fileMustExist: true });
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
    return rows.map((row) => {
      const keyId = String(row.keyId);
      let value: unknown;
      try {
        value = JSON.parse(String(row.record));
      } catch {
        throw new CliError(EXIT.store, `${resolve(path)}: the record of key ${keyId} is not valid JSON`);
      }
      return checked(value, keyId, `sqlite:${resolve(path)}`);
    });
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(EXIT.store, `Cannot read ${resolve(path)}: ${messageOf(error)}`, { cause: error });
  } finally {
    db.close();
  }
}

function checked(value: unknown, keyId: string, storeName: string): KeyRecord {
  try {
    const result = checkStoredRecord(value, keyId, storeName);
    if (!result.ok) throw new CliError(EXIT.store, `${storeName}: ${result.problem}`);
    return result.record;
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(EXIT.store, `${storeName}: ${messageOf(error)}`, { cause: error });
  }
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
