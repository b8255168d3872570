import { summarize } from '../../src/sim/index.js';
import type { KeyMesh } from '../lib/keymesh.js';
import {
  atMost,
  formatNs,
  formatNumber,
  type Row,
  type ScenarioOptions,
  type ScenarioResult,
} from '../lib/report.js';

const KEYS = 10;
const MAX_CONCURRENT = 8;
const CALLERS = 10_000;
/** BENCH.md B2 targets. */
export const B2_TARGETS = { maxHandoffP99Ns: 100_000, maxOrderViolations: 0 } as const;

const nextMacrotask = () => new Promise<void>((resolve) => setImmediate(resolve));

interface RoundFigures {
  readonly seconds: number;
  /** Release of a lease → the continuation of the waiter it freed a slot for, ns. */
  readonly handoffNs: number[];
  /** Grants that overtook a caller who asked earlier and was still waiting. */
  readonly orderViolations: number;
}

/**
 * One round: `CALLERS` callers ask at once (in index order); each holds its lease for one macrotask
 * and releases it. The first 80 are served at once; every later grant is caused by a release, in
 * order, so grant number g (g ≥ 80) is the hand-off of release number g − 80.
 */
async function round(pool: Pick<InstanceType<KeyMesh['KeyPool']>, 'acquire'>): Promise<RoundFigures> {
  const slots = KEYS * MAX_CONCURRENT;
  const releasedAt: bigint[] = [];
  const handoffNs: number[] = [];
  let granted = 0;
  let highestGranted = -1;
  let orderViolations = 0;
  const caller = async (index: number) => {
    const lease = await pool.acquire();
    const at = process.hrtime.bigint();
    const g = granted++;
    if (g >= slots) {
      const freedBy = releasedAt[g - slots];
      if (freedBy !== undefined) handoffNs.push(Number(at - freedBy));
    }
    if (index < highestGranted) orderViolations++;
    else highestGranted = index;
    await nextMacrotask();
    releasedAt.push(process.hrtime.bigint());
    lease.release();
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: CALLERS }, (_, index) => caller(index)));
  return { seconds: (performance.now() - started) / 1_000, handoffNs, orderViolations };
}

/** B2: 10 keys × maxConcurrent 8, 10 000 concurrent callers each holding a lease for one macrotask. */
export async function b2Scenario(
  keymesh: Pick<KeyMesh, 'KeyPool'>,
  options: ScenarioOptions,
): Promise<Omit<ScenarioResult, 'seconds'>> {
  const keys = Array.from({ length: KEYS }, (_, i) => `sk-bench-fake-${String(i).padStart(16, '0')}`);
  const pool = await keymesh.KeyPool.create({ keys, maxConcurrentPerKey: MAX_CONCURRENT, seed: 1 });
  await round(pool); // warm-up
  const rounds = options.quick ? 3 : 10;
  let seconds = 0;
  let violations = 0;
  const handoff: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const figures = await round(pool);
    seconds += figures.seconds;
    violations += figures.orderViolations;
    handoff.push(...figures.handoffNs);
  }
  await pool.close();
  const pairsPerSecond = (rounds * CALLERS) / seconds;
  const handoffNs = summarize(handoff);
  options.progress(
    `B2: ${formatNumber(pairsPerSecond)} pairs/s, hand-off p99 ${formatNs(handoffNs.p99)}, ${violations} order violations`,
  );
  const scenario = `B2 ${KEYS} keys × ${MAX_CONCURRENT}, ${formatNumber(CALLERS)} callers`;
  const rows: Row[] = [
    {
      scenario,
      figure: 'pairs/s',
      value: formatNumber(pairsPerSecond),
      target: '',
      seed: 'no FIFO; waiters poll',
      verdict: '—',
    },
    {
      scenario,
      figure: 'release → next waiter hand-off p50 / p99',
      value: `${formatNs(handoffNs.p50)} / ${formatNs(handoffNs.p99)}`,
      target: `p99 ≤ ${formatNs(B2_TARGETS.maxHandoffP99Ns)}`,
      seed: '',
      verdict: atMost(handoffNs.p99, B2_TARGETS.maxHandoffP99Ns),
    },
    {
      scenario,
      figure: 'FIFO order violations',
      value: formatNumber(violations),
      target: `${B2_TARGETS.maxOrderViolations}`,
      seed: '',
      verdict: atMost(violations, B2_TARGETS.maxOrderViolations),
    },
  ];
  return {
    id: 'B2',
    title: 'Hand-off: 10 keys × 8 slots, 10 000 callers',
    rows,
    figures: { rounds, pairsPerSecond, handoffNs, orderViolations: violations },
  };
}
