import type { Clock } from '../../src/clock.js';
import type { WorkloadHeaders, WorkloadLease, WorkloadPool } from '../../src/sim/index.js';

const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, µs: 1e-3 };

/** Go durations as OpenAI writes resets (`'20ms'`, `'1.5s'`, `'6m0s'`), in ms; `undefined` if absent. */
function duration(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  let ms = 0;
  for (const [, n, u] of text.matchAll(/(\d+(?:\.\d+)?)(ms|µs|h|m|s)/g))
    ms += Number(n) * (UNIT_MS[u ?? ''] ?? 0);
  return ms;
}
const number = (text: string | undefined) => (text === undefined ? undefined : Number(text));

interface Key {
  readonly key: string;
  inFlight: number;
  /** What the newest answer said remains; `undefined` before one said anything. */
  remaining: number | undefined;
  /** Send time of the call whose answer set `remaining`: an older answer never overrides it. */
  answerSentAt: number;
  headerless: boolean;
  restUntil: number;
  /** Inferred from a 429 when answers carry no headers: at most `limit` successful sends (and calls in flight) per `windowMs`. */
  limit: number | undefined;
  windowMs: number;
  sends: number[];
  runStart: number | undefined;
  runEnd: number;
  runSuccesses: number;
  backoffMs: number;
}

/**
 * The reference of B4g: a client that knows nothing of the provider but its headers. A key admits
 * at most what its last answer said remains, less what is in flight; when nothing remains it rests
 * until the stated reset, then sends one call, whose answer says more. With no success headers it
 * infers a window from a 429's wait and its own send times (the successes since it last rested, over
 * the time from the first of them to the end of the wait) and keeps its sends within it. A bare 429
 * rests the key 1 s, doubling. Callers wait in FIFO order.
 */
export class HeaderClient implements WorkloadPool {
  readonly #keys: Key[];
  readonly #clock: Clock;
  readonly #waiters: ((lease: WorkloadLease) => void)[] = [];
  #next = 0;
  #timer: { readonly at: number; readonly handle: unknown } | undefined;

  constructor(keys: readonly string[], clock: Clock) {
    this.#clock = clock;
    this.#keys = keys.map((key) => ({
      key,
      inFlight: 0,
      remaining: undefined,
      answerSentAt: -Infinity,
      headerless: false,
      restUntil: 0,
      limit: undefined,
      windowMs: 0,
      sends: [],
      runStart: undefined,
      runEnd: Infinity,
      runSuccesses: 0,
      backoffMs: 1_000,
    }));
  }

  acquire(): Promise<WorkloadLease> {
    return new Promise((resolve) => {
      this.#waiters.push(resolve);
      this.#pump();
    });
  }

  /** When `k` may send next (≤ now: now), from what its answers said. */
  #readyAt(k: Key, now: number): number {
    if (now < k.restUntil) return k.restUntil;
    if (!k.headerless) return (k.remaining ?? 1) - k.inFlight > 0 ? now : Infinity;
    if (k.limit === undefined) return now;
    while (k.sends.length > 0 && (k.sends[0] ?? 0) + k.windowMs <= now) k.sends.shift();
    if (k.sends.length + k.inFlight < k.limit) return now;
    return k.inFlight > 0 ? Infinity : (k.sends[k.sends.length - k.limit] ?? now) + k.windowMs;
  }

  #pump(): void {
    const now = this.#clock.now();
    let wake = Infinity;
    for (let step = 0; step < this.#keys.length && this.#waiters.length > 0; step++) {
      const k = this.#keys[(this.#next + step) % this.#keys.length] as Key;
      let at = this.#readyAt(k, now);
      while (at <= now && this.#waiters.length > 0) {
        this.#waiters.shift()?.(this.#lease(k, now));
        at = this.#readyAt(k, now);
      }
      wake = Math.min(wake, at);
    }
    this.#next = (this.#next + 1) % this.#keys.length;
    if (
      this.#waiters.length === 0 ||
      wake === Infinity ||
      (this.#timer !== undefined && this.#timer.at <= wake)
    )
      return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer.handle);
    const handle = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, wake - now);
    this.#timer = { at: wake, handle };
  }

  #lease(k: Key, sentAt: number): WorkloadLease {
    k.inFlight++;
    // A run: the sends from the first after a rest to the one a 429 answers.
    if (k.runStart === undefined || (k.runEnd < Infinity && sentAt >= k.restUntil)) {
      k.runStart = sentAt;
      k.runEnd = Infinity;
      k.runSuccesses = 0;
    }
    const settle = (headers: WorkloadHeaders | undefined, outcome: 'success' | 'limited' | 'failed') => {
      const now = this.#clock.now();
      k.inFlight--;
      const remaining = number(headers?.['x-ratelimit-remaining-requests']);
      const reset = duration(headers?.['x-ratelimit-reset-requests']);
      const seconds = number(headers?.['retry-after']);
      const wait = number(headers?.['retry-after-ms']) ?? (seconds === undefined ? reset : seconds * 1_000);
      if (remaining !== undefined && sentAt >= k.answerSentAt) {
        k.answerSentAt = sentAt;
        k.remaining = remaining > 0 ? remaining : 1; // after the rest: one call
        if (remaining === 0) k.restUntil = Math.max(k.restUntil, now + (reset ?? 0));
      }
      if (outcome === 'success') {
        k.headerless ||= remaining === undefined;
        let i = k.sends.length;
        while (i > 0 && (k.sends[i - 1] ?? 0) > sentAt) i--;
        k.sends.splice(i, 0, sentAt);
        if (sentAt >= (k.runStart ?? Infinity) && sentAt < k.runEnd) k.runSuccesses++;
        // A success answered after the 429 that closed its run still counts towards the limit.
        if (k.limit !== undefined && k.runEnd < Infinity) k.limit = Math.max(k.limit, k.runSuccesses);
        k.backoffMs = 1_000;
      } else if (outcome === 'limited') {
        if (wait !== undefined) k.restUntil = Math.max(k.restUntil, now + wait);
        else if (sentAt >= k.restUntil) {
          // A bare 429 of a call sent after the last rest: rest 1 s, doubling up to a minute.
          k.restUntil = now + k.backoffMs;
          k.backoffMs = Math.min(60_000, k.backoffMs * 2);
        }
        if (k.runEnd === Infinity && sentAt >= (k.runStart ?? Infinity)) {
          k.runEnd = sentAt;
          if (k.headerless && k.runSuccesses > 0) {
            k.limit = k.runSuccesses;
            k.windowMs = k.restUntil - (k.runStart ?? 0);
          }
        }
        if (remaining === undefined && !k.headerless) k.remaining = 1;
      }
      this.#pump();
    };
    return {
      key: k.key,
      release: (options) => settle(options?.headers, 'success'),
      rateLimited: (options) => settle(options?.headers, 'limited'),
      fail: () => settle(undefined, 'failed'),
    };
  }
}
