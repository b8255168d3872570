/** Order statistics of a sample, as the benchmark tables report them. */
export interface SampleSummary {
  /** Number of values. */
  readonly count: number;
  /** Median (nearest rank). */
  readonly p50: number;
  /** 99th percentile (nearest rank). */
  readonly p99: number;
  /** Largest value. */
  readonly max: number;
  /** Arithmetic mean. */
  readonly mean: number;
}

/**
 * The `q`-quantile (`q` in [0, 1]) of values sorted in ascending order, by nearest rank: the
 * smallest value with at least `q` of the sample at or below it. `0` for an empty sample.
 * Exact, unlike the pool's log-bucketed wait histogram, so that tests can assert it.
 */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length)));
  return sorted[rank - 1] ?? 0;
}

/** Median, p99, max and mean of `values` (any order; the input is not modified). */
export function summarize(values: ArrayLike<number>): SampleSummary {
  // A typed array sorts numerically and much faster than Array#sort with a comparator.
  const sorted = Float64Array.from(values).sort();
  let total = 0;
  for (const value of sorted) total += value;
  return {
    count: sorted.length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.length === 0 ? 0 : (sorted[sorted.length - 1] ?? 0),
    mean: sorted.length === 0 ? 0 : total / sorted.length,
  };
}
