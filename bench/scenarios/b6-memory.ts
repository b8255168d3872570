import type { KeyMesh } from '../lib/keymesh.js';
import {
  atMost,
  formatBytes,
  formatMs,
  formatNumber,
  type Row,
  type ScenarioOptions,
  type ScenarioResult,
} from '../lib/report.js';

const KEYS = 10_000;
/** BENCH.md B6 targets. */
export const B6_TARGETS = {
  maxBytesPerKey: 4 * 1_024,
  maxCreateMs: 1_000,
  maxCloseMs: 1_000,
  maxHeapGrowthBytes: 1_024 * 1_024,
  maxOpenHandles: 0,
} as const;

const fakeKeys = (n: number) =>
  Array.from({ length: n }, (_, i) => `sk-bench-fake-${String(i).padStart(16, '0')}`);

/** `process._getActiveHandles()` is undocumented but is what leak checkers (why-is-node-running) read. */
function activeHandles(): number {
  return (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
}

/** Timers, sockets, servers… that keep the event loop alive. */
function activeResources(): number {
  return process.getActiveResourcesInfo().length;
}

const nextMacrotask = () => new Promise<void>((resolve) => setImmediate(resolve));

function collector(): () => number {
  const gc = globalThis.gc;
  if (gc === undefined)
    throw new Error('B6 needs node --expose-gc (bench/run.ts starts every scenario with it)');
  return () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
}

interface LifecycleFigures {
  readonly bytesPerKey: number;
  readonly createMs: number;
  readonly closeMs: number;
  readonly openHandles: number;
  readonly openResources: number;
}

/** Heap per key, create and close time at 10 000 keys, and what `close()` leaves running. */
async function lifecycle(
  keymesh: Pick<KeyMesh, 'KeyPool'>,
  heapUsed: () => number,
): Promise<LifecycleFigures> {
  const keys = fakeKeys(KEYS);
  await nextMacrotask();
  const handlesBefore = activeHandles();
  const resourcesBefore = activeResources();

  const heapBefore = heapUsed();
  const createStarted = performance.now();
  const big = await keymesh.KeyPool.create({ keys, seed: 1 });
  const createMs = performance.now() - createStarted;
  const bytesPerKey = (heapUsed() - heapBefore) / KEYS;

  // Leave timers behind for close() to clear: a cooldown, a waiter with a deadline.
  const cooled = await big.acquire();
  cooled.rateLimited({ retryAfterMs: 60_000 });
  for (let i = 0; i < 1_000; i++) (await big.acquire()).release();
  const small = await keymesh.KeyPool.create({ keys: keys.slice(0, 1), maxConcurrentPerKey: 1, seed: 1 });
  const held = await small.acquire();
  const waiter = small.acquire({ timeoutMs: 60_000 }).then(
    () => 'granted',
    () => 'rejected',
  );
  const closeStarted = performance.now();
  await big.close();
  const closeMs = performance.now() - closeStarted;
  await small.close();
  held.release();
  await waiter;
  await nextMacrotask();
  return {
    bytesPerKey,
    createMs,
    closeMs,
    openHandles: activeHandles() - handlesBefore,
    openResources: activeResources() - resourcesBefore,
  };
}

/** Heap growth of a 10-key pool over `pairs` acquire/release pairs, after a warm-up. */
async function heapGrowth(
  keymesh: Pick<KeyMesh, 'KeyPool'>,
  heapUsed: () => number,
  pairs: number,
): Promise<number> {
  const pool = await keymesh.KeyPool.create({ keys: fakeKeys(10), seed: 1 });
  for (let i = 0; i < 100_000; i++) (await pool.acquire()).release({ latencyMs: 1 });
  const from = heapUsed();
  for (let i = 0; i < pairs; i++) (await pool.acquire()).release({ latencyMs: 1 });
  const growth = heapUsed() - from;
  await pool.close();
  return growth;
}

/**
 * B6: heap per key and create/close time at 10 000 keys, heap growth over 1 000 000 pairs
 * (`--quick`: 200 000), open handles after `close()`. Runs in its own process (the runner gives each
 * scenario one) so that the heap holds nothing else; each measure has its own scope, so that one
 * measure's garbage is not the next one's baseline.
 */
export async function b6Scenario(
  keymesh: Pick<KeyMesh, 'KeyPool'>,
  options: ScenarioOptions,
): Promise<Omit<ScenarioResult, 'seconds'>> {
  const heapUsed = collector();
  const { bytesPerKey, createMs, closeMs, openHandles, openResources } = await lifecycle(keymesh, heapUsed);
  options.progress(
    `B6: ${formatBytes(bytesPerKey)} per key, create ${formatMs(createMs)}, close ${formatMs(closeMs)}, ${openHandles} handles and ${openResources} resources left`,
  );
  const pairs = options.quick ? 200_000 : 1_000_000;
  const growth = await heapGrowth(keymesh, heapUsed, pairs);
  options.progress(`B6: heap growth ${formatBytes(growth)} over ${formatNumber(pairs)} pairs`);

  const scenario = `B6 ${formatNumber(KEYS)} keys`;
  const rows: Row[] = [
    {
      scenario,
      figure: 'heap per key',
      value: formatBytes(bytesPerKey),
      target: `≤ ${formatBytes(B6_TARGETS.maxBytesPerKey)}`,
      seed: '',
      verdict: atMost(bytesPerKey, B6_TARGETS.maxBytesPerKey),
    },
    {
      scenario,
      figure: 'KeyPool.create',
      value: formatMs(createMs),
      target: `≤ ${formatMs(B6_TARGETS.maxCreateMs)}`,
      seed: '',
      verdict: atMost(createMs, B6_TARGETS.maxCreateMs),
    },
    {
      scenario,
      figure: 'close()',
      value: formatMs(closeMs),
      target: `≤ ${formatMs(B6_TARGETS.maxCloseMs)}`,
      seed: '',
      verdict: atMost(closeMs, B6_TARGETS.maxCloseMs),
    },
    {
      scenario,
      figure: 'open handles after close() (resources)',
      value: `${openHandles} (${openResources})`,
      target: `${B6_TARGETS.maxOpenHandles}`,
      seed: '',
      verdict: atMost(Math.max(openHandles, openResources), B6_TARGETS.maxOpenHandles),
    },
    {
      scenario: `B6 10 keys, ${formatNumber(pairs)} pairs`,
      figure: 'heap growth',
      value: formatBytes(growth),
      target: `≤ ${formatBytes(B6_TARGETS.maxHeapGrowthBytes)}`,
      seed: '',
      verdict: atMost(growth, B6_TARGETS.maxHeapGrowthBytes),
    },
  ];
  return {
    id: 'B6',
    title: 'Memory and lifecycle',
    rows,
    figures: { bytesPerKey, createMs, closeMs, openHandles, openResources, pairs, heapGrowthBytes: growth },
  };
}
