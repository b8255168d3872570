import { randomBytes } from 'node:crypto';
import { type BigIntStats, statSync } from 'node:fs';
import { chmod, mkdir, open, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { type Clock, coarse, systemClock } from '../clock.js';
import { InvalidConfigError, KeyMeshError, StorageCorruptError, StorageError } from '../errors.js';
import { errorCode, openRegularFile, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './file-utils.js';
import { readStoredRecord, type StorageRecordListener } from './problems.js';
import { recordToStore } from './record-shape.js';
import type { KeyRecord, StorageAdapter } from './types.js';

type Driver = typeof BetterSqlite3;
type Database = BetterSqlite3.Database;

/** Options of {@link sqliteStorage}. */
export interface SqliteStorageOptions {
  /**
   * How long a write waits for another process's lock before failing (ms). Default 5 000; an
   * integer ≥ 0. better-sqlite3 is synchronous, so this also bounds how long a contended write can
   * hold up this process; transactions here last about a millisecond, so waits are short in practice.
   */
  readonly busyTimeoutMs?: number;
  /**
   * SQLite's `synchronous` setting. `'full'` (default): every committed write survives a power
   * loss. `'normal'`: survives any process crash (`SIGKILL` included) but a power loss may roll back
   * the last commits — never corrupt them. Writes are already coalesced, so `'full'` costs little.
   */
  readonly synchronous?: 'full' | 'normal';
  /**
   * How often {@link StorageAdapter.watch} checks for other processes' writes (ms). Default 1 000;
   * ≥ 10. The check is one `PRAGMA data_version` read; rows are read only after a change.
   */
  readonly watchIntervalMs?: number;
  /** Drives the watch polling. Default: the system clock (its timers never keep a process alive). */
  readonly clock?: Clock;
  /**
   * Called when one key's row cannot be loaded as written (see `StorageRecordEvent`): it is
   * repaired or dropped, and no other key's row is affected. Default: a process warning (code
   * `KEYMESH_STORAGE`). Runs synchronously inside `load()`.
   */
  readonly onBadRecord?: StorageRecordListener;
}

/** The schema version this KeyMesh writes (`PRAGMA user_version`). */
export const SQLITE_SCHEMA_VERSION = 1;

const TABLE = 'keymesh_keys';

// MIGRATIONS[n] takes a database from schema version n to n + 1, inside one write transaction.
const MIGRATIONS: readonly ((db: Database) => void)[] = [
  (db) => {
    // One row per key. `record` is the KeyRecord JSON; `seq` increases with every write across all
    // processes (commit order), which lets a watcher read only what changed; `origin` is the
    // writing adapter instance, so that a watcher skips its own rows.
    db.exec(`
      CREATE TABLE ${TABLE} (
        key_id TEXT PRIMARY KEY NOT NULL,
        record TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        writer TEXT NOT NULL,
        origin TEXT NOT NULL,
        seq INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX ${TABLE}_seq ON ${TABLE} (seq);
    `);
  },
];

type Row = { keyId: string; record: string; updatedAt: number; writer: string; origin: string };

const UPSERT = `INSERT INTO ${TABLE} (key_id, record, updated_at, writer, origin, seq)
  VALUES (@keyId, @record, @updatedAt, @writer, @origin, (SELECT coalesce(max(seq), 0) + 1 FROM ${TABLE}))
  ON CONFLICT (key_id) DO UPDATE SET
    record = excluded.record, updated_at = excluded.updated_at, writer = excluded.writer,
    origin = excluded.origin, seq = excluded.seq`;

/** Builds the statements once per connection; better-sqlite3 reuses their compiled form. */
function prepareStatements(db: Database) {
  return {
    select: db.prepare<[string], { keyId: unknown; record: unknown }>(
      `SELECT key_id AS keyId, record FROM ${TABLE} WHERE key_id IN (SELECT value FROM json_each(?))`,
    ),
    upsert: db.prepare<[Row]>(UPSERT),
    // Puts back what this instance wrote before its file was deleted or replaced, without
    // overwriting a newer row another process wrote to the replacement.
    restore: db.prepare<[Row]>(`${UPSERT} WHERE excluded.updated_at >= ${TABLE}.updated_at`),
    maxSeq: db.prepare<[], number>(`SELECT coalesce(max(seq), 0) FROM ${TABLE}`).pluck(),
    changedSince: db.prepare<[number], { keyId: unknown; record: unknown; origin: unknown; seq: unknown }>(
      `SELECT key_id AS keyId, record, origin, seq FROM ${TABLE} WHERE seq > ? ORDER BY seq`,
    ),
    dataVersion: db.prepare<[], number>('PRAGMA data_version').pluck(),
  };
}

interface Connection {
  readonly db: Database;
  readonly statements: ReturnType<typeof prepareStatements>;
  readonly saveBatch: (records: readonly KeyRecord[]) => void;
  /** Which file the connection has open: a path that no longer leads to it lost our writes. */
  readonly file: { readonly dev: bigint; readonly ino: bigint };
}

/** The `updated_at` column is a STRICT INTEGER: any finite time, truncated into SQLite's range. */
function columnTime(time: number): number {
  return Math.trunc(Math.min(Number.MAX_SAFE_INTEGER, Math.max(Number.MIN_SAFE_INTEGER, time)));
}

function rowOf(record: KeyRecord, origin: string): Row {
  return {
    keyId: record.keyId,
    record: JSON.stringify(record),
    updatedAt: columnTime(record.updatedAt),
    writer: record.writer,
    origin,
  };
}

let loadedDriver: Driver | undefined;

async function loadDriver(): Promise<Driver> {
  if (loadedDriver) return loadedDriver;
  try {
    // Loaded on first use, so that KeyMesh works without this optional peer dependency.
    loadedDriver = (await import('better-sqlite3')).default;
    return loadedDriver;
  } catch (cause) {
    const code = errorCode(cause);
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw new StorageError(
        'sqliteStorage needs the optional peer dependency better-sqlite3: run `npm install better-sqlite3@12`',
        cause,
      );
    }
    throw new StorageError(
      'better-sqlite3 is installed but could not be loaded (its native module may be built for another Node.js: run `npm rebuild better-sqlite3`, or reinstall `better-sqlite3@12`)',
      cause,
    );
  }
}

type Settings = Required<Omit<SqliteStorageOptions, 'clock' | 'onBadRecord'>>;

function checkOptions(options: SqliteStorageOptions): Settings {
  const busyTimeoutMs = options.busyTimeoutMs ?? 5_000;
  if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) {
    throw new InvalidConfigError('busyTimeoutMs', 'expected an integer number of milliseconds ≥ 0');
  }
  const synchronous = options.synchronous ?? 'full';
  if (synchronous !== 'full' && synchronous !== 'normal') {
    throw new InvalidConfigError('synchronous', "expected 'full' or 'normal'");
  }
  const watchIntervalMs = options.watchIntervalMs ?? 1_000;
  if (!Number.isFinite(watchIntervalMs) || watchIntervalMs < 10) {
    throw new InvalidConfigError('watchIntervalMs', 'expected a number of milliseconds ≥ 10');
  }
  if (options.onBadRecord !== undefined && typeof options.onBadRecord !== 'function') {
    throw new InvalidConfigError('onBadRecord', 'expected a function');
  }
  return { busyTimeoutMs, synchronous, watchIntervalMs };
}

/**
 * Per-key state in an embedded SQLite database (better-sqlite3@12, an optional peer dependency:
 * `npm install better-sqlite3@12`). Several processes may share one file: a pool created on a file
 * that another process is using restores that process's cooldowns and exhaustion, and
 * {@link StorageAdapter.watch} reports rows other processes write while both run.
 *
 * - WAL journal, `busy_timeout`, one row per key (`keymesh_keys`), a schema version in
 *   `PRAGMA user_version` with migrations, prepared statements, each `save()` one transaction.
 * - The file is created with mode 0600 (its folder, when created, 0700); SQLite gives the `-wal`
 *   and `-shm` files the database's mode. It never holds a secret.
 * - A file that is not an SQLite database is a `StorageCorruptError` naming the path; it is never
 *   replaced. A database with other tables (and no KeyMesh schema) is refused untouched. A row that
 *   is not a valid record costs its key alone: it is repaired or dropped and reported
 *   ({@link SqliteStorageOptions.onBadRecord}); the other rows load.
 * - Records are checked on the way in as strictly as on the way out: `save()` rejects a record that
 *   would not load (`StorageError`) and writes nothing of that call.
 * - The file deleted or replaced while in use (SQLite would go on writing to the deleted file) is
 *   detected at the next `load()`/`save()`: that call fails with a `StorageError` (the pool emits
 *   `storage-error` and retries), and the next opens the file at the path, creating it if
 *   missing, and puts back the records this instance wrote (never over a newer row).
 * - The file must be on a local disk: WAL does not work over network file systems.
 *
 * @param path the database file, e.g. `.keymesh/keys.db`; relative paths resolve against the working
 *   directory at creation. Opened on first use, and again after `close()` if used again.
 */
export function sqliteStorage(path: string, options: SqliteStorageOptions = {}): StorageAdapter {
  return new SqliteStorage(path, options);
}

class SqliteStorage implements StorageAdapter {
  readonly name: string;
  readonly #path: string;
  readonly #settings: Settings;
  readonly #clock: Clock;
  readonly #onBadRecord: StorageRecordListener | undefined;
  /**
   * The last record this instance wrote per key: what it puts back when its file is deleted or
   * replaced under it (SQLite would go on writing to the deleted file, and every write would be lost).
   */
  readonly #written = new Map<string, KeyRecord>();
  #lostFile = false;
  /** Identifies this instance's rows, so that its watchers skip them (they hear them directly). */
  readonly #origin = randomBytes(6).toString('hex');
  #connection: Promise<Connection> | undefined;
  readonly #listeners = new Set<(records: readonly KeyRecord[]) => void>();
  #watchTimer: unknown;
  #watchBaseline: { dataVersion: number; seq: number } | undefined;

  constructor(path: string, options: SqliteStorageOptions) {
    if (typeof path !== 'string' || path.length === 0 || path === ':memory:') {
      throw new InvalidConfigError(
        'path',
        'expected the path of an SQLite database file (for a store in memory use memoryStorage())',
      );
    }
    this.#settings = checkOptions(options);
    this.#onBadRecord = options.onBadRecord;
    // Polling needs no precision: on the real clock, Node's plain timers.
    this.#clock = coarse(options.clock ?? systemClock);
    this.#path = resolve(path);
    this.name = `sqlite:${this.#path}`;
  }

  async load(keyIds: readonly string[]): Promise<ReadonlyMap<string, KeyRecord>> {
    const { statements } = await this.#connected();
    const found = new Map<string, KeyRecord>();
    if (keyIds.length === 0) return found;
    let rows: { keyId: unknown; record: unknown }[];
    try {
      rows = statements.select.all(JSON.stringify(keyIds));
    } catch (cause) {
      throw this.#failure('Reading key state from', cause);
    }
    for (const row of rows) {
      const record = this.#recordOf(row.keyId, row.record);
      if (record) found.set(record.keyId, record);
    }
    return found;
  }

  async save(batch: readonly KeyRecord[]): Promise<void> {
    // Checked before anything is written: a record that would not load is never written.
    const records = Array.from(batch, (record) => recordToStore(record, this.name));
    if (records.length === 0) return;
    const { saveBatch } = await this.#connected();
    try {
      saveBatch(records);
    } catch (cause) {
      throw this.#failure('Writing key state to', cause);
    }
    for (const record of records) this.#written.set(record.keyId, record);
    if (this.#listeners.size > 0) this.#notify(records.map((record) => ({ ...record })));
  }

  watch(listener: (records: readonly KeyRecord[]) => void): () => void {
    this.#listeners.add(listener);
    if (this.#watchTimer === undefined) {
      // Take the baseline now, so that writes between here and the first tick are reported.
      this.#pollOthers().catch(() => {});
      this.#scheduleWatch();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#stopWatch();
    };
  }

  /** Stops watching and closes the database. The adapter reopens it if used again. */
  async close(): Promise<void> {
    this.#listeners.clear();
    this.#stopWatch();
    const connection = this.#connection;
    this.#connection = undefined;
    if (!connection) return;
    try {
      (await connection).db.close();
    } catch {
      // It never opened: nothing to close.
    }
  }

  #connect(): Promise<Connection> {
    if (!this.#connection) {
      const opening = this.#open();
      this.#connection = opening;
      // A failed open is retried by the next call (the cause may be fixed by then).
      opening.catch(() => {
        if (this.#connection === opening) this.#connection = undefined;
      });
    }
    return this.#connection;
  }

  /**
   * The connection, after checking that the path still leads to the file it has open. When it does
   * not (deleted, or replaced by another file), the connection is dropped and this call fails: the
   * next one opens the file now at the path (creating it when missing) and puts back what this
   * instance wrote, so that nothing it wrote is lost once the store works again.
   */
  async #connected(): Promise<Connection> {
    const connection = await this.#connect();
    // Synchronous, like every better-sqlite3 call: saves issued in order are applied in order.
    let now: BigIntStats | undefined;
    try {
      now = statSync(this.#path, { bigint: true, throwIfNoEntry: false });
    } catch {
      now = undefined;
    }
    if (now && now.dev === connection.file.dev && now.ino === connection.file.ino) return connection;
    this.#lostFile = true;
    if (this.#connection) {
      this.#connection = undefined;
      connection.db.close();
    }
    throw new StorageError(
      `The SQLite database ${this.#path} was ${now ? 'replaced' : 'deleted'} while in use; the next write opens ${now ? 'the new file' : 'a new one'} and puts back this process's records`,
    );
  }

  async #open(): Promise<Connection> {
    const Driver = await loadDriver();
    try {
      await mkdir(dirname(this.#path), { recursive: true, mode: PRIVATE_DIR_MODE });
      // Create the file ourselves, so that it is private from the first byte.
      const handle = await open(this.#path, 'wx', PRIVATE_FILE_MODE).catch((error: unknown) => {
        if (errorCode(error) === 'EEXIST') return undefined;
        throw error;
      });
      if (handle) {
        await handle.chmod(PRIVATE_FILE_MODE);
        await handle.close();
      }
      // SQLite would block for ever opening a named pipe: only a regular file is a database.
      await (await openRegularFile(this.#path))?.close();
    } catch (cause) {
      if (cause instanceof KeyMeshError) throw cause;
      throw new StorageError(`Could not create the SQLite database ${this.#path}`, cause);
    }
    let db: Database | undefined;
    try {
      db = new Driver(this.#path, { fileMustExist: true, timeout: this.#settings.busyTimeoutMs });
      const opened = await stat(this.#path, { bigint: true });
      // Refuse a database that is not ours before changing anything in it, its journal mode included.
      this.#migrate(db);
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${this.#settings.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
      const statements = prepareStatements(db);
      const origin = this.#origin;
      const upsertAll = db.transaction((records: readonly KeyRecord[]) => {
        for (const record of records) statements.upsert.run(rowOf(record, origin));
      });
      if (this.#lostFile) {
        const restoreAll = db.transaction((records: readonly KeyRecord[]) => {
          for (const record of records) statements.restore.run(rowOf(record, origin));
        });
        restoreAll.immediate([...this.#written.values()]);
        this.#lostFile = false;
      }
      await this.#chmodSidecars();
      // IMMEDIATE takes the write lock up front: a deferred transaction that upgrades could fail
      // with SQLITE_BUSY at once instead of waiting out busy_timeout.
      return {
        db,
        statements,
        saveBatch: (records) => upsertAll.immediate(records),
        file: { dev: opened.dev, ino: opened.ino },
      };
    } catch (cause) {
      db?.close();
      throw this.#failure('Opening', cause);
    }
  }

  #migrate(db: Database): void {
    const hasTable = () =>
      db.prepare('SELECT 1 FROM sqlite_schema WHERE type = ? AND name = ?').get('table', TABLE) !== undefined;
    if (db.pragma('user_version', { simple: true }) === SQLITE_SCHEMA_VERSION && hasTable()) return;
    db.transaction(() => {
      // Read again under the write lock: another process may have migrated meanwhile.
      const version = db.pragma('user_version', { simple: true });
      if (typeof version !== 'number' || !Number.isInteger(version) || version < 0) {
        throw new StorageCorruptError(this.#path, 'its schema version is not a number');
      }
      if (version > SQLITE_SCHEMA_VERSION) {
        throw new StorageError(
          `The SQLite database ${this.#path} was written by a newer KeyMesh (schema version ${version}; this version reads ${SQLITE_SCHEMA_VERSION}). Upgrade KeyMesh or use another file.`,
        );
      }
      if (version > 0 && !hasTable()) {
        throw new StorageError(
          `The SQLite database ${this.#path} is not a KeyMesh store (schema version ${version} but no ${TABLE} table); use another file`,
        );
      }
      // Only an empty database is adopted: KeyMesh never adds its table to someone else's.
      const foreign = db
        .prepare<[string], { name: string }>(
          "SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE ? LIMIT 1",
        )
        .get(`${TABLE}%`);
      if (version === 0 && foreign !== undefined) {
        throw new StorageError(
          `The SQLite database ${this.#path} is not a KeyMesh store (it holds other tables and no KeyMesh schema version); KeyMesh leaves it untouched: use another file`,
        );
      }
      for (let from = version; from < SQLITE_SCHEMA_VERSION; from++) MIGRATIONS[from]?.(db);
      db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
    }).immediate();
  }

  async #chmodSidecars(): Promise<void> {
    for (const suffix of ['-wal', '-shm']) {
      await chmod(`${this.#path}${suffix}`, PRIVATE_FILE_MODE).catch(() => {});
    }
  }

  /** A row as a record to load: one bad row costs its key alone (repaired or dropped, and reported). */
  #recordOf(keyId: unknown, json: unknown): KeyRecord | undefined {
    if (typeof keyId !== 'string') return undefined; // STRICT table: only a foreign writer gets here
    let value: unknown;
    try {
      value = typeof json === 'string' ? JSON.parse(json) : undefined;
    } catch {
      // The parser's message quotes the row, which could hold anything: it is not repeated.
      value = undefined;
    }
    return readStoredRecord(value, keyId, this.name, this.#onBadRecord);
  }

  #failure(doing: string, cause: unknown): KeyMeshError {
    if (cause instanceof KeyMeshError) return cause;
    const code = errorCode(cause) ?? '';
    if (code === 'SQLITE_NOTADB') {
      return new StorageCorruptError(this.#path, 'it is not an SQLite database', cause);
    }
    if (code.startsWith('SQLITE_CORRUPT')) {
      return new StorageCorruptError(this.#path, `SQLite reports it corrupt (${code})`, cause);
    }
    if (code.startsWith('SQLITE_BUSY')) {
      return new StorageError(
        `${doing} ${this.#path} failed: another process held the database locked for longer than busyTimeoutMs (${this.#settings.busyTimeoutMs} ms)`,
        cause,
      );
    }
    return new StorageError(`${doing} ${this.#path} failed${code ? ` (${code})` : ''}`, cause);
  }

  // ── watch ──────────────────────────────────────────────────────────────────────────────────

  #scheduleWatch(): void {
    this.#watchTimer = this.#clock.setTimeout(() => {
      this.#pollOthers().then(
        () => {
          if (this.#watchTimer !== undefined) this.#scheduleWatch();
        },
        () => {
          // The next load or save reports the problem; watching simply tries again.
          if (this.#watchTimer !== undefined) this.#scheduleWatch();
        },
      );
    }, this.#settings.watchIntervalMs);
  }

  #stopWatch(): void {
    if (this.#watchTimer !== undefined) this.#clock.clearTimeout(this.#watchTimer);
    this.#watchTimer = undefined;
    this.#watchBaseline = undefined;
  }

  /** Reports rows other connections committed since the last poll (their first poll sets the baseline). */
  async #pollOthers(): Promise<void> {
    const { statements } = await this.#connect();
    const dataVersion = statements.dataVersion.get();
    if (typeof dataVersion !== 'number') return;
    const baseline = this.#watchBaseline;
    if (baseline === undefined) {
      const seq = statements.maxSeq.get();
      this.#watchBaseline = { dataVersion, seq: typeof seq === 'number' ? seq : 0 };
      return;
    }
    // data_version changes only when *another* connection commits: the common case costs one read.
    if (dataVersion === baseline.dataVersion) return;
    const rows = statements.changedSince.all(baseline.seq);
    let seq = baseline.seq;
    const changed: KeyRecord[] = [];
    for (const row of rows) {
      if (typeof row.seq === 'number' && row.seq > seq) seq = row.seq;
      if (row.origin === this.#origin) continue;
      const record = this.#recordOf(row.keyId, row.record);
      if (record) changed.push(record);
    }
    this.#watchBaseline = { dataVersion, seq };
    if (changed.length > 0) this.#notify(changed);
  }

  #notify(records: readonly KeyRecord[]): void {
    for (const listener of this.#listeners) {
      try {
        listener(records);
      } catch (error) {
        // The write itself succeeded: a broken listener must not make it look failed (and retried).
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
