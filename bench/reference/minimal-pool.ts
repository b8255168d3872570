/**
 * The reference of B1: the smallest correct promise-based least-busy key pool a person would write
 * by hand. An array of in-flight counters and one of cooldown ends, a linear scan for the least busy
 * key that is not resting, and a FIFO of waiters served when a lease settles or a cooldown ends.
 * Each lease settles once. No XState, no persistence, no events, no classification.
 */
export class MinimalPool {
  readonly #keys: readonly string[];
  readonly #inFlight: number[];
  readonly #restUntil: number[];
  readonly #maxConcurrent: number;
  readonly #waiters: ((lease: MinimalLease) => void)[] = [];
  #wake: ReturnType<typeof setTimeout> | undefined;

  constructor(keys: readonly string[], options: { readonly maxConcurrent?: number } = {}) {
    if (keys.length === 0) throw new RangeError('MinimalPool: at least one key');
    this.#keys = keys;
    this.#inFlight = keys.map(() => 0);
    this.#restUntil = keys.map(() => 0);
    this.#maxConcurrent = options.maxConcurrent ?? Number.POSITIVE_INFINITY;
  }

  acquire(): Promise<MinimalLease> {
    const index = this.#waiters.length === 0 ? this.#leastBusy(Date.now()) : -1;
    if (index >= 0) return Promise.resolve(this.#grant(index));
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#scheduleWake();
    });
  }

  /** @internal Called by a lease when it settles. */
  settle(index: number, restMs: number): void {
    this.#inFlight[index] = (this.#inFlight[index] ?? 1) - 1;
    if (restMs > 0) this.#restUntil[index] = Math.max(this.#restUntil[index] ?? 0, Date.now() + restMs);
    this.#serveWaiters();
  }

  #leastBusy(now: number): number {
    let best = -1;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.#keys.length; i++) {
      const load = this.#inFlight[i] ?? 0;
      if (load < bestLoad && load < this.#maxConcurrent && (this.#restUntil[i] ?? 0) <= now) {
        best = i;
        bestLoad = load;
      }
    }
    return best;
  }

  #grant(index: number): MinimalLease {
    this.#inFlight[index] = (this.#inFlight[index] ?? 0) + 1;
    return new MinimalLease(this, index, this.#keys[index] ?? '');
  }

  #serveWaiters(): void {
    const now = Date.now();
    while (this.#waiters.length > 0) {
      const index = this.#leastBusy(now);
      if (index < 0) break;
      this.#waiters.shift()?.(this.#grant(index));
    }
    this.#scheduleWake();
  }

  /** With waiters and every free key resting, wake up when the first cooldown ends. */
  #scheduleWake(): void {
    if (this.#wake !== undefined) clearTimeout(this.#wake);
    this.#wake = undefined;
    if (this.#waiters.length === 0) return;
    const now = Date.now();
    let backAt = Number.POSITIVE_INFINITY;
    for (let i = 0; i < this.#keys.length; i++) {
      const until = this.#restUntil[i] ?? 0;
      if (until > now && (this.#inFlight[i] ?? 0) < this.#maxConcurrent) backAt = Math.min(backAt, until);
    }
    if (Number.isFinite(backAt)) this.#wake = setTimeout(() => this.#serveWaiters(), backAt - now);
  }
}

/** One use of a key from {@link MinimalPool}: settle it exactly once. */
export class MinimalLease {
  readonly key: string;
  readonly #pool: MinimalPool;
  readonly #index: number;
  #settled = false;

  constructor(pool: MinimalPool, index: number, key: string) {
    this.#pool = pool;
    this.#index = index;
    this.key = key;
  }

  release(_options?: { readonly latencyMs?: number }): void {
    this.#settle(0);
  }

  fail(_error?: unknown): void {
    this.#settle(0);
  }

  rateLimited(options?: { readonly retryAfterMs?: number }): void {
    this.#settle(options?.retryAfterMs ?? 60_000);
  }

  #settle(restMs: number): void {
    if (this.#settled) throw new Error('MinimalLease: already settled');
    this.#settled = true;
    this.#pool.settle(this.#index, restMs);
  }
}
