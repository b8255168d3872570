/**
 * Soak: random mixed traffic against real pools on real stores, with storage faults, for minutes of
 * real time, checking invariants continuously. Not part of `npm test`.
 *
 *   npm run soak                     5 minutes
 *   npm run soak -- --duration 90    90 seconds (also `90s`, `2m`)
 *   npm run soak -- --quick          30 seconds
 *   npm run soak -- --seed 7         replay a run's random choices (timing still varies)
 *
 * Rounds alternate a JSON file and an SQLite store. Each round creates a pool on the round's store,
 * runs concurrent callers (acquire with priorities, timeouts and aborts; tryAcquire; every settle;
 * addKey, removeKey, resetKey) while the store's saves throw, hang or half-write and its file is
 * deleted, then closes the pool and opens the store again. Checked all the time:
 *
 * - every key's `inFlight` equals the leases handed out and not yet settled;
 * - a second settle of a lease is refused with a typed error (never counted twice);
 * - every acquire settles by its deadline (+2 s slack): no waiter is lost;
 * - grants of one priority follow request order (FIFO within a priority);
 * - no NaN or infinite number (but `maxConcurrent`) in a snapshot, none at all in a stored record;
 * - every failure is a typed `KeyMeshError`;
 * - the store opens again after each round, and a pool is created on it.
 *
 * Prints progress every 10 s; at the end heap growth after GC (run node with --expose-gc, as the
 * npm script does), event-loop lag p99/max and the violation count. Exits 1 on any violation or a
 * heap growth over 1 MB.
 */
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  jsonFileStorage,
  KeyMeshError,
  KeyPool,
  type KeyRecord,
  LeaseSettledError,
  type StorageAdapter,
  sqliteStorage,
} from '../src/index.js';
import type { Lease } from '../src/pool/lease.js';
import { createRandom } from '../src/sim/random.js';

const HEAP_LIMIT_BYTES = 1024 * 1024;
const ROUND_MS = 15_000;
const CALLERS = 24;
const BASE_KEYS = 6;
const SLACK_MS = 2_000;

const { values } = parseArgs({
  options: {
    duration: { type: 'string' },
    quick: { type: 'boolean', default: false },
    seed: { type: 'string' },
  },
});
const durationMs = values.quick ? 30_000 : parseDuration(values.duration ?? '5m');
const seed = Number(values.seed ?? Date.now() % 2 ** 31);
const rng = createRandom(seed);
const random = () => rng.next();
const gc = (globalThis as { gc?: () => void }).gc;

function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(text.trim());
  if (!match) throw new Error(`--duration ${JSON.stringify(text)}: expected seconds, or e.g. 90s, 5m`);
  return Number(match[1]) * (match[2] === 'm' ? 60_000 : 1_000);
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const between = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const fakeKey = (n: number) => `sk-soak-fake-${String(n).padStart(12, '0')}`;

// ── counters and violations ─────────────────────────────────────────────────────────────────

const counts = {
  acquires: 0,
  granted: 0,
  timeouts: 0,
  aborts: 0,
  tries: 0,
  settles: 0,
  doubleSettlesRefused: 0,
  keyOps: 0,
  storageErrors: 0,
  injectedFaults: 0,
  rounds: 0,
  checks: 0,
};
const violations: string[] = [];

function violation(message: string): void {
  violations.push(message);
  if (violations.length <= 20) console.error(`VIOLATION: ${message}`);
}

// ── a store whose saves go wrong now and then ───────────────────────────────────────────────

class FaultyStore implements StorageAdapter {
  readonly name: string;
  readonly #inner: StorageAdapter;
  faultRate = 0.05;

  constructor(inner: StorageAdapter) {
    this.#inner = inner;
    this.name = inner.name;
  }

  load(keyIds: readonly string[]) {
    return this.#inner.load(keyIds);
  }

  async save(records: readonly KeyRecord[]): Promise<void> {
    if (random() >= this.faultRate) return this.#inner.save(records);
    counts.injectedFaults++;
    const fault = pick(['throw', 'hang', 'half-write'] as const);
    if (fault === 'throw') throw new Error('ENOSPC: no space left on device (injected)');
    if (fault === 'hang') {
      await sleep(between(500, 2_500)); // beyond storageTimeoutMs now and then: lands late
      return this.#inner.save(records);
    }
    await this.#inner.save(records.slice(0, Math.ceil(records.length / 2)));
    throw new Error('EIO: i/o error after half the batch (injected)');
  }

  close() {
    return this.#inner.close?.() ?? Promise.resolve();
  }
}

// ── one round ───────────────────────────────────────────────────────────────────────────────

interface Request {
  readonly id: number;
  readonly priority: number;
  readonly deadline: number;
  settled: boolean;
  reported: boolean;
}

class Round {
  readonly pool: KeyPool;
  readonly #outstanding = new Map<Lease, string>();
  readonly #pending = new Map<number, Request>();
  /** Per priority: [request id, lease id] of queued grants, in grant order. */
  readonly #grants = new Map<number, [number, number][]>();
  readonly #keys: string[];
  #nextRequest = 0;
  #nextKey: number;
  stopping = false;

  constructor(pool: KeyPool, keys: string[]) {
    this.pool = pool;
    this.#keys = keys;
    this.#nextKey = keys.length + 1_000 * counts.rounds;
    pool.on('storage-error', () => counts.storageErrors++);
  }

  async caller(): Promise<void> {
    while (!this.stopping) {
      const r = random();
      if (r < 0.62) await this.#acquire();
      else if (r < 0.86) this.#try();
      else if (r < 0.89) await this.#keyOp();
      else await sleep(between(0, 5));
    }
  }

  async #acquire(): Promise<void> {
    counts.acquires++;
    const priority = between(0, 2);
    const timeoutMs = pick([20, 100, 500, 2_000]);
    const controller = random() < 0.1 ? new AbortController() : undefined;
    if (controller) setTimeout(() => controller.abort(), between(0, 150));
    const request: Request = {
      id: this.#nextRequest++,
      priority,
      deadline: Date.now() + timeoutMs,
      settled: false,
      reported: false,
    };
    this.#pending.set(request.id, request);
    let lease: Lease;
    try {
      lease = await this.pool.acquire({
        priority,
        timeoutMs,
        ...(controller ? { signal: controller.signal } : {}),
      });
    } catch (error) {
      this.#done(request);
      if (!(error instanceof KeyMeshError)) violation(`acquire failed untyped: ${String(error)}`);
      else if (error.code === 'ACQUIRE_ABORTED') counts.aborts++;
      else counts.timeouts++;
      return;
    }
    this.#done(request);
    counts.granted++;
    this.#outstanding.set(lease, lease.keyId);
    const grants = this.#grants.get(priority) ?? [];
    grants.push([request.id, lease.leaseId]);
    this.#grants.set(priority, grants);
    await sleep(between(0, 8));
    this.#settle(lease);
  }

  #try(): void {
    counts.tries++;
    let lease: Lease | undefined;
    try {
      lease = this.pool.tryAcquire({ priority: between(0, 2) });
    } catch (error) {
      if (!(error instanceof KeyMeshError)) violation(`tryAcquire failed untyped: ${String(error)}`);
      return;
    }
    if (!lease) return;
    this.#outstanding.set(lease, lease.keyId);
    this.#settle(lease);
  }

  #settle(lease: Lease): void {
    this.#outstanding.delete(lease);
    counts.settles++;
    const r = random();
    try {
      if (r < 0.7) lease.release({ latencyMs: between(5, 400) });
      else if (r < 0.85) lease.rateLimited({ retryAfterMs: between(20, 400) });
      else if (r < 0.995) lease.fail(new Error('upstream 500'));
      else lease.fail(new Error('401'), { kind: 'revoked' });
    } catch (error) {
      if (!(error instanceof KeyMeshError)) violation(`settle failed untyped: ${String(error)}`);
    }
    if (random() < 0.02) {
      try {
        lease.release();
        violation(`lease ${lease.leaseId} settled twice`);
      } catch (error) {
        if (error instanceof LeaseSettledError) counts.doubleSettlesRefused++;
        else violation(`second settle failed with ${String(error)}, not LeaseSettledError`);
      }
    }
  }

  async #keyOp(): Promise<void> {
    counts.keyOps++;
    const op = pick(['add', 'remove', 'reset'] as const);
    try {
      if (op === 'add' && this.#keys.length < BASE_KEYS * 2) {
        const key = fakeKey(this.#nextKey++);
        await this.pool.addKey(key);
        this.#keys.push(key);
      } else if (op === 'remove' && this.#keys.length > BASE_KEYS) {
        const key = this.#keys.splice(between(BASE_KEYS, this.#keys.length - 1), 1)[0] as string;
        await this.pool.removeKey(key);
      } else if (op === 'reset') {
        await this.pool.resetKey(pick(this.#keys));
      }
    } catch (error) {
      if (!(error instanceof KeyMeshError)) violation(`${op}Key failed untyped: ${String(error)}`);
    }
  }

  #done(request: Request): void {
    request.settled = true;
    this.#pending.delete(request.id);
  }

  /** The invariants that hold at any instant between two events. */
  check(): void {
    counts.checks++;
    const snapshot = this.pool.snapshot();
    const held = new Map<string, number>();
    for (const keyId of this.#outstanding.values()) held.set(keyId, (held.get(keyId) ?? 0) + 1);
    const seen = new Set<string>();
    for (const key of snapshot.keys) {
      seen.add(key.keyId);
      if (key.inFlight !== (held.get(key.keyId) ?? 0)) {
        violation(`${key.keyId}: inFlight ${key.inFlight} but ${held.get(key.keyId) ?? 0} leases unsettled`);
      }
    }
    for (const [keyId, n] of held) {
      if (!seen.has(keyId)) violation(`${n} unsettled leases on ${keyId}, which the pool no longer has`);
    }
    findNonFinite(snapshot, 'snapshot', (path) => !path.endsWith('.maxConcurrent'));
    const now = Date.now();
    for (const request of this.#pending.values()) {
      if (!request.reported && now > request.deadline + SLACK_MS) {
        request.reported = true;
        violation(`acquire #${request.id} still pending ${now - request.deadline} ms after its deadline`);
      }
    }
    for (const [priority, grants] of this.#grants) {
      // Grants in lease order must be in request order; what is checked is dropped.
      grants.sort((a, b) => a[1] - b[1]);
      for (let i = 1; i < grants.length; i++) {
        const [earlier, later] = [grants[i - 1], grants[i]] as [[number, number], [number, number]];
        if (earlier[0] > later[0]) {
          violation(`priority ${priority}: request #${later[0]} granted after #${earlier[0]}, asked earlier`);
        }
      }
      grants.splice(0, Math.max(0, grants.length - 1));
    }
  }

  get waitingLeft(): number {
    return this.#pending.size;
  }
}

function findNonFinite(value: unknown, path: string, infinityMatters: (path: string) => boolean): void {
  if (typeof value === 'number') {
    if (Number.isNaN(value) || (!Number.isFinite(value) && infinityMatters(path))) {
      violation(`${path} is ${value}`);
    }
  } else if (typeof value === 'object' && value !== null) {
    for (const [field, inner] of Object.entries(value))
      findNonFinite(inner, `${path}.${field}`, infinityMatters);
  }
}

// ── the run ─────────────────────────────────────────────────────────────────────────────────

const dir = join(tmpdir(), `keymesh-soak-${process.pid}`);
const stores = {
  json: { path: join(dir, 'keys.json'), open: (path: string) => jsonFileStorage(path) },
  sqlite: { path: join(dir, 'keys.db'), open: (path: string) => sqliteStorage(path) },
} as const;

async function storedRecords(kind: keyof typeof stores, keyIds: readonly string[]): Promise<void> {
  const adapter = stores[kind].open(stores[kind].path);
  try {
    const records = await adapter.load(keyIds);
    for (const record of records.values()) findNonFinite(record, `${kind} record`, () => true);
  } catch (error) {
    violation(`the ${kind} store cannot be read: ${String(error)}`);
  } finally {
    await adapter.close?.();
  }
}

async function round(kind: keyof typeof stores, ms: number): Promise<void> {
  const { path, open } = stores[kind];
  const keys = Array.from({ length: BASE_KEYS }, (_, i) => fakeKey(i + 1));
  const storage = new FaultyStore(open(path));
  let pool: KeyPool;
  try {
    pool = await KeyPool.create({
      keys: keys.map((key, i) => (i === 0 ? { key, rpm: 600 } : key)),
      storage,
      strategy: pick(['least-busy', 'round-robin', 'latency'] as const),
      maxConcurrentPerKey: 4,
      acquireTimeoutMs: 2_000,
      flushIntervalMs: 200,
      storageTimeoutMs: 1_000,
      recovery: { initialDelayMs: 200, maxDelayMs: 2_000 },
      defaultCooldownMs: 300,
    });
  } catch (error) {
    violation(`the ${kind} store did not open again: ${String(error)}`);
    return;
  }
  const current = new Round(pool, keys);
  const callers = Array.from({ length: CALLERS }, () => current.caller());
  const checker = setInterval(() => current.check(), 100);
  const fileFaults = setInterval(() => {
    if (random() < 0.3) {
      counts.injectedFaults++;
      // The file deleted under the running pool: the next write must put everything back.
      const suffixes = kind === 'sqlite' ? ['', '-wal', '-shm'] : [''];
      for (const suffix of suffixes) rm(`${path}${suffix}`, { force: true }).catch(() => {});
    }
  }, 3_000);
  await sleep(ms);
  current.stopping = true;
  clearInterval(fileFaults);
  storage.faultRate = 0;
  await Promise.all(callers);
  current.check();
  clearInterval(checker);
  if (current.waitingLeft > 0) violation(`${current.waitingLeft} acquires never settled`);
  if (pool.snapshot().metrics.waiting !== 0) violation('waiters left in the pool after every caller stopped');
  const keyIds = pool.snapshot().keys.map((key) => key.keyId);
  try {
    await pool.close();
  } catch (error) {
    if (!(error instanceof KeyMeshError)) violation(`close failed untyped: ${String(error)}`);
  }
  await storedRecords(kind, keyIds);
  counts.rounds++;
}

function heapAfterGc(): number {
  for (let i = 0; i < 4; i++) gc?.();
  return process.memoryUsage().heapUsed;
}

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`;

async function main(): Promise<void> {
  if (!gc) console.warn('warning: run node with --expose-gc (npm run soak does) to measure heap growth');
  await rm(dir, { recursive: true, force: true });
  console.log(`soak: ${durationMs / 1_000} s, seed ${seed}, ${CALLERS} callers, stores in ${dir}`);
  const lag = monitorEventLoopDelay({ resolution: 10 });
  const started = Date.now();
  // A short first round warms up code and caches, so that the heap baseline is a steady state.
  await round('json', Math.min(ROUND_MS, durationMs / 6));
  await round('sqlite', Math.min(ROUND_MS, durationMs / 6));
  const baseline = heapAfterGc();
  lag.enable();
  const progress = setInterval(() => {
    const elapsed = Math.round((Date.now() - started) / 1_000);
    console.log(
      `${elapsed} s: ${counts.granted}/${counts.acquires} acquires granted, ${counts.timeouts} timeouts, ${counts.aborts} aborts, ${counts.tries} tries, ${counts.keyOps} key ops, ${counts.injectedFaults} faults, ${counts.storageErrors} storage-errors, ${violations.length} violations, heap ${mb(process.memoryUsage().heapUsed)}`,
    );
  }, 10_000);
  let kind: keyof typeof stores = 'json';
  const heapTrace: string[] = [];
  while (Date.now() - started < durationMs) {
    await round(kind, Math.min(ROUND_MS, Math.max(1_000, durationMs - (Date.now() - started))));
    kind = kind === 'json' ? 'sqlite' : 'json';
    if (process.env.KEYMESH_SOAK_HEAP) heapTrace.push(mb(heapAfterGc() - baseline));
  }
  if (heapTrace.length > 0) console.log(`heap growth after each round: ${heapTrace.join(', ')}`);
  clearInterval(progress);
  lag.disable();
  const growth = heapAfterGc() - baseline;
  await sleep(3_000); // saves the fault injector held up land now
  const leftovers = (await readdir(dir)).filter((name) => name.endsWith('.tmp'));
  if (leftovers.length > 0) violation(`temp files left behind: ${leftovers.join(', ')}`);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  console.log('');
  console.log(`done in ${((Date.now() - started) / 1_000).toFixed(0)} s (seed ${seed}):`);
  console.log(`  ${counts.rounds} rounds, ${counts.checks} invariant checks`);
  console.log(
    `  ${counts.acquires} acquires (${counts.granted} granted, ${counts.timeouts} timed out, ${counts.aborts} aborted), ${counts.tries} tryAcquires, ${counts.settles} settles, ${counts.doubleSettlesRefused} double settles refused, ${counts.keyOps} key ops`,
  );
  console.log(
    `  ${counts.injectedFaults} storage faults injected, ${counts.storageErrors} storage-error events`,
  );
  console.log(`  heap growth after GC: ${gc ? mb(growth) : 'not measured (no --expose-gc)'}`);
  console.log(
    `  event-loop lag: p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms, max ${(lag.max / 1e6).toFixed(1)} ms`,
  );
  console.log(`  violations: ${violations.length}`);
  if (violations.length > 0 || (gc && growth > HEAP_LIMIT_BYTES)) process.exitCode = 1;
}

await main();
