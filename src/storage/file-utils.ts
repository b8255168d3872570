import { randomBytes } from 'node:crypto';
import { type BigIntStats, constants } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { StorageError } from '../errors.js';

/** Owner read/write only: stored state names keys and their health, which is nobody else's business. */
export const PRIVATE_FILE_MODE = 0o600;
/** Mode of a folder KeyMesh creates for its files. */
export const PRIVATE_DIR_MODE = 0o700;

/**
 * What identifies one version of a file on disk. An atomic rename always brings a new inode, and
 * any in-place edit changes size or mtime, so a stamp that still matches means nobody else wrote.
 */
export interface FileStamp {
  readonly ino: bigint;
  readonly size: bigint;
  readonly mtimeNs: bigint;
}

export function stampOf(stats: BigIntStats): FileStamp {
  return { ino: stats.ino, size: stats.size, mtimeNs: stats.mtimeNs };
}

export function sameStamp(a: FileStamp | undefined, b: FileStamp | undefined): boolean {
  return (
    a !== undefined && b !== undefined && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs
  );
}

export function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** The file's stamp, or `undefined` when it does not exist. Other errors propagate. */
export async function statStamp(path: string): Promise<FileStamp | undefined> {
  try {
    return stampOf(await lstat(path, { bigint: true }));
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

function kindOf(stats: BigIntStats): string {
  if (stats.isDirectory()) return 'folder';
  if (stats.isFIFO()) return 'named pipe';
  if (stats.isSocket()) return 'socket';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'device';
  return 'special file';
}

/**
 * Opens an existing file for reading, refusing anything but a regular file: a named pipe would
 * block the read for ever, a device would never end. The open itself does not block
 * (`O_NONBLOCK`), so a pipe is refused at once. `undefined` when the file does not exist.
 *
 * @throws StorageError naming the path when it is not a regular file.
 */
export async function openRegularFile(path: string): Promise<Awaited<ReturnType<typeof open>> | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  const stats = await handle.stat({ bigint: true }).catch(async (error: unknown) => {
    await handle.close();
    throw error;
  });
  if (stats.isFile()) return handle;
  await handle.close();
  throw new StorageError(
    `${path} is a ${kindOf(stats)}, not a regular file: KeyMesh keeps its state in regular files (remove it or give another path)`,
  );
}

/**
 * Reads a whole regular file with the stamp of exactly the version read; `undefined` when it does
 * not exist. Throws a `StorageError` for anything but a regular file (see {@link openRegularFile}).
 */
export async function readWithStamp(path: string): Promise<{ text: string; stamp: FileStamp } | undefined> {
  const handle = await openRegularFile(path);
  if (handle === undefined) return undefined;
  try {
    const stamp = stampOf(await handle.stat({ bigint: true }));
    const text = await handle.readFile({ encoding: 'utf8' });
    return { text, stamp };
  } finally {
    await handle.close();
  }
}

// How file systems and permissions refuse to fsync a folder.
const DIR_SYNC_REFUSALS: ReadonlySet<string> = new Set(['EINVAL', 'EISDIR', 'ENOTSUP', 'EPERM', 'EACCES']);

/**
 * Makes a rename (or a file creation) in `dir` durable. Windows cannot open folders for fsync, and
 * some file systems refuse it; there the rename is as durable as the platform makes it.
 */
export async function fsyncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    // The rename has happened either way; here only its durability is left to the OS.
    if (!DIR_SYNC_REFUSALS.has(errorCode(error) ?? '')) throw error;
  } finally {
    await handle?.close();
  }
}

const TEMP_SUFFIX = '.tmp';
let tempCounter = 0;
// Temp files this process is writing right now (any adapter instance): never stale.
const tempsInFlight = new Set<string>();

/** `.<name>.<pid>.<random>.tmp`, in the target's folder so that the rename never crosses devices. */
function tempPathFor(path: string): string {
  const unique = `${process.pid}.${(tempCounter++).toString(36)}${randomBytes(4).toString('hex')}`;
  return join(dirname(path), `.${basename(path)}.${unique}${TEMP_SUFFIX}`);
}

/**
 * Replaces `path` with `data` so that a crash at any instant leaves either the old or the new
 * contents, never a mix: write a temp file in the same folder, fsync it, rename it over the
 * target, fsync the folder. The file gets mode 0600 whatever the umask. The folder is created
 * (mode 0700) when missing. Returns the stamp of the file written.
 */
export async function writeFileAtomic(path: string, data: string): Promise<FileStamp> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const tempPath = tempPathFor(path);
  let renamed = false;
  tempsInFlight.add(tempPath);
  try {
    const handle = await open(tempPath, 'wx', PRIVATE_FILE_MODE);
    let stamp: FileStamp;
    try {
      await handle.chmod(PRIVATE_FILE_MODE);
      await handle.writeFile(data, { encoding: 'utf8' });
      await handle.sync();
      stamp = stampOf(await handle.stat({ bigint: true }));
    } finally {
      await handle.close();
    }
    await rename(tempPath, path);
    renamed = true;
    await fsyncDir(dir);
    return stamp;
  } finally {
    tempsInFlight.delete(tempPath);
    if (!renamed) await unlink(tempPath).catch(() => {});
  }
}

/**
 * Moves a file aside to `<path>.corrupt-<suffix>` (adding `-1`, `-2` … when taken), mode 0600.
 * Never overwrites anything. Returns where it went.
 */
export async function moveAside(path: string, suffix: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const target = `${path}.corrupt-${suffix}${attempt === 0 ? '' : `-${attempt}`}`;
    if ((await statStamp(target)) !== undefined) continue;
    await rename(path, target);
    await chmod(target, PRIVATE_FILE_MODE).catch(() => {});
    await fsyncDir(dirname(path));
    return target;
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) !== 'ESRCH';
  }
}

/**
 * Deletes temp files of `path` left by processes that died mid-write (a temp file is only ever
 * half of an unfinished write: the target still holds the last complete one). Temp files of live
 * processes are left alone; one with this process's pid that it is not writing is a leftover of
 * an earlier process that had the same pid (containers restart with the same pids). Best effort:
 * returns how many were removed.
 */
export async function removeStaleTempFiles(path: string): Promise<number> {
  const prefix = `.${basename(path)}.`;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.endsWith(TEMP_SUFFIX)) continue;
    const pid = Number(name.slice(prefix.length).split('.')[0]);
    const tempPath = join(dirname(path), name);
    if (!Number.isInteger(pid) || pid <= 0 || tempsInFlight.has(tempPath)) continue;
    if (pid !== process.pid && isRunning(pid)) continue;
    try {
      await unlink(tempPath);
      removed++;
    } catch {
      // Another process cleaned it first.
    }
  }
  return removed;
}
