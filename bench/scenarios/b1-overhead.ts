import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type SampleSummary, summarize } from '../../src/sim/index.js';
import type { KeyMesh } from '../lib/keymesh.js';
import {
  atLeast,
  atMost,
  formatNs,
  formatNumber,
  type Row,
  type ScenarioOptions,
  type ScenarioResult,
} from '../lib/report.js';

export type StrategyName = 'least-busy' | 'round-robin' | 'weighted' | 'latency';
export const STRATEGIES: readonly StrategyName[] = ['least-busy', 'round-robin', 'weighted', 'latency'];
const KEY_COUNTS = [10, 1_000, 10_000] as const;

/**
 * BENCH.md B1 targets: ≥ 100 000 pairs/s at 10 keys; at 1 000 and 10 000 keys ≥ 0.8 × the XState floor
 * measured in the same run; acquire p99 ≤ 50 µs at 1 000 keys.
 */
export const B1_TARGETS = {
  minPairsPerSecond: 100_000,
  minFloorRatio: 0.8,
  maxAcquireP99NsAt1000: 50_000,
} as const;
const SEED_FIGURES: Readonly<Record<number, string>> = {
  10: '42 500 pairs/s',
  1000: '2 000 pairs/s',
  10000: 'cost linear in N',
};

/** Every 8th pair is timed: often enough for a p99, rarely enough not to slow the loop. */
const SAMPLE_EVERY = 8;

export interface PairPool {
  acquire(): Promise<{ release(options?: { readonly latencyMs?: number }): unknown }>;
}

/** What one acquire/release loop measured. */
export interface PairFigures {
  readonly pairs: number;
  readonly pairsPerSecond: number;
  /** `acquire()` to `release()` returned, ns, over the sampled pairs. */
  readonly pairNs: SampleSummary;
  /** `acquire()` to the lease in hand (the await included), ns, over the sampled pairs. */
  readonly acquireNs: SampleSummary;
}

/** One caller: `await acquire()` then `release({ latencyMs })`, as fast as it goes, for `ms` of real time. */
export async function measurePairs(pool: PairPool, ms: number): Promise<PairFigures> {
  const pairNs: number[] = [];
  const acquireNs: number[] = [];
  let pairs = 0;
  const started = performance.now();
  const deadline = started + ms;
  do {
    for (let i = 0; i < 1_024; i++) {
      if (i % SAMPLE_EVERY === 0) {
        const t0 = process.hrtime.bigint();
        const lease = await pool.acquire();
        const t1 = process.hrtime.bigint();
        lease.release({ latencyMs: 1 });
        const t2 = process.hrtime.bigint();
        acquireNs.push(Number(t1 - t0));
        pairNs.push(Number(t2 - t0));
      } else {
        const lease = await pool.acquire();
        lease.release({ latencyMs: 1 });
      }
    }
    pairs += 1_024;
  } while (performance.now() < deadline);
  const seconds = (performance.now() - started) / 1_000;
  return {
    pairs,
    pairsPerSecond: pairs / seconds,
    pairNs: summarize(pairNs),
    acquireNs: summarize(acquireNs),
  };
}

export const fakeKeys = (n: number) =>
  Array.from({ length: n }, (_, i) => `sk-bench-fake-${String(i).padStart(16, '0')}`);

function measureMs(quick: boolean): { warm: number; run: number } {
  if (quick) return { warm: 100, run: 400 };
  return { warm: 300, run: 1_500 };
}

const PAIR_PROCESS = fileURLToPath(new URL('../lib/pair-process.ts', import.meta.url));

/**
 * One loop of {@link measurePairs} in a fresh node process (`bench/lib/pair-process.ts`): the
 * reference, the floor or a KeyPool with `pool` as its strategy, at `n` keys.
 */
function measureInProcess(pool: 'reference' | 'floor' | StrategyName, n: number, quick: boolean) {
  const { warm, run } = measureMs(quick);
  const args = [...process.execArgv, PAIR_PROCESS, pool, String(n), String(warm), String(run)];
  return new Promise<PairFigures>((resolve, reject) => {
    execFile(process.execPath, args, { maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`B1 ${pool} at ${n} keys failed: ${stderr || error.message}`));
      else resolve(JSON.parse(stdout) as PairFigures);
    });
  });
}

/** B1: acquire/release overhead of every built-in strategy at 10, 1 000 and 10 000 keys, with the reference. */
export async function b1Scenario(
  keymesh: Pick<KeyMesh, 'KeyPool' | 'sqliteStorage' | 'memoryStorage'>,
  options: ScenarioOptions,
): Promise<Omit<ScenarioResult, 'seconds'>> {
  const rows: Row[] = [];
  const figures: Record<string, unknown> = {};
  for (const n of KEY_COUNTS) {
    const ref = await measureInProcess('reference', n, options.quick);
    options.progress(`B1 reference ${n} keys: ${formatNumber(ref.pairsPerSecond)} pairs/s`);
    figures[`reference ${n}`] = ref;
    rows.push({
      scenario: `B1 reference ${n} keys`,
      figure: 'pairs/s; ns per pair p50 / p99',
      value: `${formatNumber(ref.pairsPerSecond)}; ${formatNs(ref.pairNs.p50)} / ${formatNs(ref.pairNs.p99)}`,
      target: '',
      seed: '',
      verdict: '—',
    });

    // What the design costs before any of KeyMesh's logic: XState v5 actors, three steps per pair.
    const floor = await measureInProcess('floor', n, options.quick);
    options.progress(`B1 XState floor ${n} keys: ${formatNumber(floor.pairsPerSecond)} pairs/s`);
    figures[`xstate floor ${n}`] = floor;
    rows.push({
      scenario: `B1 XState floor ${n} keys`,
      figure: 'pairs/s; ns per pair p50 / p99',
      value: `${formatNumber(floor.pairsPerSecond)}; ${formatNs(floor.pairNs.p50)} / ${formatNs(floor.pairNs.p99)}`,
      target: '',
      seed: '',
      verdict: '—',
    });

    for (const strategy of STRATEGIES) {
      const run = await measureInProcess(strategy, n, options.quick);
      const versus = run.pairsPerSecond / ref.pairsPerSecond;
      const ofFloor = run.pairsPerSecond / floor.pairsPerSecond;
      options.progress(
        `B1 ${strategy} ${n} keys: ${formatNumber(run.pairsPerSecond)} pairs/s (${formatNumber(versus, 2)} × reference, ${formatNumber(ofFloor, 2)} × floor)`,
      );
      figures[`${strategy} ${n}`] = { ...run, ratioToReference: versus, ratioToFloor: ofFloor };
      const scenario = `B1 ${strategy} ${n} keys`;
      // At 10 keys an absolute target; at 1 000 and 10 000 a share of the design's own floor.
      const absolute = n === 10;
      rows.push({
        scenario,
        figure: 'pairs/s (× reference; × XState floor)',
        value: `${formatNumber(run.pairsPerSecond)} (${formatNumber(versus, 2)} ×; ${formatNumber(ofFloor, 2)} ×)`,
        target: absolute
          ? `≥ ${formatNumber(B1_TARGETS.minPairsPerSecond)}`
          : `≥ ${formatNumber(B1_TARGETS.minFloorRatio, 1)} × floor`,
        seed: strategy === 'least-busy' ? (SEED_FIGURES[n] ?? '') : '',
        verdict: absolute
          ? atLeast(run.pairsPerSecond, B1_TARGETS.minPairsPerSecond)
          : atLeast(ofFloor, B1_TARGETS.minFloorRatio),
      });
      const latencyTarget = n === 1_000;
      rows.push({
        scenario,
        figure: 'ns per pair p50 / p99; acquire p99',
        value: `${formatNs(run.pairNs.p50)} / ${formatNs(run.pairNs.p99)}; ${formatNs(run.acquireNs.p99)}`,
        target: latencyTarget ? `acquire p99 ≤ ${formatNs(B1_TARGETS.maxAcquireP99NsAt1000)}` : '',
        seed: '',
        verdict: latencyTarget ? atMost(run.acquireNs.p99, B1_TARGETS.maxAcquireP99NsAt1000) : '—',
      });
    }
  }
  rows.push(...(await storageOverhead(keymesh, options, figures)));
  return { id: 'B1', title: 'Overhead: one caller, acquire → release, memory store', rows, figures };
}

/** B1 with the SQLite store attached versus memory (issue: within 10 %), least-busy, 10 keys, alternating runs. */
async function storageOverhead(
  keymesh: Pick<KeyMesh, 'KeyPool' | 'sqliteStorage' | 'memoryStorage'>,
  options: ScenarioOptions,
  figures: Record<string, unknown>,
): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'keymesh-b1-'));
  const keys = fakeKeys(10);
  const ms = options.quick ? 300 : 1_000;
  const rates: Record<'memory' | 'sqlite', number[]> = { memory: [], sqlite: [] };
  let writes = { records: 0, batches: 0, pairs: 0 };
  try {
    for (let round = 0; round < 3; round++) {
      for (const store of ['memory', 'sqlite'] as const) {
        const storage =
          store === 'memory' ? keymesh.memoryStorage() : keymesh.sqliteStorage(join(dir, `b1-${round}.db`));
        const pool = await keymesh.KeyPool.create({ keys, storage, seed: 1 });
        await measurePairs(pool, ms / 3);
        const run = await measurePairs(pool, ms);
        await pool.close();
        rates[store].push(run.pairsPerSecond);
        if (store === 'sqlite') writes = { ...pool.storageWrites, pairs: run.pairs };
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[1] ?? 0;
  const memory = median(rates.memory);
  const sqlite = median(rates.sqlite);
  const slowdown = 1 - sqlite / memory;
  figures['least-busy 10 sqlite vs memory'] = {
    memory: rates.memory,
    sqlite: rates.sqlite,
    slowdown,
    writes,
  };
  options.progress(`B1 SQLite store: ${formatNumber(sqlite)} pairs/s vs memory ${formatNumber(memory)}`);
  return [
    {
      scenario: 'B1 least-busy 10 keys, SQLite store',
      figure: 'pairs/s vs memory store (median of 3 alternating runs)',
      value: `${formatNumber(sqlite)} vs ${formatNumber(memory)} (${formatNumber(Math.abs(slowdown) * 100, 1)} % ${slowdown >= 0 ? 'slower' : 'faster'})`,
      target: 'within 10 %',
      seed: '',
      verdict: atMost(slowdown, 0.1),
    },
  ];
}
