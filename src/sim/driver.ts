import { classifyOutcome } from '../limits/classify.js';
import { type SampleSummary, summarize } from './figures.js';
import type { SimulatedKeyStats, SimulatedProvider, SimulatedResponse } from './provider.js';
import { createRandom, type Random } from './random.js';
import type { VirtualClock } from './virtual-clock.js';

/** Response headers as the provider returns them (lower-case names). */
export type WorkloadHeaders = Readonly<Record<string, string>>;

/** Tokens a call used, as `lease.release({ usage })` takes them. */
export interface WorkloadUsage {
  readonly inputTokens: number;
  readonly outputTokens: number;
}

/**
 * What the driver needs of a lease. KeyMesh's `Lease` satisfies it, and so do the reference pools
 * of the benchmarks, which is how one workload measures both.
 */
export interface WorkloadLease {
  /** The raw key, presented to the provider. */
  readonly key: string;
  /** The call succeeded; the headers and usage let a pool learn the provider's counters. */
  release(options?: {
    readonly latencyMs?: number;
    readonly headers?: WorkloadHeaders;
    readonly usage?: WorkloadUsage;
  }): unknown;
  /** The call got a 429. `scope: 'group'`: the provider said the key's project, not the key, is throttled. */
  rateLimited(options?: {
    readonly retryAfterMs?: number;
    readonly headers?: WorkloadHeaders;
    readonly scope?: 'key' | 'group';
  }): unknown;
  /**
   * The call failed; the error is the provider's response (status, headers, body). `kind`: a spent
   * `quota` (until `retryAfterMs`), a `revoked` or `disabled` key, a `provider` error (5xx: the
   * pool judges between a bad key and an outage); none for anything else.
   */
  fail(
    error?: unknown,
    options?: {
      readonly kind?: 'quota' | 'revoked' | 'disabled' | 'provider';
      readonly retryAfterMs?: number;
      readonly scope?: 'key' | 'group';
    },
  ): unknown;
}

/** What the driver needs of a pool: `KeyPool` satisfies it. */
export interface WorkloadPool {
  acquire(options?: { readonly timeoutMs?: number; readonly tokens?: number }): Promise<WorkloadLease>;
}

/**
 * Who calls the provider.
 * - `workers`: a closed loop: each worker acquires, calls, waits the call's latency, settles, and
 *   starts again at once, whatever the outcome. `startSpreadMs` spreads the first starts uniformly
 *   (seeded) over `[0, startSpreadMs)`; default 0: everyone starts together.
 * - `arrivals`: an open loop: requests arrive at `perSecond` (exponential gaps when `poisson`, the
 *   default, else evenly spaced); each tries up to `maxAttempts` times (default 5) until a success.
 */
export type WorkloadLoad =
  | { readonly kind: 'workers'; readonly workers: number; readonly startSpreadMs?: number }
  | {
      readonly kind: 'arrivals';
      readonly perSecond: number;
      readonly maxAttempts?: number;
      readonly poisson?: boolean;
    };

/** Options of {@link runWorkload}. */
export interface WorkloadOptions {
  /** The clock the pool and the provider run on; the driver moves it timer by timer. */
  readonly clock: VirtualClock;
  readonly provider: SimulatedProvider;
  readonly pool: WorkloadPool;
  readonly load: WorkloadLoad;
  /** Simulated time to run, in ms (> 0). Calls are started only before its end. */
  readonly durationMs: number;
  /**
   * Tokens each call costs (prompt + maximum output, as providers count them), passed to
   * `acquire({ tokens })` and to the provider: a number, or drawn per call. Default 0.
   */
  readonly tokens?: number | ((random: Random) => number);
  /** Seeds start offsets, arrival gaps and drawn token sizes. Default 1. */
  readonly seed?: number;
  /** `timeoutMs` of every acquire. Default `Infinity`: a worker waits as long as the pool says. */
  readonly acquireTimeoutMs?: number;
  /** Width of the success timeline's buckets, in ms. Default 100. */
  readonly bucketMs?: number;
  /**
   * Ms from the start after which the run counts as steady (the cold start before it is left out):
   * when given, the report's `steady` figures cover the calls started and the acquires granted from
   * then on. Must lie in `[0, durationMs)`. Default: no steady figures.
   */
  readonly steadyFromMs?: number;
}

/** Figures of the steady part of a run (calls started, acquires granted, from `fromMs` on). */
export interface WorkloadSteadyFigures {
  /** Ms from the start at which the steady part begins. */
  readonly fromMs: number;
  readonly successes: number;
  readonly rateLimited: number;
  /**
   * Successes the provider could have admitted over the steady part: `provider.capacity` of its
   * length, plus what its buckets held when it began, less what they still hold at the end
   * (`provider.banked()`): on a bucket, only what overflowed a full bucket is lost, whenever it was
   * used. Windows bank nothing.
   */
  readonly capacity: number;
  readonly goodputRatio: number;
  readonly rateLimitedPer1000: number;
  readonly waitMs: SampleSummary;
}

/** Per-key figures of a run, in the provider's key order. */
export interface WorkloadKeyFigures {
  /** The provider's label of the key. */
  readonly label: string;
  readonly calls: number;
  readonly successes: number;
  readonly rateLimited: number;
  /** 401, 500 and 503 answers. */
  readonly errors: number;
  /** This key's successes ÷ all successes (0 when there were none). */
  readonly share: number;
  /** Ms from the start at which the first 401 for this key came back; `undefined` if none did. */
  readonly firstUnauthorizedAt: number | undefined;
  /** Calls presented with this key after its first 401 came back. */
  readonly callsAfterUnauthorized: number;
}

/** Figures of an `arrivals` run. */
export interface WorkloadRequestFigures {
  readonly arrived: number;
  readonly succeeded: number;
  /** Requests that used up their attempts without a success. */
  readonly abandoned: number;
  /** Arrival to success, in virtual ms, over the requests that succeeded. */
  readonly latencyMs: SampleSummary;
}

/** What {@link runWorkload} measured. Times are virtual ms; counts cover calls started in the run. */
export interface WorkloadReport {
  /** Epoch ms (virtual) at which the run started. */
  readonly startedAt: number;
  readonly durationMs: number;
  readonly calls: number;
  readonly successes: number;
  readonly rateLimited: number;
  /** 401, 500 and 503 answers. */
  readonly errors: number;
  /**
   * Successes the provider could have admitted over the run: `provider.capacity`, plus what its
   * request buckets held at the start, less what they still hold at the end (`provider.banked()`;
   * 0 for windows). On a bucket only what overflows a full bucket is lost, whenever it is used.
   */
  readonly capacity: number;
  /** Successes ÷ capacity: successes per second over the provider's total capacity per second. */
  readonly goodputRatio: number;
  /** 429s per 1 000 successes (`Infinity` with 429s and no success). */
  readonly rateLimitedPer1000: number;
  /** From `acquire()` to the lease, over every acquire granted in the run. */
  readonly waitMs: SampleSummary;
  /** Acquires that rejected (a timeout, or no key able to return); the worker waited and retried. */
  readonly acquireRejections: number;
  readonly keys: readonly WorkloadKeyFigures[];
  /** Successes by the instant their call started, in buckets of `bucketMs`. */
  readonly timeline: { readonly bucketMs: number; readonly successes: readonly number[] };
  /** Present for an `arrivals` load. */
  readonly requests: WorkloadRequestFigures | undefined;
  /** Present when `steadyFromMs` was given. */
  readonly steady: WorkloadSteadyFigures | undefined;
  /** Distinct instants the clock was moved to. */
  readonly steps: number;
}

/** A run that keeps doing work without time moving is a bug in the pool or the workload. */
const MAX_STEPS_AT_ONE_INSTANT = 100_000;
const DEFAULT_REJECTION_BACKOFF_MS = 1_000;

/**
 * Runs a pool against a simulated provider on a virtual clock, deterministically, and measures the
 * figures of BENCH.md B4: goodput ratio, 429s per 1 000 successes, acquire waits, per-key shares.
 *
 * Each attempt: `acquire({ tokens })` → `provider.call(lease.key, { tokens })` → wait the response's
 * latency on the clock → settle from `classifyOutcome(response, { now })` as `pool.withKey` does: a
 * success is `release({ latencyMs, headers, usage })`, a rate limit `rateLimited({ retryAfterMs,
 * headers, scope })`, a spent quota, a revoked or disabled key and a 5xx `fail(response, { kind })`
 * (`quota`, `revoked`, `disabled`, `provider`), anything else `fail(response)`.
 *
 * Time moves one timer deadline at a time; between two moves every pending promise continuation
 * runs, so the pool sees exactly the order of events a real run would at those instants. The
 * provider should be fresh or at least unshared: its counters are read before and after the run.
 * The pool is left open (with leases out at the end); close it afterwards. Rejects with the first
 * error a worker throws (an acquire that rejects is not one: the worker backs off and retries).
 */
export async function runWorkload(options: WorkloadOptions): Promise<WorkloadReport> {
  const { clock, provider, pool, load } = options;
  if (!(options.durationMs > 0) || !Number.isFinite(options.durationMs)) {
    throw new RangeError(`runWorkload: durationMs must be a finite number > 0, got ${options.durationMs}`);
  }
  const random = createRandom(options.seed ?? 1);
  const tokenOption = options.tokens ?? 0;
  const drawTokens = typeof tokenOption === 'number' ? () => tokenOption : () => tokenOption(random);
  const acquireOptions = (tokens: number) => ({ timeoutMs: options.acquireTimeoutMs ?? Infinity, tokens });
  const bucketMs = options.bucketMs ?? 100;
  const steadyFromMs = options.steadyFromMs;
  if (steadyFromMs !== undefined && !(steadyFromMs >= 0 && steadyFromMs < options.durationMs)) {
    throw new RangeError(
      `runWorkload: steadyFromMs must lie in [0, durationMs), got ${steadyFromMs} of ${options.durationMs}`,
    );
  }

  const startedAt = clock.now();
  const end = startedAt + options.durationMs;
  const over = (): boolean => clock.now() >= end;
  const before = new Map(provider.stats().map((s) => [s.label, s]));
  const bankedAtStart = provider.banked();
  const labels = new Map<string, string>();
  const labelOf = (key: string): string => {
    let label = labels.get(key);
    if (label === undefined) {
      label = provider.keyStats(key).label;
      labels.set(key, label);
    }
    return label;
  };

  const waits: number[] = [];
  const steadyWaits: number[] = [];
  let steadySuccesses = 0;
  let bankedAtSteady = 0;
  // Scheduled before any worker's timer, so it runs first at its instant.
  if (steadyFromMs !== undefined) {
    clock.setTimeout(() => {
      bankedAtSteady = provider.banked();
    }, steadyFromMs);
  }
  let steadyRateLimited = 0;
  const timeline: number[] = [];
  const firstUnauthorizedAt = new Map<string, number>();
  const callsAfterUnauthorized = new Map<string, number>();
  let acquireRejections = 0;
  // A throw in a worker (a settle the pool refuses, a key the provider does not know) ends the run.
  const failures: unknown[] = [];
  const guard = (work: Promise<unknown>): void => {
    work.catch((error: unknown) => failures.push(error));
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      clock.setTimeout(resolve, ms);
    });

  /** One acquire → call → settle. Resolves to the response, or `undefined` when no call was made. */
  const attempt = async (): Promise<SimulatedResponse | undefined> => {
    const tokens = drawTokens();
    const askedAt = clock.now();
    let lease: WorkloadLease;
    try {
      lease = await pool.acquire(acquireOptions(tokens));
    } catch (error) {
      if (over()) return undefined;
      acquireRejections++;
      await sleep(rejectionBackoffMs(error));
      return undefined;
    }
    if (over()) return undefined;
    waits.push(clock.now() - askedAt);
    const steady = steadyFromMs !== undefined && clock.now() - startedAt >= steadyFromMs;
    if (steady) steadyWaits.push(clock.now() - askedAt);
    const label = labelOf(lease.key);
    if (firstUnauthorizedAt.has(label))
      callsAfterUnauthorized.set(label, (callsAfterUnauthorized.get(label) ?? 0) + 1);
    const response = provider.call(lease.key, { tokens });
    if (steady && response.outcome === 'success') steadySuccesses++;
    if (steady && response.outcome === 'rate-limited') steadyRateLimited++;
    if (response.outcome === 'success') {
      const bucket = Math.floor((clock.now() - startedAt) / bucketMs);
      timeline[bucket] = (timeline[bucket] ?? 0) + 1;
    }
    await sleep(response.latencyMs);
    if (response.outcome === 'unauthorized' && !firstUnauthorizedAt.has(label)) {
      firstUnauthorizedAt.set(label, clock.now() - startedAt);
    }
    settleLease(lease, response, clock.now());
    return response;
  };

  let requests: RequestTally | undefined;
  if (load.kind === 'workers') {
    const spread = load.startSpreadMs ?? 0;
    for (let i = 0; i < load.workers; i++) {
      const offset = spread > 0 ? Math.floor(random.next() * spread) : 0;
      guard(
        (async () => {
          if (offset > 0) await sleep(offset);
          while (!over()) await attempt();
        })(),
      );
    }
  } else {
    requests = { arrived: 0, succeeded: 0, abandoned: 0, latencies: [] };
    startArrivals(load, requests);
  }

  function startArrivals(arrivals: Extract<WorkloadLoad, { kind: 'arrivals' }>, tally: RequestTally): void {
    const meanGapMs = 1_000 / arrivals.perSecond;
    const maxAttempts = arrivals.maxAttempts ?? 5;
    const poisson = arrivals.poisson ?? true;
    const request = async () => {
      const arrivedAt = clock.now();
      tally.arrived++;
      for (let n = 0; n < maxAttempts; n++) {
        if (over()) return;
        const response = await attempt();
        if (response?.outcome === 'success') {
          tally.succeeded++;
          tally.latencies.push(clock.now() - arrivedAt);
          return;
        }
        // Cut short by the end of the run, not out of attempts.
        if (response === undefined && over()) return;
      }
      tally.abandoned++;
    };
    const arrive = () => {
      if (over()) return;
      guard(request());
      const gap = poisson ? -Math.log(1 - random.next()) * meanGapMs : meanGapMs;
      clock.setTimeout(arrive, gap);
    };
    arrive();
  }

  let steps = 0;
  let stepsHere = 0;
  for (;;) {
    await drainContinuations();
    if (failures.length > 0) throw failures[0];
    const next = clock.nextTimerAt;
    if (next === undefined || next >= end) break;
    stepsHere = next === clock.now() ? stepsHere + 1 : 0;
    if (stepsHere > MAX_STEPS_AT_ONE_INSTANT) {
      throw new Error(
        `runWorkload: ${MAX_STEPS_AT_ONE_INSTANT} timer steps at t = ${next - startedAt} ms without time moving; the pool or the workload loops without waiting`,
      );
    }
    clock.advanceTo(next);
    steps++;
  }
  clock.advanceTo(end);
  await drainContinuations();
  if (failures.length > 0) throw failures[0];

  const after = provider.stats();
  const keys = after.map((stats) => difference(stats, before.get(stats.label)));
  const successes = sum(keys, 'successes');
  const rateLimited = sum(keys, 'rateLimited');
  const tokensPerCall = typeof tokenOption === 'number' && tokenOption > 0 ? tokenOption : 0;
  const bankedAtEnd = provider.banked();
  const capacity = provider.capacity(options.durationMs, { tokensPerCall }) + bankedAtStart - bankedAtEnd;
  let steady: WorkloadSteadyFigures | undefined;
  if (steadyFromMs !== undefined) {
    // What the buckets held at the start is capacity too; what they hold at the end was not used up.
    const steadyCapacity =
      provider.capacity(options.durationMs - steadyFromMs, { tokensPerCall }) +
      bankedAtSteady -
      provider.banked();
    steady = {
      fromMs: steadyFromMs,
      successes: steadySuccesses,
      rateLimited: steadyRateLimited,
      capacity: steadyCapacity,
      goodputRatio: steadyCapacity > 0 ? steadySuccesses / steadyCapacity : 0,
      rateLimitedPer1000: per1000(steadyRateLimited, steadySuccesses),
      waitMs: summarize(steadyWaits),
    };
  }
  return {
    startedAt,
    durationMs: options.durationMs,
    calls: sum(keys, 'calls'),
    successes,
    rateLimited,
    errors: sum(keys, 'errors'),
    capacity,
    goodputRatio: capacity > 0 ? successes / capacity : 0,
    rateLimitedPer1000: per1000(rateLimited, successes),
    waitMs: summarize(waits),
    acquireRejections,
    keys: keys.map((k) => ({
      label: k.label,
      calls: k.calls,
      successes: k.successes,
      rateLimited: k.rateLimited,
      errors: k.errors,
      share: successes > 0 ? k.successes / successes : 0,
      firstUnauthorizedAt: firstUnauthorizedAt.get(k.label),
      callsAfterUnauthorized: callsAfterUnauthorized.get(k.label) ?? 0,
    })),
    timeline: {
      bucketMs,
      successes: Array.from({ length: Math.ceil(options.durationMs / bucketMs) }, (_, i) => timeline[i] ?? 0),
    },
    requests:
      requests === undefined
        ? undefined
        : {
            arrived: requests.arrived,
            succeeded: requests.succeeded,
            abandoned: requests.abandoned,
            latencyMs: summarize(requests.latencies),
          },
    steady,
    steps,
  };
}

/** Successes of calls started in `[fromMs, toMs)` (ms from the run's start; bucket-aligned). */
export function successesBetween(report: WorkloadReport, fromMs: number, toMs: number): number {
  const { bucketMs, successes } = report.timeline;
  let total = 0;
  for (let i = Math.max(0, Math.ceil(fromMs / bucketMs)); i < Math.ceil(toMs / bucketMs); i++) {
    total += successes[i] ?? 0;
  }
  return total;
}

/** 429s (or any count) per 1 000 successes; `Infinity` when there are some and no success. */
export function per1000(count: number, successes: number): number {
  if (count === 0) return 0;
  return successes === 0 ? Number.POSITIVE_INFINITY : (count * 1_000) / successes;
}

interface RequestTally {
  arrived: number;
  succeeded: number;
  abandoned: number;
  readonly latencies: number[];
}

/**
 * Settles a lease the way an application that classifies responses would, as `pool.withKey` does
 * (see {@link runWorkload}), with the call's latency, headers and token usage besides.
 */
function settleLease(lease: WorkloadLease, response: SimulatedResponse, now: number): void {
  const outcome = classifyOutcome(response, { now });
  const { headers } = response;
  switch (outcome.kind) {
    case 'success':
      lease.release({
        latencyMs: response.latencyMs,
        headers,
        // The provider charges `tokens` (prompt + maximum output) as one figure.
        usage: { inputTokens: response.tokens, outputTokens: 0 },
      });
      return;
    case 'rate-limited':
      lease.rateLimited({ retryAfterMs: outcome.retryAfterMs, headers, scope: outcome.scope });
      return;
    case 'quota':
      lease.fail(response, { kind: 'quota', retryAfterMs: outcome.retryAfterMs, scope: outcome.scope });
      return;
    case 'revoked':
    case 'disabled':
      lease.fail(response, { kind: outcome.kind });
      return;
    case 'provider-error':
      lease.fail(response, { kind: 'provider' });
      return;
    case 'failed':
      lease.fail(response);
      return;
  }
}

/**
 * Lets every queued promise continuation run. A macrotask turn drains the whole microtask queue,
 * however deep the chain; no time passes on any clock (this is not a timer).
 */
function drainContinuations(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function rejectionBackoffMs(error: unknown): number {
  const hint =
    typeof error === 'object' && error !== null
      ? (error as { retryAfterMs?: unknown }).retryAfterMs
      : undefined;
  return typeof hint === 'number' && hint > 0 && Number.isFinite(hint) ? hint : DEFAULT_REJECTION_BACKOFF_MS;
}

type Tallied = Pick<SimulatedKeyStats, 'label' | 'calls' | 'successes' | 'rateLimited' | 'errors'>;

function difference(now: SimulatedKeyStats, then: SimulatedKeyStats | undefined): Tallied {
  return {
    label: now.label,
    calls: now.calls - (then?.calls ?? 0),
    successes: now.successes - (then?.successes ?? 0),
    rateLimited: now.rateLimited - (then?.rateLimited ?? 0),
    errors: now.errors - (then?.errors ?? 0),
  };
}

function sum(keys: readonly Tallied[], field: 'calls' | 'successes' | 'rateLimited' | 'errors'): number {
  let total = 0;
  for (const key of keys) total += key[field];
  return total;
}
