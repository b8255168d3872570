/** Pool-wide counters and wait-time percentiles, as `snapshot().metrics` shows them. */
export interface PoolMetricsSnapshot {
  /** Leases granted. */
  readonly acquires: number;
  /** Leases settled as a success. */
  readonly releases: number;
  /** Leases settled as a failure (any kind). */
  readonly failures: number;
  /** Leases settled as rate limited. */
  readonly rateLimits: number;
  /** Acquires that gave up at their deadline (or failed fast: no key could return before it). */
  readonly timeouts: number;
  /** Acquires aborted by their signal. */
  readonly aborts: number;
  /** Acquires rejected because `maxWaiters` callers were already waiting. */
  readonly queueFull: number;
  /** Callers waiting now. */
  readonly waiting: number;
  /**
   * Provider hints ignored because they were non-finite or beyond `maxRetryAfterMs` /
   * `maxQuotaResetMs` (`retry-after: 99999999999`, a reset of 400 nines): the key acted as if the
   * provider had stated no wait.
   */
  readonly ignoredHints: number;
  /** Time from `acquire()` to the grant (ms), over every granted acquire; immediate grants count as 0. */
  readonly waitMs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number };
}

/** Bucket growth: each bucket is 5 % wider than the last, so percentiles are within 5 %. */
const GROWTH = 1.05;
const LOG_GROWTH = Math.log(GROWTH);
/** Waits under this (ms) count as zero. */
const RESOLUTION_MS = 0.01;

/**
 * A log-bucketed histogram: constant memory and O(1) recording however long the pool runs.
 */
export class WaitHistogram {
  readonly #counts: number[] = [];
  #total = 0;
  #max = 0;

  record(ms: number): void {
    const value = Math.max(ms, 0);
    const bucket = value < RESOLUTION_MS ? 0 : 1 + Math.floor(Math.log(value / RESOLUTION_MS) / LOG_GROWTH);
    while (this.#counts.length <= bucket) this.#counts.push(0);
    this.#counts[bucket] = (this.#counts[bucket] ?? 0) + 1;
    this.#total++;
    if (value > this.#max) this.#max = value;
  }

  /** The `q`-quantile (0..1) as the upper edge of its bucket, capped at the maximum seen. */
  quantile(q: number): number {
    if (this.#total === 0) return 0;
    const rank = Math.ceil(q * this.#total);
    let seen = 0;
    for (let bucket = 0; bucket < this.#counts.length; bucket++) {
      seen += this.#counts[bucket] ?? 0;
      if (seen >= rank) {
        return bucket === 0 ? 0 : Math.min(this.#max, RESOLUTION_MS * GROWTH ** bucket);
      }
    }
    return this.#max;
  }

  get max(): number {
    return this.#max;
  }
}

/** Mutable counters owned by one pool. */
export class PoolMetrics {
  acquires = 0;
  releases = 0;
  failures = 0;
  rateLimits = 0;
  timeouts = 0;
  aborts = 0;
  queueFull = 0;
  ignoredHints = 0;
  readonly waits = new WaitHistogram();

  snapshot(waiting: number): PoolMetricsSnapshot {
    return {
      acquires: this.acquires,
      releases: this.releases,
      failures: this.failures,
      rateLimits: this.rateLimits,
      timeouts: this.timeouts,
      aborts: this.aborts,
      queueFull: this.queueFull,
      waiting,
      ignoredHints: this.ignoredHints,
      waitMs: {
        p50: this.waits.quantile(0.5),
        p90: this.waits.quantile(0.9),
        p99: this.waits.quantile(0.99),
        max: this.waits.max,
      },
    };
  }
}
