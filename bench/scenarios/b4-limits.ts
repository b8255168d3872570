import {
  createRandom,
  fixedLatency,
  type LatencySampler,
  logNormalLatency,
  type RateLimitHintStyle,
  runWorkload,
  type SampleSummary,
  SimulatedProvider,
  successesBetween,
  VirtualClock,
  type WorkloadPool,
  type WorkloadReport,
} from '../../src/sim/index.js';
import type { KeyMesh } from '../lib/keymesh.js';
import {
  atLeast,
  atMost,
  formatMs,
  formatNumber,
  formatShare,
  type Row,
  type ScenarioOptions,
  type ScenarioResult,
} from '../lib/report.js';
import { NaiveRoundRobin } from '../reference/naive-round-robin.js';
import { b4gScenario } from './b4g-family.js';

/** The sub-scenarios of B4 (BENCH.md). */
export type B4Id = 'B4a' | 'B4b' | 'B4c' | 'B4d' | 'B4e' | 'B4f';
export const B4_IDS: readonly B4Id[] = ['B4a', 'B4b', 'B4c', 'B4d', 'B4e', 'B4f'];

/** Which pool runs the workload: KeyMesh, or the naive round robin of `bench/reference`. */
export type B4Pool = 'keymesh' | 'naive';

/** One key of a scenario, for the provider and the pool alike. */
interface B4Key {
  /** Requests per sliding second the provider admits. */
  readonly rps: number;
  /** Share of admitted calls answered 500. */
  readonly errorRate?: number;
  /** Ms after the start from which the key gets 401. */
  readonly revokedAtMs?: number;
}

interface B4Setup {
  readonly title: string;
  readonly keys: readonly B4Key[];
  readonly hints: RateLimitHintStyle;
  readonly successHeaders: boolean;
  readonly latency: (seed: number) => LatencySampler;
  readonly workers: number;
  /** Tell the pool each key's limit as an `rpm` budget (B4c). */
  readonly rpmInPool: boolean;
  /** Provider-wide outages, in ms after the start. */
  readonly outages: readonly { readonly fromMs: number; readonly toMs: number }[];
}

const SECOND = 1_000;
/** Every B4 run is one simulated minute. */
export const B4_DURATION_MS = 60 * SECOND;
/** Tokens per call (prompt + maximum output). No B4 provider limits tokens; budgets may count them. */
const TOKENS_PER_CALL = 500;
/** Seed of B4's providers, latencies and pools (B5 seeds its pools over HTTP alike). */
export const B4_SEED = 1;
const SEED = B4_SEED;

const fiveEqualKeys: readonly B4Key[] = Array.from({ length: 5 }, () => ({ rps: 10 }));
const fixed50 = () => fixedLatency(50);

/** The scenarios exactly as BENCH.md words them; a figure is never tuned by changing them. */
export const B4_SETUPS: Readonly<Record<B4Id, B4Setup>> = {
  B4a: {
    title: '5 keys × 10 req/s, 100 workers, 50 ms calls, limits unknown, 429 + retry-after',
    keys: fiveEqualKeys,
    hints: 'retry-after',
    successHeaders: false,
    latency: fixed50,
    workers: 100,
    rpmInPool: false,
    outages: [],
  },
  B4b: {
    title: 'as B4a, successes carry x-ratelimit-remaining/reset-requests',
    keys: fiveEqualKeys,
    hints: 'retry-after',
    successHeaders: true,
    latency: fixed50,
    workers: 100,
    rpmInPool: false,
    outages: [],
  },
  B4c: {
    title: 'as B4a, limits configured in the pool (rpm 600 per key)',
    keys: fiveEqualKeys,
    hints: 'retry-after',
    successHeaders: false,
    latency: fixed50,
    workers: 100,
    rpmInPool: true,
    outages: [],
  },
  B4d: {
    title: '5 keys at 1:2:5:10:20 req/s, log-normal calls (median 400 ms, p99 4 s), 200 workers',
    keys: [{ rps: 1 }, { rps: 2 }, { rps: 5 }, { rps: 10 }, { rps: 20 }],
    hints: 'retry-after',
    successHeaders: false,
    latency: (seed) => logNormalLatency({ medianMs: 400, p99Ms: 4_000 }, createRandom(seed)),
    workers: 200,
    rpmInPool: false,
    outages: [],
  },
  B4e: {
    title: 'as B4a + k1 revoked at 10 s, k2 30 % 500s, all 503 from 30 s to 33 s',
    keys: [
      { rps: 10, revokedAtMs: 10 * SECOND },
      { rps: 10, errorRate: 0.3 },
      { rps: 10 },
      { rps: 10 },
      { rps: 10 },
    ],
    hints: 'retry-after',
    successHeaders: false,
    latency: fixed50,
    workers: 100,
    rpmInPool: false,
    outages: [{ fromMs: 30 * SECOND, toMs: 33 * SECOND }],
  },
  B4f: {
    title: 'as B4a, 429s carry no hint',
    keys: fiveEqualKeys,
    hints: 'none',
    successHeaders: false,
    latency: fixed50,
    workers: 100,
    rpmInPool: false,
    outages: [],
  },
};

/** The targets of BENCH.md, used by the table and asserted by `test/bench`. */
export const B4_TARGETS = {
  B4a: { minGoodputRatio: 0.98, max429Per1000: 100, maxWaitOverP50: 3 },
  B4b: { minGoodputRatio: 0.98, max429Per1000: 5 },
  B4c: { minGoodputRatio: 0.98, max429Per1000: 0 },
  B4d: { minGoodputRatio: 0.95 },
  B4e: {
    maxCallsAfterFirst401: 1,
    maxKeysExhaustedByOutage: 0,
    /** Goodput (over what the surviving keys can serve) must be back to this… */
    recoveredGoodput: 0.9,
    /** …within this many ms after the outage ends. */
    maxRecoveryMs: 2_000,
  },
  B4f: { minGoodputRatio: 0.9 },
} as const;

/** What BENCH.md says the Python seed did, per sub-scenario. */
const SEED_FIGURES: Readonly<Record<B4Id, string>> = {
  B4a: '1.00; 100 per 1 000; p99 wait 8 s',
  B4b: 'headers ignored',
  B4c: 'no budgets',
  B4d: '',
  B4e: '',
  B4f: '0.10 (keys parked 60 s)',
};

/** Figures of one B4 run. */
export interface B4Figures {
  readonly id: B4Id;
  readonly pool: B4Pool;
  readonly goodputRatio: number;
  readonly rateLimitedPer1000: number;
  readonly successes: number;
  readonly rateLimited: number;
  readonly errors: number;
  readonly waitMs: SampleSummary;
  /** Max wait ÷ median wait (`Infinity` when the median is 0 and some acquire waited). */
  readonly maxWaitOverP50: number;
  /** Per-key share of the successes, in key order (k1 … k5). */
  readonly shares: readonly number[];
  readonly acquireRejections: number;
  /** B4e: calls presented with the revoked key after its first 401 came back. */
  readonly callsAfterFirst401: number | undefined;
  /** B4e: keys exhausted (reason `failures`) from the outage's start to 1 s after its end; KeyMesh only. */
  readonly keysExhaustedByOutage: number | undefined;
  /**
   * B4e: ms after the outage's end at which the goodput over the preceding second first reached
   * `recoveredGoodput` of what the surviving keys can serve (`Infinity`: never within the run).
   */
  readonly recoveryMs: number | undefined;
  /** The driver's full report. */
  readonly report: WorkloadReport;
}

const keyString = (index: number) => `sk-bench-fake-k${index + 1}-${String(index + 1).padStart(16, '0')}`;
const label = (index: number) => `k${index + 1}`;

/**
 * Runs one B4 sub-scenario on a virtual clock, for one simulated minute unless told otherwise (B5
 * compares its real-time runs with simulations of the same length). `keymesh` is the module whose
 * `KeyPool` is measured: the production build in `npm run bench`, the source in tests.
 */
export async function runB4(
  id: B4Id,
  pool: B4Pool,
  keymesh: Pick<KeyMesh, 'KeyPool'>,
  durationMs = B4_DURATION_MS,
): Promise<B4Figures> {
  const setup = B4_SETUPS[id];
  const clock = new VirtualClock();
  const start = clock.now();
  const keys = setup.keys.map((_, index) => keyString(index));
  const provider = new SimulatedProvider({
    clock,
    hints: setup.hints,
    successHeaders: setup.successHeaders,
    latency: setup.latency(SEED),
    seed: SEED,
    keys: setup.keys.map((spec, index) => ({
      key: keyString(index),
      label: label(index),
      limits: { requestsPerSecond: spec.rps },
      ...(spec.errorRate === undefined ? {} : { errorRate: spec.errorRate }),
      ...(spec.revokedAtMs === undefined ? {} : { revokedAt: start + spec.revokedAtMs }),
    })),
    outages: setup.outages.map((o) => ({ from: start + o.fromMs, to: start + o.toMs })),
  });

  let workloadPool: WorkloadPool;
  let close = async () => {};
  const exhaustedAt: number[] = [];
  if (pool === 'naive') {
    workloadPool = new NaiveRoundRobin(keys, clock);
  } else {
    const configs = setup.keys.map((spec, index) => ({
      key: keyString(index),
      label: label(index),
      ...(setup.rpmInPool ? { rpm: spec.rps * 60 } : {}),
    }));
    const keyPool = await keymesh.KeyPool.create({ keys: configs, clock, seed: SEED });
    keyPool.on('exhausted', (event) => {
      if (event.reason === 'failures') exhaustedAt.push(clock.now() - start);
    });
    workloadPool = keyPool;
    close = () => keyPool.close();
  }

  let report: WorkloadReport;
  try {
    report = await runWorkload({
      clock,
      provider,
      pool: workloadPool,
      load: { kind: 'workers', workers: setup.workers },
      durationMs,
      tokens: TOKENS_PER_CALL,
      seed: SEED,
    });
  } finally {
    await close();
  }

  const revoked = setup.keys.findIndex((k) => k.revokedAtMs !== undefined);
  const outage = setup.outages[0];
  return {
    id,
    pool,
    goodputRatio: report.goodputRatio,
    rateLimitedPer1000: report.rateLimitedPer1000,
    successes: report.successes,
    rateLimited: report.rateLimited,
    errors: report.errors,
    waitMs: report.waitMs,
    maxWaitOverP50: ratio(report.waitMs.max, report.waitMs.p50),
    shares: report.keys.map((k) => k.share),
    acquireRejections: report.acquireRejections,
    callsAfterFirst401: revoked < 0 ? undefined : (report.keys[revoked]?.callsAfterUnauthorized ?? 0),
    keysExhaustedByOutage:
      outage === undefined || pool === 'naive'
        ? undefined
        : exhaustedAt.filter((t) => t >= outage.fromMs && t <= outage.toMs + SECOND).length,
    recoveryMs: outage === undefined ? undefined : recoveryAfter(report, outage.toMs, survivingRps(setup)),
    report,
  };
}

/** Requests per second the keys that are never revoked can serve, net of their error rates. */
function survivingRps(setup: B4Setup): number {
  let rps = 0;
  for (const key of setup.keys)
    if (key.revokedAtMs === undefined) rps += key.rps * (1 - (key.errorRate ?? 0));
  return rps;
}

/** First `d` (100 ms steps, from 1 s) with goodput over `[end + d − 1 s, end + d)` ≥ the B4e target. */
function recoveryAfter(report: WorkloadReport, endMs: number, rps: number): number {
  const needed = B4_TARGETS.B4e.recoveredGoodput * rps;
  for (let d = SECOND; endMs + d <= report.durationMs; d += 100) {
    if (successesBetween(report, endMs + d - SECOND, endMs + d) >= needed) return d;
  }
  return Number.POSITIVE_INFINITY;
}

function ratio(value: number, base: number): number {
  if (base > 0) return value / base;
  return value > 0 ? Number.POSITIVE_INFINITY : 1;
}

// ── the table ──────────────────────────────────────────────────────────────────────────────────

function waitText(w: SampleSummary): string {
  return `p50 ${formatMs(w.p50)}, p99 ${formatMs(w.p99)}, max ${formatMs(w.max)}`;
}

function sharesText(shares: readonly number[]): string {
  return shares.map((share, i) => `${label(i)} ${formatShare(share)}`).join(', ');
}

type AddRow = (figure: string, value: string, target: string, verdict: Row['verdict']) => void;

function ratioRow(add: AddRow, f: B4Figures, min?: number): void {
  add(
    'goodput ratio',
    formatNumber(f.goodputRatio, 3),
    min === undefined ? '' : `≥ ${min}`,
    min === undefined ? '—' : atLeast(f.goodputRatio, min),
  );
}

function limitedRow(add: AddRow, f: B4Figures, max?: number): void {
  add(
    '429s per 1 000 successes',
    formatNumber(f.rateLimitedPer1000, 1),
    max === undefined ? '' : max === 0 ? '0' : `≤ ${max}`,
    max === undefined ? '—' : atMost(f.rateLimitedPer1000, max),
  );
}

/** KeyMesh's rows of one sub-scenario, against its targets. */
function keymeshRows(f: B4Figures, add: AddRow): void {
  switch (f.id) {
    case 'B4a': {
      const t = B4_TARGETS.B4a;
      ratioRow(add, f, t.minGoodputRatio);
      limitedRow(add, f, t.max429Per1000);
      add(
        'acquire wait',
        `${waitText(f.waitMs)} (max = ${formatNumber(f.maxWaitOverP50, 1)} × p50)`,
        `max ≤ ${t.maxWaitOverP50} × p50`,
        atMost(f.maxWaitOverP50, t.maxWaitOverP50),
      );
      break;
    }
    case 'B4b':
    case 'B4c': {
      const t = B4_TARGETS[f.id];
      ratioRow(add, f, t.minGoodputRatio);
      limitedRow(add, f, t.max429Per1000);
      add('acquire wait', waitText(f.waitMs), '', '—');
      break;
    }
    case 'B4d':
    case 'B4f':
      ratioRow(add, f, B4_TARGETS[f.id].minGoodputRatio);
      limitedRow(add, f);
      add('acquire wait', waitText(f.waitMs), '', '—');
      break;
    case 'B4e': {
      const t = B4_TARGETS.B4e;
      const calls = f.callsAfterFirst401 ?? Number.NaN;
      const exhausted = f.keysExhaustedByOutage ?? Number.NaN;
      const recovery = f.recoveryMs ?? Number.NaN;
      add(
        'calls to k1 after its first 401',
        formatNumber(calls),
        `≤ ${t.maxCallsAfterFirst401}`,
        atMost(calls, t.maxCallsAfterFirst401),
      );
      add(
        'keys exhausted by the outage',
        formatNumber(exhausted),
        `${t.maxKeysExhaustedByOutage}`,
        atMost(exhausted, t.maxKeysExhaustedByOutage),
      );
      add(
        `goodput back to ≥ ${t.recoveredGoodput} of the surviving keys' capacity`,
        `after ${formatMs(recovery)}`,
        `≤ ${formatMs(t.maxRecoveryMs)} after the outage`,
        atMost(recovery, t.maxRecoveryMs),
      );
      ratioRow(add, f);
      limitedRow(add, f);
      break;
    }
  }
  add('per-key share', sharesText(f.shares), '', '—');
}

/** The naive round robin's rows: the reference, no verdicts. */
function naiveRows(f: B4Figures, add: AddRow): void {
  ratioRow(add, f);
  limitedRow(add, f);
  add('acquire wait', waitText(f.waitMs), '', '—');
  if (f.id === 'B4e') {
    add('calls to k1 after its first 401', formatNumber(f.callsAfterFirst401 ?? Number.NaN), '', '—');
    add('goodput back after the outage', `after ${formatMs(f.recoveryMs ?? Number.NaN)}`, '', '—');
  }
}

/** The rows of one sub-scenario: KeyMesh against its targets, the naive round robin beside it. */
export function b4Rows(id: B4Id, keymesh: B4Figures | Error, naive: B4Figures | Error): Row[] {
  const rows: Row[] = [];
  const adder =
    (scenario: string): AddRow =>
    (figure, value, target, verdict) =>
      rows.push({
        scenario,
        figure,
        value,
        target,
        seed: rows.length === 0 ? SEED_FIGURES[id] : '',
        verdict,
      });
  const failed = (add: AddRow, error: Error) => add(B4_SETUPS[id].title, `error: ${error.message}`, '', '✗');
  const addKeymesh = adder(`${id} KeyMesh`);
  if (keymesh instanceof Error) failed(addKeymesh, keymesh);
  else keymeshRows(keymesh, addKeymesh);
  const addNaive = adder(`${id} naive RR`);
  if (naive instanceof Error) failed(addNaive, naive);
  else naiveRows(naive, addNaive);
  return rows;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Figures kept in `latest.json` (the timeline is left out: it is long and rebuilt by a rerun). */
function compact(f: B4Figures): Omit<B4Figures, 'report'> & { readonly steps: number } {
  const { report, ...figures } = f;
  return { ...figures, steps: report.steps };
}

/**
 * B4 for the runner: every sub-scenario, KeyMesh and the naive round robin, in one process; `B4g`
 * (the provider family, against the header-reading reference) after them when asked for.
 */
export async function b4Scenario(
  keymesh: Pick<KeyMesh, 'KeyPool'>,
  options: ScenarioOptions,
  only: readonly B4Id[] = B4_IDS,
  family = false,
): Promise<Omit<ScenarioResult, 'seconds'>> {
  const rows: Row[] = [];
  const figures: Record<string, unknown> = {};
  for (const id of only) {
    const started = performance.now();
    const keymeshRun = await runB4(id, 'keymesh', keymesh).catch(asError);
    const naiveRun = await runB4(id, 'naive', keymesh).catch(asError);
    const ratioText = (f: B4Figures | Error) =>
      f instanceof Error ? `error (${f.message})` : formatNumber(f.goodputRatio, 3);
    options.progress(
      `${id}: KeyMesh ratio ${ratioText(keymeshRun)}, naive ${ratioText(naiveRun)} (${formatMs(performance.now() - started)} for 2 simulated minutes)`,
    );
    rows.push(...b4Rows(id, keymeshRun, naiveRun));
    const kept = (f: B4Figures | Error) =>
      f instanceof Error ? { error: f.stack ?? f.message } : compact(f);
    figures[id] = { title: B4_SETUPS[id].title, keymesh: kept(keymeshRun), naive: kept(naiveRun) };
  }
  if (family) {
    const b4g = await b4gScenario(keymesh, options);
    rows.push(...b4g.rows);
    figures.B4g = b4g.figures;
  }
  return { id: 'B4', title: 'Goodput under provider limits (simulated, virtual clock)', rows, figures };
}
