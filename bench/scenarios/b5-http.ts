import { fork } from 'node:child_process';
import { once } from 'node:events';
import OpenAI from 'openai';
import type { SimulatedTotals } from '../../src/sim/index.js';
import type { KeyMesh } from '../lib/keymesh.js';
import type { ProviderReply, ProviderRequest, ProviderSetup } from '../lib/provider-process.js';
import {
  atMost,
  formatMs,
  formatNumber,
  type Row,
  type ScenarioOptions,
  type ScenarioResult,
} from '../lib/report.js';
import { B4_SETUPS, type B4Id, runB4 } from './b4-limits.js';

/** BENCH.md B5 target: the real-HTTP goodput ratio within this of the simulated one. */
export const B5_TARGETS = { maxRatioGap: 0.03 } as const;

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

/** Figures of one real-HTTP run. */
interface HttpFigures {
  readonly id: B4Id;
  readonly seconds: number;
  readonly goodputRatio: number;
  readonly rateLimitedPer1000: number;
  readonly successes: number;
  readonly rateLimited: number;
  readonly waitMs: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly clientErrors: number;
}

const keyString = (index: number) => `sk-bench-fake-k${index + 1}-${String(index + 1).padStart(16, '0')}`;

/** The mock provider running in its own process (`lib/provider-process.ts`). */
interface ProviderProcess {
  readonly url: string;
  /** The provider's counters now, and its capacity over `durationMs`. */
  totals(durationMs: number): Promise<{ readonly totals: SimulatedTotals; readonly capacity: number }>;
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
    async totals(durationMs) {
      send({ type: 'totals', durationMs });
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

/** B4a's (or B4b's) provider behind a real HTTP server, driven by B4a's 100 workers for `seconds`. */
async function runHttp(
  id: 'B4a' | 'B4b',
  keymesh: Pick<KeyMesh, 'KeyPool' | 'keymeshFetch'>,
  seconds: number,
): Promise<HttpFigures> {
  const setup = B4_SETUPS[id];
  const server = await startProviderProcess({
    type: 'setup',
    hints: setup.hints,
    successHeaders: setup.successHeaders,
    latencyMs: 50,
    keys: setup.keys.map((spec, index) => ({ key: keyString(index), label: `k${index + 1}`, rps: spec.rps })),
  });
  const pool = await keymesh.KeyPool.create({
    keys: setup.keys.map((_, index) => ({ key: keyString(index), label: `k${index + 1}` })),
    seed: 1,
  });
  const client = new OpenAI({
    apiKey: 'unused',
    baseURL: `${server.url}/v1`,
    fetch: keymesh.keymeshFetch(pool, { retries: 0 }),
    maxRetries: 0,
  });
  const started = performance.now();
  const deadline = started + seconds * 1_000;
  let stopped = false;
  let clientErrors = 0;
  const worker = async () => {
    while (!stopped) {
      try {
        await chatCompletion(client);
      } catch (error) {
        if (!stopped) clientErrors++;
        if (!(error instanceof Error)) throw error;
      }
    }
  };
  const workers = Promise.all(Array.from({ length: setup.workers }, worker));
  await new Promise((resolve) => setTimeout(resolve, deadline - performance.now()));
  stopped = true;
  const { totals, capacity } = await server.totals(seconds * 1_000);
  const waitMs = pool.snapshot().metrics.waitMs;
  // Let the calls in flight settle their leases; close() then rejects whoever still waits for a key.
  await Promise.race([workers, new Promise((resolve) => setTimeout(resolve, 3_000))]);
  await pool.close();
  await workers;
  await server.close();
  return {
    id,
    seconds,
    goodputRatio: totals.successes / capacity,
    rateLimitedPer1000:
      totals.successes === 0 ? Number.POSITIVE_INFINITY : (totals.rateLimited * 1_000) / totals.successes,
    successes: totals.successes,
    rateLimited: totals.rateLimited,
    waitMs: { p50: waitMs.p50, p99: waitMs.p99, max: waitMs.max },
    clientErrors,
  };
}

/** B5: B4a and B4b over real HTTP (mock provider on 127.0.0.1, real time), beside their simulations. */
export async function b5Scenario(
  keymesh: Pick<KeyMesh, 'KeyPool' | 'keymeshFetch'>,
  options: ScenarioOptions,
): Promise<Omit<ScenarioResult, 'seconds'>> {
  const seconds = options.quick ? 3 : 10;
  const rows: Row[] = [];
  const figures: Record<string, unknown> = {};
  for (const id of ['B4a', 'B4b'] as const) {
    const http = await runHttp(id, keymesh, seconds);
    // The same workload simulated for the same length: windows of a second make short runs lumpy.
    const simulated = await runB4(id, 'keymesh', keymesh, seconds * 1_000);
    const minute = await runB4(id, 'keymesh', keymesh);
    const gap = Math.abs(http.goodputRatio - simulated.goodputRatio);
    options.progress(
      `B5 (${id} over HTTP, ${seconds} s): ratio ${formatNumber(http.goodputRatio, 3)}, simulated ${formatNumber(simulated.goodputRatio, 3)}`,
    );
    figures[id] = {
      ...http,
      simulatedGoodputRatio: simulated.goodputRatio,
      simulatedMinuteGoodputRatio: minute.goodputRatio,
    };
    const scenario = `B5 ${id} over HTTP, ${seconds} s`;
    rows.push(
      {
        scenario,
        figure: `goodput ratio (${id} simulated ${seconds} s)`,
        value: `${formatNumber(http.goodputRatio, 3)} (${formatNumber(simulated.goodputRatio, 3)}, Δ ${formatNumber(gap, 3)}; 60 s: ${formatNumber(minute.goodputRatio, 3)})`,
        target: `within ${B5_TARGETS.maxRatioGap}`,
        seed: '',
        verdict: atMost(gap, B5_TARGETS.maxRatioGap),
      },
      {
        scenario,
        figure: '429s per 1 000 successes',
        value: formatNumber(http.rateLimitedPer1000, 1),
        target: '',
        seed: '',
        verdict: '—',
      },
      {
        scenario,
        figure: 'acquire wait p50 / p99 / max',
        value: `${formatMs(http.waitMs.p50)} / ${formatMs(http.waitMs.p99)} / ${formatMs(http.waitMs.max)}`,
        target: '',
        seed: '',
        verdict: '—',
      },
    );
    if (http.clientErrors > 0) {
      rows.push({
        scenario,
        figure: 'requests that threw',
        value: formatNumber(http.clientErrors),
        target: '',
        seed: '',
        verdict: '—',
      });
    }
  }
  return { id: 'B5', title: 'Real HTTP: mock provider on 127.0.0.1, fetch through the pool', rows, figures };
}
