import { summarize } from '../../src/sim/index.js';
import type { KeyMesh } from '../lib/keymesh.js';
import { atMost, formatMs, type Row, type ScenarioOptions, type ScenarioResult } from '../lib/report.js';

const COOLDOWN_MS = 200;
const REPEATS = 20;
/** BENCH.md B3 target. */
export const B3_TARGETS = { maxLatenessP99Ms: 2 } as const;

/**
 * B3: one key cooled for 200 ms (real clock) and one waiter; how late after the cooldown's end the
 * waiter holds its lease, 20 times. The end is when the caller asked the key to be back:
 * `performance.now()` just before `rateLimited({ retryAfterMs: 200 })`, plus 200 ms.
 */
export async function b3Scenario(
  keymesh: Pick<KeyMesh, 'KeyPool'>,
  options: ScenarioOptions,
): Promise<Omit<ScenarioResult, 'seconds'>> {
  const pool = await keymesh.KeyPool.create({ keys: ['sk-bench-fake-0000000000000001'], seed: 1 });
  // The pool's timers are unref'ed (a pool never keeps a script alive); this one keeps the run alive.
  const keepAlive = setInterval(() => {}, 1_000);
  const lateness: number[] = [];
  try {
    for (let i = 0; i < REPEATS; i++) {
      const lease = await pool.acquire();
      const coolingFrom = performance.now();
      lease.rateLimited({ retryAfterMs: COOLDOWN_MS });
      const next = await pool.acquire({ timeoutMs: 5_000 });
      lateness.push(performance.now() - (coolingFrom + COOLDOWN_MS));
      next.release();
    }
  } finally {
    clearInterval(keepAlive);
    await pool.close();
  }
  const ms = summarize(lateness);
  options.progress(
    `B3: lease ${formatMs(ms.p50)} (p50) / ${formatMs(ms.p99)} (p99) after the cooldown's end`,
  );
  const rows: Row[] = [
    {
      scenario: `B3 1 key cooled ${COOLDOWN_MS} ms, ${REPEATS} repeats`,
      figure: "cooldown end → waiter's lease p50 / p99",
      value: `${formatMs(ms.p50)} / ${formatMs(ms.p99)}`,
      target: `p99 ≤ ${B3_TARGETS.maxLatenessP99Ms} ms`,
      seed: '300 ms median (0.5 s polling)',
      verdict: atMost(ms.p99, B3_TARGETS.maxLatenessP99Ms),
    },
  ];
  return {
    id: 'B3',
    title: 'Wake-up after a cooldown',
    rows,
    figures: { latenessMs: ms, samples: lateness },
  };
}
