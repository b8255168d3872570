import {
  describeMember,
  FAMILY_TOKENS_PER_CALL,
  type FamilyMember,
  familyKey,
  familyProvider,
  hasHints,
  runWorkload,
  type SampleSummary,
  sampleFamilyMember,
  VirtualClock,
  type WorkloadPool,
  type WorkloadReport,
} from '../../src/sim/index.js';
import type { KeyMesh } from '../lib/keymesh.js';
import { formatMs, formatNumber, type Row, type ScenarioOptions } from '../lib/report.js';
import { HeaderClient } from '../reference/header-client.js';

/** Who drives a member: KeyMesh, or the header-reading reference client. */
export type B4gClient = 'keymesh' | 'reference';

/** BENCH.md B4g's targets, per member, in steady state. */
export const B4G_TARGETS = {
  /** Members with hints (retry headers or rate-limit headers): and no worse than the reference on either. */
  hints: { minGoodputRatio: 0.9, max429Per1000: 50 },
  /** Members that answer a bare 429 and nothing else. */
  none: { minGoodputRatio: 0.85, max429Per1000: 300 },
} as const;

/**
 * "No worse than the reference" allows only floating-point noise: the figures are deterministic, and
 * a bucket's capacity over a span is fractional (see `WorkloadSteadyFigures.capacity`).
 */
export const B4G_FLOAT_TOLERANCE = 1e-9;

/**
 * The seeds of the family sample `npm test` and `npm run bench` measure: members 1 … 50
 * (`sampleFamilyMember(seed)`). Changing the sample changes every figure: say so when you do.
 */
export const B4G_SEEDS: readonly number[] = Array.from({ length: 50 }, (_, i) => i + 1);

/**
 * The provider issue 11 was measured on: six keys at 2 … 21 requests per sliding second, `reset` =
 * until the next slot frees, both retry headers, request headers on every answer, 40 ms calls, 80
 * callers. B5 serves it over HTTP; the reference's tests run on it.
 */
export const ISSUE_11_MEMBER: FamilyMember = {
  seed: 11,
  shape: 'sliding-log',
  reset: 'next-slot',
  retryAfter: 'both',
  successHeaders: 'requests',
  windowMs: 1_000,
  limits: [2, 3, 5, 8, 13, 21],
  latency: 'fixed-40ms',
  callers: 80,
};

/** How long a member runs and from when it counts as steady, in ms. */
export interface B4gTiming {
  readonly durationMs: number;
  readonly steadyFromMs: number;
}

const SECOND = 1_000;
/** The cold start reported apart: the first 10 s, or the first window when that is longer. */
const COLD_START_MS = 10 * SECOND;

/**
 * `'bench'`: 5 simulated minutes. `'test'`: one simulated minute, or 5 windows for 60 s windows
 * (a minute would hold no steady window). Both leave out the first 10 s, or the first window when
 * it is longer; every span is whole windows, so a perfect client reaches a ratio of 1 on a fixed window too.
 */
export function b4gTiming(member: FamilyMember, mode: 'test' | 'bench'): B4gTiming {
  const steadyFromMs = Math.max(COLD_START_MS, member.windowMs);
  const durationMs =
    mode === 'bench' ? 300 * SECOND : Math.max(60 * SECOND, steadyFromMs + 4 * member.windowMs);
  return { durationMs, steadyFromMs };
}

/** Figures of one member run by one client. */
export interface B4gFigures {
  readonly client: B4gClient;
  /** Steady state. */
  readonly goodputRatio: number;
  readonly rateLimitedPer1000: number;
  readonly waitMs: SampleSummary;
  /** Max wait ÷ median wait in steady state (`Infinity` when the median is 0 and someone waited). */
  readonly maxWaitOverP50: number;
  /** The whole run, cold start included. */
  readonly whole: { readonly goodputRatio: number; readonly rateLimitedPer1000: number };
  /** The cold start (before `steadyFromMs`), reported apart. */
  readonly cold: { readonly goodputRatio: number; readonly rateLimitedPer1000: number };
  readonly successes: number;
  readonly rateLimited: number;
  readonly timing: B4gTiming;
}

function ratio(value: number, base: number): number {
  if (base > 0) return value / base;
  return value > 0 ? Number.POSITIVE_INFINITY : 1;
}

/**
 * Runs `member` with `client` on a fresh virtual clock and provider (the same seed for both
 * clients). `keymesh` is the module whose `KeyPool` is measured: the production build in
 * `npm run bench`, the source in tests.
 */
export async function runB4gMember(
  member: FamilyMember,
  client: B4gClient,
  keymesh: Pick<KeyMesh, 'KeyPool'>,
  timing: B4gTiming,
): Promise<B4gFigures> {
  const clock = new VirtualClock();
  const provider = familyProvider(member, { clock });
  const keys = member.limits.map((_, index) => familyKey(index));
  let pool: WorkloadPool;
  let close = async () => {};
  if (client === 'reference') {
    pool = new HeaderClient(keys, clock);
  } else {
    const keyPool = await keymesh.KeyPool.create({
      keys: keys.map((key, index) => ({ key, label: `k${index + 1}` })),
      clock,
      seed: member.seed,
    });
    pool = keyPool;
    close = () => keyPool.close();
  }
  let report: WorkloadReport;
  try {
    report = await runWorkload({
      clock,
      provider,
      pool,
      load: { kind: 'workers', workers: member.callers },
      durationMs: timing.durationMs,
      tokens: FAMILY_TOKENS_PER_CALL,
      seed: member.seed,
      steadyFromMs: timing.steadyFromMs,
    });
  } finally {
    await close();
  }
  const steady = report.steady;
  if (steady === undefined) throw new Error('runWorkload returned no steady figures');
  const coldCapacity = provider.capacity(timing.steadyFromMs);
  const coldSuccesses = report.successes - steady.successes;
  const coldLimited = report.rateLimited - steady.rateLimited;
  return {
    client,
    goodputRatio: steady.goodputRatio,
    rateLimitedPer1000: steady.rateLimitedPer1000,
    waitMs: steady.waitMs,
    maxWaitOverP50: ratio(steady.waitMs.max, steady.waitMs.p50),
    whole: { goodputRatio: report.goodputRatio, rateLimitedPer1000: report.rateLimitedPer1000 },
    cold: {
      goodputRatio: coldCapacity > 0 ? coldSuccesses / coldCapacity : 0,
      rateLimitedPer1000:
        coldSuccesses > 0 ? (coldLimited * 1_000) / coldSuccesses : coldLimited > 0 ? Infinity : 0,
    },
    successes: report.successes,
    rateLimited: report.rateLimited,
    timing,
  };
}

/** One member's figures for both clients. */
export interface B4gMemberResult {
  readonly member: FamilyMember;
  readonly keymesh: B4gFigures;
  readonly reference: B4gFigures;
}

/** Runs one member with both clients. */
export async function runB4gPair(
  member: FamilyMember,
  keymesh: Pick<KeyMesh, 'KeyPool'>,
  mode: 'test' | 'bench',
): Promise<B4gMemberResult> {
  const timing = b4gTiming(member, mode);
  return {
    member,
    keymesh: await runB4gMember(member, 'keymesh', keymesh, timing),
    reference: await runB4gMember(member, 'reference', keymesh, timing),
  };
}

/**
 * What KeyMesh misses on one member, in words (empty: every target held). With hints: ratio ≥ 0.9,
 * 429s ≤ 50 per 1 000, and no worse than the reference on either figure (up to float noise);
 * without: ratio ≥ 0.85 and 429s ≤ 300 per 1 000.
 */
export function b4gMisses(result: B4gMemberResult): string[] {
  const { member, keymesh: km, reference: ref } = result;
  const misses: string[] = [];
  const target = hasHints(member) ? B4G_TARGETS.hints : B4G_TARGETS.none;
  if (!(km.goodputRatio >= target.minGoodputRatio))
    misses.push(`ratio ${formatNumber(km.goodputRatio, 3)} < ${target.minGoodputRatio}`);
  if (!(km.rateLimitedPer1000 <= target.max429Per1000))
    misses.push(`429s ${formatNumber(km.rateLimitedPer1000, 1)} per 1 000 > ${target.max429Per1000}`);
  if (hasHints(member)) {
    if (!(km.goodputRatio >= ref.goodputRatio - B4G_FLOAT_TOLERANCE))
      misses.push(
        `ratio ${formatNumber(km.goodputRatio, 3)} < reference ${formatNumber(ref.goodputRatio, 3)}`,
      );
    if (!(km.rateLimitedPer1000 <= ref.rateLimitedPer1000 + B4G_FLOAT_TOLERANCE))
      misses.push(
        `429s ${formatNumber(km.rateLimitedPer1000, 1)} > reference ${formatNumber(ref.rateLimitedPer1000, 1)} per 1 000`,
      );
  }
  return misses;
}

/** The member whose figures are worst for `client`: lowest ratio, then most 429s. */
export function worstMember(
  results: readonly B4gMemberResult[],
  client: B4gClient,
): B4gMemberResult | undefined {
  let worst: B4gMemberResult | undefined;
  for (const result of results) {
    const f = result[client];
    const w = worst?.[client];
    if (
      w === undefined ||
      f.goodputRatio < w.goodputRatio ||
      (f.goodputRatio === w.goodputRatio && f.rateLimitedPer1000 > w.rateLimitedPer1000)
    )
      worst = result;
  }
  return worst;
}

/** The median of `values` (nearest rank below the middle for an even count: the worse half's edge). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN;
}

/** The whole sample, member by member. */
export async function runB4gFamily(
  keymesh: Pick<KeyMesh, 'KeyPool'>,
  mode: 'test' | 'bench',
  seeds: readonly number[] = B4G_SEEDS,
  onMember?: (result: B4gMemberResult) => void,
): Promise<B4gMemberResult[]> {
  const results: B4gMemberResult[] = [];
  for (const seed of seeds) {
    const result = await runB4gPair(sampleFamilyMember(seed), keymesh, mode);
    onMember?.(result);
    results.push(result);
  }
  return results;
}

/** Max wait ÷ p50, or the max itself when the median caller did not wait at all. */
function fairness(f: B4gFigures): string {
  if (f.waitMs.p50 > 0) return formatNumber(f.maxWaitOverP50, 1);
  return f.waitMs.max > 0 ? `max ${formatMs(f.waitMs.max)}` : 'no wait';
}

function figures(f: B4gFigures): string {
  return `${formatNumber(f.goodputRatio, 3)} / ${formatNumber(f.rateLimitedPer1000, 1)} / ${fairness(f)}`;
}

/** One row per member: KeyMesh and the reference (ratio / 429s per 1 000 / max wait ÷ p50), its misses, its description. */
export function b4gMemberLine(result: B4gMemberResult): string {
  const misses = b4gMisses(result);
  return [
    misses.length === 0 ? '✓' : '✗',
    `KeyMesh ${figures(result.keymesh)}`.padEnd(36),
    `reference ${figures(result.reference)}`.padEnd(38),
    describeMember(result.member),
    misses.length === 0 ? '' : `  ← ${misses.join('; ')}`,
  ].join(' ');
}

/** The summary lines: worst member and median for each client, and how many members miss. */
export function b4gSummary(results: readonly B4gMemberResult[]): string[] {
  const lines: string[] = [];
  for (const client of ['keymesh', 'reference'] as const) {
    const worst = worstMember(results, client);
    const name = client === 'keymesh' ? 'KeyMesh  ' : 'reference';
    lines.push(
      `${name} median ratio ${formatNumber(median(results.map((r) => r[client].goodputRatio)), 3)}, median 429s ${formatNumber(median(results.map((r) => r[client].rateLimitedPer1000)), 1)} per 1 000, median max wait ÷ p50 ${formatNumber(median(results.map((r) => r[client].maxWaitOverP50)), 1)}; worst ${worst === undefined ? '—' : `${figures(worst[client])} (${describeMember(worst.member)})`}`,
    );
  }
  const missing = results.filter((r) => b4gMisses(r).length > 0);
  lines.push(
    `${results.length - missing.length} of ${results.length} members meet every target${missing.length === 0 ? '' : `; missed: ${missing.map((r) => `#${r.member.seed}`).join(', ')}`}`,
  );
  return lines;
}

// ── npm run bench ──────────────────────────────────────────────────────────────────────────────

/** What `latest.json` keeps of a member: its description and both clients' figures. */
function compactResult(result: B4gMemberResult) {
  return {
    member: describeMember(result.member),
    seed: result.member.seed,
    misses: b4gMisses(result),
    keymesh: result.keymesh,
    reference: result.reference,
  };
}

/** The B4g rows of the bench table: members meeting every target, worst member, median, cold start. */
export function b4gRows(results: readonly B4gMemberResult[], mode: 'test' | 'bench'): Row[] {
  const rows: Row[] = [];
  const add = (scenario: string, figure: string, value: string, target = '', verdict: Row['verdict'] = '—') =>
    rows.push({ scenario, figure, value, target, seed: '', verdict });
  const span = mode === 'bench' ? '300 simulated s' : '60 simulated s (300 s for 60 s windows)';
  const missing = results.filter((r) => b4gMisses(r).length > 0);
  const keymesh = `B4g KeyMesh, ${results.length} members, ${span}`;
  add(
    keymesh,
    'members meeting every target',
    `${results.length - missing.length} of ${results.length}${missing.length === 0 ? '' : ` (missed: ${missing.map((r) => `#${r.member.seed}`).join(', ')})`}`,
    'with hints: ratio ≥ 0.9, 429s ≤ 50 per 1 000, ≥ reference; none: ≥ 0.85, ≤ 300',
    missing.length === 0 ? '✓' : '✗',
  );
  for (const client of ['keymesh', 'reference'] as const) {
    const scenario = client === 'keymesh' ? keymesh : `B4g header-reading reference, ${span}`;
    const worst = worstMember(results, client);
    add(
      scenario,
      'worst member: ratio / 429s per 1 000 / max wait ÷ p50',
      worst === undefined ? '—' : `${figures(worst[client])} (${describeMember(worst.member)})`,
    );
    add(
      scenario,
      'median: ratio / 429s per 1 000 / max wait ÷ p50',
      `${formatNumber(median(results.map((r) => r[client].goodputRatio)), 3)} / ${formatNumber(median(results.map((r) => r[client].rateLimitedPer1000)), 1)} / ${formatNumber(median(results.map((r) => r[client].maxWaitOverP50)), 1)}`,
    );
    add(
      scenario,
      'cold start (first 10 s or first window), median: ratio / 429s per 1 000',
      `${formatNumber(median(results.map((r) => r[client].cold.goodputRatio)), 3)} / ${formatNumber(median(results.map((r) => r[client].cold.rateLimitedPer1000)), 1)}`,
    );
  }
  return rows;
}

/**
 * B4g for the runner: the family sample, KeyMesh and the reference on the same members. 5 simulated
 * minutes per member; `--quick` runs the test's shorter timing instead.
 */
export async function b4gScenario(
  keymesh: Pick<KeyMesh, 'KeyPool'>,
  options: ScenarioOptions,
): Promise<{ readonly rows: Row[]; readonly figures: unknown }> {
  const mode = options.quick ? 'test' : 'bench';
  const started = performance.now();
  const results = await runB4gFamily(keymesh, mode, B4G_SEEDS, (result) => {
    if (b4gMisses(result).length > 0) options.progress(`B4g ${b4gMemberLine(result)}`);
  });
  options.progress(
    `B4g: ${results.length} members in ${formatMs(performance.now() - started)}; ${b4gSummary(results).join('; ')}`,
  );
  return { rows: b4gRows(results, mode), figures: { mode, members: results.map(compactResult) } };
}
