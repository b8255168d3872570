/** Outcomes seen pool-wide in the recent window, for telling a provider outage from a bad key. */
export interface ProviderHealthView {
  readonly successes: number;
  readonly errors: number;
  /** Distinct keys with a provider error in the window. */
  readonly errorKeys: number;
}

const BUCKETS = 10;

interface Bucket {
  start: number;
  successes: number;
  errors: number;
  keys: Set<string> | undefined;
}

/**
 * A sliding window (in ten buckets) of pool-wide successes and provider errors (5xx, 529,
 * network). O(1) per outcome: it sits on the release path.
 */
export class ProviderHealth {
  readonly #bucketMs: number;
  readonly #buckets: Bucket[] = [];

  /** @param windowMs how far back outcomes count (ms). */
  constructor(windowMs: number) {
    this.#bucketMs = Math.max(1, windowMs / BUCKETS);
  }

  recordSuccess(now: number): void {
    this.#bucket(now).successes++;
  }

  recordError(keyId: string, now: number): void {
    const bucket = this.#bucket(now);
    bucket.errors++;
    if (!bucket.keys) bucket.keys = new Set();
    bucket.keys.add(keyId);
  }

  view(now: number): ProviderHealthView {
    this.#prune(now);
    let successes = 0;
    let errors = 0;
    const keys = new Set<string>();
    for (const bucket of this.#buckets) {
      successes += bucket.successes;
      errors += bucket.errors;
      if (bucket.keys) for (const key of bucket.keys) keys.add(key);
    }
    return { successes, errors, errorKeys: keys.size };
  }

  #bucket(now: number): Bucket {
    const start = now - (now % this.#bucketMs);
    const last = this.#buckets[this.#buckets.length - 1];
    if (last && last.start === start) return last;
    this.#prune(now);
    const bucket: Bucket = { start, successes: 0, errors: 0, keys: undefined };
    this.#buckets.push(bucket);
    return bucket;
  }

  #prune(now: number): void {
    const oldest = now - this.#bucketMs * BUCKETS;
    while (this.#buckets.length > 0 && (this.#buckets[0] as Bucket).start <= oldest) this.#buckets.shift();
  }
}
