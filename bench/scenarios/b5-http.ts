import { fork } from 'node:child_process';
import { once } from 'node:events';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import OpenAI from 'openai';
import { systemClock } from '../../src/clock.js';
import {
  describeMember,
  type FamilyMember,
  familyKey,
  hasHints,
  type SimulatedTotals,
} from '../../src/sim/index.js';
import type { KeyMesh } from '../lib/keymesh.js';
import type {
  ProviderReply,
  ProviderRequest,
  ProviderSetup,
  ProviderWindows,
} from '../lib/provider-process.js';
import {
  atLeast,
  atMost,
  formatMs,
  formatNumber,
  type Row,
  type ScenarioOptions,
  type ScenarioResult,
} from '../lib/report.js';
import { B4_SEED, B4_SETUPS, runB4 } from './b4-limits.js';
import { B4G_TARGETS, ISSUE_11_MEMBER, runB4gMember } from './b4g-family.js';

/** BENCH.md B5 target: the real-HTTP goodput ratio within this of the simulated one. */
export const B5_TARGETS = { maxRatioGap: 0.05 } as const;

const base: FamilyMember = { ...ISSUE_11_MEMBER, seed: 5_001 };

/**
 * The six B4g members B5 serves over real HTTP: 1 s windows (a 10 s run holds ten of them), each
 * window shape, reset meaning and kind of hint at least once. The first is issue 11's provider.
 */
export const B5_MEMBERS: readonly FamilyMember[] = [
  base,
  {
    ...base,
    seed: 5_002,
    shape: 'fixed-window',
    reset: 'window-end',
    retryAfter: 'seconds',
    successHeaders: 'none',
    limits: [4, 9, 17],
    callers: 8,
  },
  {
    ...base,
    seed: 5_003,
    shape: 'token-bucket',
    successHeaders: 'requests-and-tokens',
    limits: [3, 7, 12, 20],
  },
  { ...base, seed: 5_004, shape: 'gcra', reset: 'full', retryAfter: 'ms', limits: [5, 10, 30] },
  {
    ...base,
    seed: 5_005,
    reset: 'full',
    retryAfter: 'none',
    successHeaders: 'none',
    limits: [2, 6, 11],
  },
  { ...base, seed: 5_006, latency: 'log-normal-400ms', callers: 400, limits: [2, 3, 5, 8, 13, 21] },
];

/**
 * One chat completion through the real `openai` SDK, its `fetch` being KeyMesh's `keymeshFetch`
 * (which leases a key per request, injects it, classifies the response and settles the lease;
 * `retries: 0` so that every 429 is counted as the provider sent it). Resolves to the HTTP status.
 */
async function chatCompletion(client: OpenAI): Promise<number> {
  try {
    await client.chat.completions.create({
      model: 'keymesh-sim-1',
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 16,
    });
    return 200;
  } catch (error) {
    if (error instanceof OpenAI.APIError && typeof error.status === 'number') return error.status;
    throw error;
  }
}

/** Goodput ratio and 429s per 1 000 successes of a span. */
interface SpanFigures {
  readonly goodputRatio: number;
  readonly rateLimitedPer1000: number;
}

/** Figures of one real-HTTP run. */
interface HttpFigures {
  readonly seconds: number;
  /** The whole run. */
  readonly whole: SpanFigures;
  /** From `steadyFromMs` on (the cold start left out). */
  readonly steady: SpanFigures;
  readonly successes: number;
  readonly rateLimited: number;
  readonly waitMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly clientErrors: number;
  /**
   * How late the client's event loop ran during the span (ms): a real-time figure measures the
   * machine as much as KeyMesh when its loop stalls, which the simulation never does.
   */
  readonly eventLoopDelayMs: { readonly p99: number; readonly max: number };
  /** The machine's 1-minute load average when the span began and when it ended. */
  readonly loadAverage: { readonly start: number; readonly end: number };
}

const b4KeyString = (index: number) => `sk-bench-fake-k${index + 1}-${String(index + 1).padStart(16, '0')}`;

interface ProviderTotals {
  readonly totals: SimulatedTotals;
  readonly capacities: readonly number[];
  readonly banked: number;
}

/** The mock provider running in its own process (`lib/provider-process.ts`). */
interface ProviderProcess {
  readonly url: string;
  /** A twin of the provider, for warming up (see {@link warmUp}). */
  readonly warmUpUrl: string;
  /** The provider's fixed windows, or `null`. */
  readonly windows: ProviderWindows | null;
  /** The provider's counters and banked requests now, and its capacity over each of `durationsMs`. */
  totals(durationsMs: readonly number[]): Promise<ProviderTotals>;
  close(): Promise<void>;
}

/**
 * Forks the mock provider: a real provider is another machine, so it gets its own event loop and
 * CPU time rather than counting calls whenever the client's loop lets it (see bench/README.md, B5).
 */
async function startProviderProcess(setup: ProviderSetup): Promise<ProviderProcess> {
  const child = fork(new URL('../lib/provider-process.ts', import.meta.url), [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = async (): Promise<ProviderReply> => {
    const [message] = (await once(child, 'message')) as [ProviderReply];
    return message;
  };
  const send = (message: ProviderSetup | ProviderRequest) => child.send(message);
  send(setup);
  const listening = await next();
  if (listening.type !== 'listening') throw new Error(`mock provider process: unexpected ${listening.type}`);
  return {
    url: listening.url,
    warmUpUrl: listening.warmUpUrl,
    windows: listening.windows,
    async totals(durationsMs) {
      send({ type: 'totals', durationsMs });
      const answer = await next();
      if (answer.type !== 'totals') throw new Error(`mock provider process: unexpected ${answer.type}`);
      return answer;
    },
    async close() {
      const exited = once(child, 'exit');
      send({ type: 'close' });
      await exited;
    },
  };
}

function span(successes: number, rateLimited: number, capacity: number): SpanFigures {
  return {
    goodputRatio: capacity > 0 ? successes / capacity : 0,
    rateLimitedPer1000:
      successes === 0 ? (rateLimited > 0 ? Number.POSITIVE_INFINITY : 0) : (rateLimited * 1_000) / successes,
  };
}

/** A pool of `keys` (labelled `k1 …`) and an `openai` client whose fetch is `keymeshFetch` on it. */
async function pooledClient(
  keymesh: Pick<KeyMesh, 'KeyPool' | 'keymeshFetch'>,
  keys: readonly string[],
  seed: number,
  url: string,
) {
  const pool = await keymesh.KeyPool.create({
    keys: keys.map((key, index) => ({ key, label: `k${index + 1}` })),
    seed,
  });
  const client = new OpenAI({
    apiKey: 'unused',
    baseURL: `${url}/v1`,
    fetch: keymesh.keymeshFetch(pool, { retries: 0 }),
    maxRetries: 0,
  });
  return { pool, client };
}

/** Closed-loop callers sending chat completions through `client` until `stop()`. */
interface Callers {
  stop(): void;
  /** Settles when every caller has returned. */
  readonly done: Promise<unknown>;
  /** Requests that threw (no HTTP status) before `stop()`. */
  readonly errors: number;
}

function startCallers(client: OpenAI, count: number): Callers {
  let stopped = false;
  let errors = 0;
  const caller = async () => {
    while (!stopped) {
      try {
        await chatCompletion(client);
      } catch (error) {
        if (!stopped) errors++;
        if (!(error instanceof Error)) throw error;
      }
    }
  };
  const done = Promise.all(Array.from({ length: count }, caller));
  return {
    stop: () => {
      stopped = true;
    },
    done,
    get errors() {
      return errors;
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** How long both processes are warmed on the provider's twin before the measured span, in ms. */
export const B5_WARM_UP_MS = 1_000;

/**
 * Warms both processes before the measured span, as a client and a provider in service are warm. A
 * fresh provider process and a client that has not called yet spend the start of a 10 s span
 * compiling their request paths and opening connections (measured: the first call counted 50–360 ms
 * after the span began, the first answers came 100–590 ms after their grants, against 40 ms), a cold start the simulation
 * does not have. So the callers first drive the provider's twin (same limits, its own counters) for
 * `ms` ({@link B5_WARM_UP_MS}) through the same stack — the `openai` SDK, `keymeshFetch`, a pool of the same
 * keys, thrown away after — and then each caller opens a keep-alive connection to the measured
 * provider on a route no key is charged for (`GET /v1/models`, a 404), which the measured calls
 * reuse. The measured provider counts nothing and the measured pool learns nothing from it.
 */
export async function warmUp(
  keymesh: Pick<KeyMesh, 'KeyPool' | 'keymeshFetch'>,
  urls: { readonly warmUpUrl: string; readonly url: string },
  keys: readonly string[],
  callers: number,
  ms = B5_WARM_UP_MS,
): Promise<void> {
  const { pool, client } = await pooledClient(keymesh, keys, 1, urls.warmUpUrl);
  const warming = startCallers(client, callers);
  await sleep(ms);
  warming.stop();
  // Whoever still waits for a key is rejected; the calls in flight answer and settle as no-ops.
  await pool.close();
  await warming.done;
  await Promise.all(
    Array.from({ length: callers }, async () => {
      const response = await fetch(`${urls.url}/v1/models`);
      await response.arrayBuffer();
    }),
  );
}

/**
 * When the measured span starts: `now`, or — the provider's windows fixed — the first window boundary
 * from `now` on, as the simulated run starts its windows with the run. A span of whole windows that
 * began mid-window would reach into an eleventh window, whose burst the capacity of ten does not count.
 */
export function spanStartAt(now: number, windows: ProviderWindows | null): number {
  if (windows === null) return now;
  const { origin, windowMs } = windows;
  return origin + Math.ceil((now - origin) / windowMs) * windowMs;
}

/**
 * Drives the provider `setup` describes with `callers` workers through the `openai` SDK for `seconds`,
 * with a pool seeded as its simulation's (`seed`), after warming both processes up.
 */
async function runHttp(
  setup: ProviderSetup,
  keys: readonly string[],
  callers: number,
  keymesh: Pick<KeyMesh, 'KeyPool' | 'keymeshFetch'>,
  seed: number,
  seconds: number,
  steadyFromMs: number,
): Promise<HttpFigures> {
  const server = await startProviderProcess(setup);
  await warmUp(keymesh, server, keys, callers);
  const { pool, client } = await pooledClient(keymesh, keys, seed, server.url);
  const start = await server.totals([]);
  const startAt = spanStartAt(systemClock.now(), server.windows);
  while (systemClock.now() < startAt) await sleep(startAt - systemClock.now());
  const started = performance.now();
  const loadAtStart = loadavg()[0] ?? 0;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  loopDelay.enable();
  const workers = startCallers(client, callers);
  const sleepUntil = (ms: number) => sleep(started + ms - performance.now());
  await sleepUntil(steadyFromMs);
  const mark = await server.totals([]);
  await sleepUntil(seconds * 1_000);
  workers.stop();
  loopDelay.disable();
  const clientErrors = workers.errors;
  const end = await server.totals([seconds * 1_000, seconds * 1_000 - steadyFromMs]);
  const waitMs = pool.snapshot().metrics.waitMs;
  // Let the calls in flight settle their leases; close() then rejects whoever still waits for a key.
  await Promise.race([workers.done, sleep(3_000)]);
  await pool.close();
  await workers.done;
  await server.close();
  const { totals } = end;
  return {
    seconds,
    whole: span(totals.successes, totals.rateLimited, (end.capacities[0] ?? 0) + start.banked - end.banked),
    steady: span(
      totals.successes - mark.totals.successes,
      totals.rateLimited - mark.totals.rateLimited,
      (end.capacities[1] ?? 0) + mark.banked - end.banked,
    ),
    successes: totals.successes,
    rateLimited: totals.rateLimited,
    waitMs: { p50: waitMs.p50, p99: waitMs.p99, max: waitMs.max },
    clientErrors,
    eventLoopDelayMs: { p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    loadAverage: { start: loadAtStart, end: loadavg()[0] ?? 0 },
  };
}

type AddRow = (figure: string, value: string, target: string, verdict: Row['verdict']) => void;

function gapRow(add: AddRow, http: number, simulated: number, seconds: number, note = ''): void {
  const gap = Math.abs(http - simulated);
  add(
    `goodput ratio (simulated ${seconds} s)`,
    `${formatNumber(http, 3)} (${formatNumber(simulated, 3)}, Δ ${formatNumber(gap, 3)}${note})`,
    `within ${B5_TARGETS.maxRatioGap}`,
    atMost(gap, B5_TARGETS.maxRatioGap),
  );
}

function detailRows(add: AddRow, http: HttpFigures): void {
  add(
    'acquire wait p50 / p99 / max',
    `${formatMs(http.waitMs.p50)} / ${formatMs(http.waitMs.p99)} / ${formatMs(http.waitMs.max)}`,
    '',
    '—',
  );
  if (http.clientErrors > 0) add('requests that threw', formatNumber(http.clientErrors), '', '—');
  add(
    'client event-loop delay p99 / max; load average',
    `${formatMs(http.eventLoopDelayMs.p99)} / ${formatMs(http.eventLoopDelayMs.max)}; ${formatNumber(http.loadAverage.start, 1)} → ${formatNumber(http.loadAverage.end, 1)}`,
    '',
    '—',
  );
}

/**
 * B5: B4a, B4b and six B4g members over real HTTP (mock provider in its own process on 127.0.0.1,
 * real time, the `openai` SDK through `keymeshFetch`), beside the same workloads simulated.
 */
export async function b5Scenario(
  keymesh: Pick<KeyMesh, 'KeyPool' | 'keymeshFetch'>,
  options: ScenarioOptions,
): Promise<Omit<ScenarioResult, 'seconds'>> {
  const seconds = options.quick ? 3 : 10;
  const steadyFromMs = options.quick ? 1_000 : 2_000;
  const rows: Row[] = [];
  const figures: Record<string, unknown> = {};
  const adder =
    (scenario: string): AddRow =>
    (figure, value, target, verdict) =>
      rows.push({ scenario, figure, value, target, seed: '', verdict });

  for (const id of ['B4a', 'B4b'] as const) {
    const setup = B4_SETUPS[id];
    const http = await runHttp(
      {
        type: 'setup',
        hints: setup.hints,
        successHeaders: setup.successHeaders,
        latencyMs: 50,
        keys: setup.keys.map((spec, index) => ({
          key: b4KeyString(index),
          label: `k${index + 1}`,
          rps: spec.rps,
        })),
      },
      setup.keys.map((_, index) => b4KeyString(index)),
      setup.workers,
      keymesh,
      B4_SEED,
      seconds,
      steadyFromMs,
    );
    // The same workload simulated for the same length: windows of a second make short runs lumpy.
    const simulated = await runB4(id, 'keymesh', keymesh, seconds * 1_000);
    const minute = await runB4(id, 'keymesh', keymesh);
    options.progress(
      `B5 (${id} over HTTP, ${seconds} s): ratio ${formatNumber(http.whole.goodputRatio, 3)}, simulated ${formatNumber(simulated.goodputRatio, 3)}`,
    );
    figures[id] = {
      ...http,
      simulatedGoodputRatio: simulated.goodputRatio,
      simulatedMinuteGoodputRatio: minute.goodputRatio,
    };
    const add = adder(`B5 ${id} over HTTP, ${seconds} s`);
    gapRow(
      add,
      http.whole.goodputRatio,
      simulated.goodputRatio,
      seconds,
      `; 60 s: ${formatNumber(minute.goodputRatio, 3)}`,
    );
    add('429s per 1 000 successes', formatNumber(http.whole.rateLimitedPer1000, 1), '', '—');
    detailRows(add, http);
  }

  for (const member of B5_MEMBERS) {
    const keys = member.limits.map((_, index) => familyKey(index));
    const http = await runHttp(
      { type: 'family', member },
      keys,
      member.callers,
      keymesh,
      member.seed,
      seconds,
      steadyFromMs,
    );
    // The same member simulated for the same length, with KeyMesh.
    const sim = await runB4gMember(member, 'keymesh', keymesh, { durationMs: seconds * 1_000, steadyFromMs });
    const simulated = { whole: sim.whole, steady: sim };
    const name = describeMember(member);
    options.progress(
      `B5 (${name} over HTTP, ${seconds} s): ratio ${formatNumber(http.whole.goodputRatio, 3)}, simulated ${formatNumber(simulated.whole.goodputRatio, 3)}`,
    );
    figures[name] = { member, http, simulated };
    const add = adder(`B5 B4g ${name}, ${seconds} s`);
    gapRow(add, http.whole.goodputRatio, simulated.whole.goodputRatio, seconds);
    const target = hasHints(member) ? B4G_TARGETS.hints : B4G_TARGETS.none;
    const from = `from ${formatMs(steadyFromMs)}`;
    add(
      `steady ratio (${from}; simulated)`,
      `${formatNumber(http.steady.goodputRatio, 3)} (${formatNumber(simulated.steady.goodputRatio, 3)})`,
      `≥ ${target.minGoodputRatio}`,
      atLeast(http.steady.goodputRatio, target.minGoodputRatio),
    );
    add(
      `steady 429s per 1 000 (${from}; simulated)`,
      `${formatNumber(http.steady.rateLimitedPer1000, 1)} (${formatNumber(simulated.steady.rateLimitedPer1000, 1)})`,
      `≤ ${target.max429Per1000}`,
      atMost(http.steady.rateLimitedPer1000, target.max429Per1000),
    );
    detailRows(add, http);
  }
  return { id: 'B5', title: 'Real HTTP: mock provider on 127.0.0.1, fetch through the pool', rows, figures };
}
