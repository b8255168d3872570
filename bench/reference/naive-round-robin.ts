import type { Clock } from '../../src/clock.js';
import type { WorkloadHeaders, WorkloadLease, WorkloadPool } from '../../src/sim/index.js';

/**
 * The reference of B4: the pool a person writes first. It hands out the keys in turn and skips only
 * a key resting after a 429 that carried a `retry-after` header (in seconds), honoured exactly. It
 * reads nothing else: no other hint, no success headers, no budgets, no dead keys, no outages, no
 * concurrency cap. When every key rests, a caller sleeps until the earliest one is back.
 */
export class NaiveRoundRobin implements WorkloadPool {
  readonly #keys: readonly string[];
  readonly #restUntil: number[];
  readonly #clock: Clock;
  #next = 0;

  constructor(keys: readonly string[], clock: Clock) {
    if (keys.length === 0) throw new RangeError('NaiveRoundRobin: at least one key');
    this.#keys = keys;
    this.#restUntil = keys.map(() => 0);
    this.#clock = clock;
  }

  async acquire(): Promise<WorkloadLease> {
    const count = this.#keys.length;
    for (;;) {
      const now = this.#clock.now();
      for (let step = 0; step < count; step++) {
        const index = (this.#next + step) % count;
        if ((this.#restUntil[index] ?? 0) <= now) {
          this.#next = (index + 1) % count;
          return this.#lease(index);
        }
      }
      const backAt = Math.min(...this.#restUntil);
      await new Promise<void>((resolve) => {
        this.#clock.setTimeout(resolve, backAt - now);
      });
    }
  }

  #lease(index: number): WorkloadLease {
    const rest = (headers: WorkloadHeaders | undefined) => {
      const seconds = Number(headers?.['retry-after']);
      if (headers?.['retry-after'] === undefined || !Number.isFinite(seconds)) return;
      const until = this.#clock.now() + seconds * 1_000;
      this.#restUntil[index] = Math.max(this.#restUntil[index] ?? 0, until);
    };
    return {
      key: this.#keys[index] ?? '',
      release: () => undefined,
      fail: () => undefined,
      rateLimited: (options) => rest(options?.headers),
    };
  }
}
