/**
 * The members of the B4g sample (BENCH.md) on which KeyMesh still misses a target, with the steady-state
 * figures it reached on them when they were listed (deterministic: the virtual clock and seeded
 * latencies). Issue 11 stays open while this list is not empty. `test/bench/b4g-family.test.ts` holds
 * each listed member to no worse than these figures and fails as soon as one meets every target, so
 * that the entry is removed: the list only shrinks. First listed on 2026-12-03 with 31 of 50 members
 * meeting every target; now 39. The comment above each entry says what it misses. #45 was
 * re-recorded once, 5.6e-8 lower (one success fewer in the whole run moved the bucket's level where
 * the steady part starts).
 */
export interface B4gShortfall {
  /** Steady-state goodput ratio KeyMesh reached (successes ÷ the provider's capacity). */
  readonly ratio: number;
  /** 429s per 1 000 successes KeyMesh drew. */
  readonly per1000: number;
}

export const B4G_SHORTFALLS: ReadonlyMap<number, B4gShortfall> = new Map<number, B4gShortfall>([
  // ratio 0.786 < 0.9
  [1, { ratio: 0.7862892213939893, per1000: 0 }],
  // ratio 0.913 < reference 0.970
  [12, { ratio: 0.9131156769582928, per1000: 0 }],
  // ratio 0.996 < reference 1.000
  [23, { ratio: 0.9963300049102012, per1000: 0.7309941520467836 }],
  // 429s 1.1 > reference 0.0 per 1 000
  [26, { ratio: 0.9624301085076956, per1000: 1.1198208286674132 }],
  // ratio 0.990 < reference 0.994
  [30, { ratio: 0.9901088014051702, per1000: 0 }],
  // ratio 0.569 < 0.9; 429s 7.0 > reference 0.0 per 1 000
  [31, { ratio: 0.5690455708170357, per1000: 7.017543859649122 }],
  // ratio 0.999 < reference 1.000
  [33, { ratio: 0.9988425925925926, per1000: 0 }],
  // ratio 0.952 < reference 1.000; 429s 1.0 > reference 0.0 per 1 000
  [38, { ratio: 0.9515595463137996, per1000: 0.9932952570151478 }],
  // ratio 0.976 < reference 1.000; 429s 36.9 > reference 0.0 per 1 000
  [41, { ratio: 0.9763257575757576, per1000: 36.85741998060136 }],
  // ratio 0.981 < reference 1.000; 429s 2.1 > reference 0.0 per 1 000
  [42, { ratio: 0.9809737216923633, per1000: 2.0768431983385254 }],
  // ratio 0.990 < reference 0.999
  [45, { ratio: 0.9900830423223653, per1000: 0 }],
]);
