import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonFileStorage, KeyPool, type StorageAdapter, sqliteStorage } from '../../src/index.js';
import { fakeKeys } from '../helpers.js';
import { ANSI, runKeymesh, tempFolder } from './support.js';

const temp = tempFolder('status');
const keys = fakeKeys(3, 'sk-test-status-secret');

const HALF_AN_HOUR = 1_800_000;

/** Saves real pool state: alpha served twice, bravo told to rest half an hour, charlie revoked. */
async function savedState(storage: StorageAdapter): Promise<void> {
  const pool = await KeyPool.create({
    keys: [
      { key: keys[0] as string, label: 'alpha' },
      { key: keys[1] as string, label: 'bravo' },
      { key: keys[2] as string, label: 'charlie' },
    ],
    strategy: 'round-robin',
    storage,
  });
  (await pool.acquire()).release({ latencyMs: 120 });
  (await pool.acquire()).rateLimited({ retryAfterMs: HALF_AN_HOUR });
  (await pool.acquire()).fail(new Error('401'), { kind: 'revoked' });
  (await pool.acquire()).release({ latencyMs: 80 });
  await pool.close();
}

/** Runs `keymesh` and notes the wall-clock instants it ran between, to bound what it saw as "now". */
async function timedRun(args: readonly string[]) {
  const before = Date.now();
  const run = await runKeymesh(args);
  return { run, before, after: Date.now() };
}

/** `29 m 58 s` → 1 798. */
function secondsOf(cell: string): number {
  const match = /^(\d+) m (\d+) s$/.exec(cell);
  if (!match) throw new Error(`not a duration in minutes and seconds: ${JSON.stringify(cell)}`);
  return Number(match[1]) * 60 + Number(match[2]);
}

function expectNoSecret(text: string): void {
  for (const key of keys) {
    expect(text).not.toContain(key);
    expect(text).not.toContain(key.slice(-4));
  }
}

describe('keymesh status', () => {
  it('shows every key of a JSON store as a table: fingerprint, label, state, reason, cooldown, counters', async () => {
    const path = join(await temp(), 'keys.json');
    await savedState(jsonFileStorage(path));
    const { run, before, after } = await timedRun(['status', '--store', `json:${path}`]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.stdout).not.toMatch(ANSI);
    const lines = run.stdout.split('\n');
    expect(lines[0]).toMatch(/^json:.*keys\.json: 3 keys, last written/);
    expect(lines[2]).toMatch(
      /^key\s+label\s+state\s+reason\s+cooldown left\s+ok\s+429\s+fail\s+in a row\s+latency\s+last used$/,
    );
    const row = (label: string) =>
      lines.find((line) => new RegExp(`^k_[0-9a-f]{16}\\s+${label}\\s`).test(line)) ?? '';
    expect(row('alpha')).toMatch(/\savailable\s+-\s+-\s+2\s+0\s+0\s+0\s+/);
    const bravo = /\scooling\s+rate-limited\s+(\d+ m \d+ s)\s+0\s+1\s+0\s/.exec(row('bravo'));
    // What is left depends on when the CLI read its clock: between `before` and `after`, ± rounding.
    const { keys: stored } = JSON.parse(await readFile(path, 'utf8')) as {
      keys: Record<string, { label: string; cooldownUntil: number }>;
    };
    const until = Object.values(stored).find((record) => record.label === 'bravo')?.cooldownUntil ?? 0;
    const left = secondsOf(bravo?.[1] ?? '');
    expect(left).toBeGreaterThanOrEqual(Math.floor((until - after) / 1_000));
    expect(left).toBeLessThanOrEqual(Math.ceil((until - before) / 1_000));
    expect(row('charlie')).toMatch(/\sexhausted\s+revoked\s+-\s+0\s+0\s+1\s+1\s/);
    expectNoSecret(run.stdout);
  });

  it('prints JSON with --json, from an SQLite store', async () => {
    const path = join(await temp(), 'keys.db');
    await savedState(sqliteStorage(path));
    const { run, before, after } = await timedRun(['status', '--store', `sqlite:${path}`, '--json']);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout) as {
      store: string;
      at: number;
      keys: Array<{
        label: string;
        state: string;
        reason: string | null;
        cooldownUntil: number;
        cooldownLeftMs: number;
        successes: number;
      }>;
    };
    expect(report.store).toBe(`sqlite:${path}`);
    expect(report.keys.map((k) => [k.label, k.state, k.reason])).toEqual([
      ['alpha', 'available', null],
      ['bravo', 'cooling', 'rate-limited'],
      ['charlie', 'exhausted', 'revoked'],
    ]);
    expect(report.at).toBeGreaterThanOrEqual(before);
    expect(report.at).toBeLessThanOrEqual(after);
    const bravo = report.keys[1];
    expect(bravo?.cooldownLeftMs).toBe((bravo?.cooldownUntil ?? 0) - report.at);
    expect(bravo?.cooldownUntil).toBeGreaterThan(report.at);
    expect(report.keys[0]?.successes).toBe(2);
    expectNoSecret(run.stdout);
  });

  it('recognises an SQLite file by its header whatever its name', async () => {
    const dir = await temp();
    await savedState(sqliteStorage(join(dir, 'keys.db')));
    await copyFile(join(dir, 'keys.db'), join(dir, 'state.json'));
    const run = await runKeymesh(['status', '--store', join(dir, 'state.json')]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/3 keys/);
  });

  it('exits 3 when the store does not exist, and creates nothing', async () => {
    const path = join(await temp(), 'missing.db');
    const run = await runKeymesh(['status', '--store', path]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`keymesh: No store at ${path}`);
    expect(existsSync(path)).toBe(false);
  });

  it('exits 3 naming the file when the store is corrupt', async () => {
    const path = join(await temp(), 'broken.json');
    await writeFile(path, '{ "format": "keymesh", "version": 1, "keys": ');
    const run = await runKeymesh(['status', '--store', `json:${path}`]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`${path} is not valid JSON`);
  });

  it('says so when a store holds no key yet', async () => {
    const path = join(await temp(), 'empty.json');
    await writeFile(path, JSON.stringify({ format: 'keymesh', version: 1, keys: {} }));
    const run = await runKeymesh(['status', '--store', path]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/no key state saved yet/);
  });

  it('reads an SQLite store without leaving a file behind or changing a byte', async () => {
    const dir = await temp();
    const path = join(dir, 'keys.db');
    await savedState(sqliteStorage(path));
    const files = await readdir(dir);
    const bytes = await readFile(path);
    const { mtimeMs } = await stat(path);
    const run = await runKeymesh(['status', '--store', path]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/3 keys/);
    expect(await readdir(dir)).toEqual(files);
    expect((await readFile(path)).equals(bytes)).toBe(true);
    expect((await stat(path)).mtimeMs).toBe(mtimeMs);
  });

  it('reads an SQLite store a running pool has open, beside the files that pool made', async () => {
    const dir = await temp();
    const path = join(dir, 'keys.db');
    await savedState(sqliteStorage(path));
    const pool = await KeyPool.create({ keys: [keys[0] as string], storage: sqliteStorage(path) });
    try {
      const files = await readdir(dir);
      expect(files).toContain('keys.db-wal');
      const run = await runKeymesh(['status', '--store', path, '--json']);
      expect(run.code, run.stderr).toBe(0);
      expect((JSON.parse(run.stdout) as { keys: unknown[] }).keys).toHaveLength(3);
      expect(await readdir(dir)).toEqual(files);
    } finally {
      await pool.close();
    }
  });

  it.each(['json', 'sqlite'])(
    'exits 3 at once naming the path when a named pipe is at a %s path',
    async (kind) => {
      const path = join(await temp(), `keys.${kind === 'json' ? 'json' : 'db'}`);
      execFileSync('mkfifo', [path]);
      const run = await runKeymesh(['status', '--store', `${kind}:${path}`]);
      expect(run.code).toBe(3);
      expect(run.stderr).toContain(`${path} is a named pipe, not a regular file`);
    },
  );

  it('shows the other keys when one record is bad, and warns about that one', async () => {
    const path = join(await temp(), 'keys.json');
    await savedState(jsonFileStorage(path));
    const document = JSON.parse(await readFile(path, 'utf8')) as { keys: Record<string, object> };
    const [badId] = Object.keys(document.keys);
    if (badId === undefined) throw new Error('no key saved');
    document.keys[badId] = { ...document.keys[badId], state: 'asleep' };
    await writeFile(path, JSON.stringify(document));
    const run = await runKeymesh(['status', '--store', path]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/2 keys/);
    expect(run.stderr).toMatch(
      new RegExp(`^keymesh: warning: the record of key ${badId} has an unknown \`state\``),
    );
  });
});
