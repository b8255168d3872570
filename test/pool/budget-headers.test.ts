import { describe, expect, it } from 'vitest';
import { KeyPool } from '../../src/index.js';
import { fixedLatency, runWorkload, SimulatedProvider, VirtualClock } from '../../src/sim/index.js';

/**
 * A key the pool paces by an `rpm` budget spreads its calls over the provider's window. Its success
 * headers (remaining / reset / limit) must not make it rest a whole window after the window's last
 * grant: that halves its rate (the demo's budgeted keys once ran at 55 % of their capacity).
 */
describe('a budget-paced key whose successes carry rate-limit headers', () => {
  it('keeps its configured rate instead of resting a window after every window', async () => {
    const clock = new VirtualClock();
    const keys = ['sk-test-fake-budget-000000000001', 'sk-test-fake-budget-000000000002'];
    const provider = new SimulatedProvider({
      clock,
      hints: 'retry-after',
      successHeaders: true,
      latency: fixedLatency(50),
      seed: 7,
      keys: keys.map((key) => ({ key, limits: { requestsPerSecond: 10 } })),
    });
    const pool = await KeyPool.create({ keys: keys.map((key) => ({ key, rpm: 600 })), clock, seed: 7 });
    try {
      const report = await runWorkload({
        clock,
        provider,
        pool,
        load: { kind: 'workers', workers: 40 },
        durationMs: 30_000,
        seed: 7,
      });
      expect(report.goodputRatio).toBeGreaterThanOrEqual(0.95);
      expect(report.rateLimitedPer1000).toBe(0);
    } finally {
      await pool.close();
    }
  });
});
