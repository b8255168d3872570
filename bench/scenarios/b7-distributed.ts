import type { ScenarioResult } from '../lib/report.js';

/** B7 needs Redis support, which KeyMesh does not have yet: the row says so instead of vanishing. */
export function b7Scenario(): Omit<ScenarioResult, 'seconds'> {
  return {
    id: 'B7',
    title: 'Distributed: 4 processes × 25 workers sharing 5 keys through Redis',
    rows: [
      {
        scenario: 'B7 4 processes × 25 workers, Redis',
        figure: 'goodput ratio; 429s per 1 000; round trips',
        value: 'not available yet (no Redis support)',
        target: '≥ 0.95; ≤ 20; ≤ 1 per acquire',
        seed: 'no multi-process support',
        verdict: '—',
      },
    ],
    figures: { available: false, reason: 'no Redis support' },
  };
}
