import { rm } from 'node:fs/promises';
import { systemClock } from '../../clock.js';
import { StorageCorruptError, StorageError } from '../../errors.js';
import { keymeshFetch } from '../../fetch.js';
import { KeyPool } from '../../pool/KeyPool.js';
import type { KeySnapshot, StrategyName } from '../../pool/strategies/types.js';
import { startMockProvider } from '../../sim/http-provider.js';
import { SimulatedProvider } from '../../sim/provider.js';
import { createRandom, logNormalLatency } from '../../sim/random.js';
import { colorEnabled, palette } from '../ansi.js';
import { CliError, EXIT, type ExitCode } from '../exit-codes.js';
import { formatDuration, formatLeft } from '../format.js';
import { type CliIO, writeLine } from '../io.js';
import { describeStore, openStorage, type StoreSpec } from '../store.js';
import { type DemoFrame, type LiveView, plainView, terminalView } from './live-view.js';
import { capacity, demoKeys, pacedRpm, simulatedKeys } from './scenario.js';
import { renderSummary } from './summary.js';

/** Options of `keymesh demo`. */
export interface DemoOptions {
  /** Keys in the pool (1–26). */
  readonly keys: number;
  /** Requests to make. */
  readonly requests: number;
  /** Requests in flight at once. */
  readonly concurrency: number;
  readonly strategy: StrategyName;
  readonly store: StoreSpec;
  /** Time compression: rates × speed, latencies and the revocation delay ÷ speed. */
  readonly speed: number;
  /** Forget the saved state first. */
  readonly fresh: boolean;
  /** Periodic plain lines even on a terminal. */
  readonly plain: boolean;
  /** Period of the plain lines (ms). */
  readonly intervalMs: number;
  /** The command that runs the demo again where the user is (`npx keymesh demo`, or `npm run demo` in the repository). */
  readonly rerun: string;
  /** The command that reads this store where the user is (`npx keymesh status`, …). */
  readonly statusCommand: string;
}

const MAX_CONCURRENT_PER_KEY = 3;
const RETRIES = 8;
/** Cooldowns at least this long are worth a line in the event log. */
const NOTABLE_COOLDOWN_MS = 2_000;
const THROUGHPUT_WINDOW_MS = 2_000;

/**
 * `keymesh demo`: a local mock provider (127.0.0.1, fake keys with different limits, one revoked
 * part-way, one flaky, one with a small per-minute quota), a real {@link KeyPool} on a persistent
 * store, and `concurrency` workers sending `requests` chat completions through `keymeshFetch` over
 * real HTTP. Shows a live view, then a summary; the pool's state is saved, so a second run starts
 * from what the first learned.
 */
export async function runDemo(options: DemoOptions, io: CliIO): Promise<ExitCode> {
  const colors = palette(colorEnabled(io.stdout.isTTY === true, io.env));
  const store = options.store;
  if (options.fresh && store.kind !== 'memory') await forget(store);
  const storeName = describeStore(store);
  const keys = demoKeys(options.keys);
  const startedAt = systemClock.now();

  const provider = new SimulatedProvider({
    clock: systemClock,
    hints: 'openai',
    successHeaders: true,
    latency: logNormalLatency({ medianMs: 40, p99Ms: 250 }, createRandom(7)),
    keys: simulatedKeys(keys, startedAt, options.speed),
    seed: 7,
  });
  const server = await startMockProvider({ provider, speed: options.speed });
  let pool: KeyPool;
  try {
    pool = await KeyPool.create({
      keys: keys.map((k) => ({
        key: k.key,
        label: k.label,
        maxConcurrent: MAX_CONCURRENT_PER_KEY,
        // Telling the pool a key's rate lets it pace the key instead of learning from 429s.
        ...(k.paced ? { rpm: pacedRpm(k, options.speed) } : {}),
      })),
      strategy: options.strategy,
      storage: openStorage(store),
      acquireTimeoutMs: 30_000,
      seed: 7,
    });
  } catch (error) {
    await server.close();
    if (error instanceof StorageError || error instanceof StorageCorruptError) {
      throw new CliError(EXIT.store, `Cannot use the store ${storeName}: ${error.message}`, { cause: error });
    }
    throw error;
  }

  const restored = pool.snapshot().keys.filter(wasRestored);
  printBanner(io, options, keys, server.url, storeName, restored, startedAt);
  const usableFrom = new Map(restored.map((k) => [k.label ?? k.keyId, usableAfter(k, startedAt)]));

  const view: LiveView =
    io.stdout.isTTY === true && !options.plain
      ? terminalView(io.stdout, colors)
      : plainView(io.stdout, options.intervalMs);
  const counts = { next: 0, done: 0, succeeded: 0, failed: 0, calls: 0, rateLimited: 0, retries: 0 };
  const runStart = systemClock.now();
  const elapsed = () => systemClock.now() - runStart;
  const unsubscribe = watchEvents(pool, (text) => view.event(elapsed(), text));

  const recent: Array<readonly [number, number]> = [];
  const frame = (): DemoFrame => {
    const now = systemClock.now();
    recent.push([now, counts.succeeded]);
    while (recent.length > 2 && (recent[0]?.[0] ?? now) < now - THROUGHPUT_WINDOW_MS) recent.shift();
    const [since, before] = recent[0] ?? [now, 0];
    const snapshot = pool.snapshot();
    return {
      elapsedMs: now - runStart,
      requests: options.requests,
      done: counts.done,
      succeeded: counts.succeeded,
      failed: counts.failed,
      rateLimited: counts.rateLimited,
      retries: counts.retries,
      throughput: now > since ? ((counts.succeeded - before) * 1_000) / (now - since) : 0,
      keys: snapshot.keys,
      now: snapshot.at,
      events: [],
    };
  };

  const abort = new AbortController();
  const stopListening = io.onInterrupt(() => abort.abort(new Error('Interrupted')));
  const fetch = keymeshFetch(pool, {
    retries: RETRIES,
    onAttempt(attempt) {
      counts.calls++;
      if (attempt.status === 429) counts.rateLimited++;
      if (attempt.retrying) counts.retries++;
    },
  });
  const url = `${server.url}/v1/chat/completions`;
  const body = JSON.stringify({
    model: 'keymesh-demo',
    messages: [{ role: 'user', content: 'Say hello in five words.' }],
    max_tokens: 8,
  });

  const worker = async (): Promise<void> => {
    while (counts.next < options.requests && !abort.signal.aborted) {
      counts.next++;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: abort.signal,
        });
        await response.arrayBuffer();
        if (response.ok) counts.succeeded++;
        else counts.failed++;
      } catch {
        counts.failed++;
      }
      counts.done++;
    }
  };

  view.update(frame());
  const ticker = setInterval(() => view.update(frame()), view.intervalMs);
  try {
    await Promise.all(Array.from({ length: Math.min(options.concurrency, options.requests) }, worker));
  } finally {
    clearInterval(ticker);
    stopListening();
  }
  const durationMs = elapsed();
  const last = frame();
  view.stop(last);
  unsubscribe();
  const snapshot = pool.snapshot();
  let saveError: unknown;
  try {
    await pool.close();
  } catch (error) {
    saveError = error;
  }
  await server.close();

  const interrupted = abort.signal.aborted;
  writeLine(io.stdout);
  const summary = renderSummary(
    {
      requests: options.requests,
      succeeded: counts.succeeded,
      failed: counts.failed,
      skipped: options.requests - counts.done,
      calls: counts.calls,
      rateLimited: counts.rateLimited,
      retries: counts.retries,
      durationMs,
      capacity: capacity(keys, durationMs, options.speed, (label) => usableFrom.get(label) ?? 0),
      snapshot,
      savedTo: store.kind === 'memory' ? null : storeName,
      rerun: options.rerun,
      statusCommand: store.kind === 'memory' ? null : options.statusCommand,
      interrupted,
    },
    colors,
  );
  for (const line of summary) writeLine(io.stdout, line);
  if (saveError !== undefined) {
    throw new CliError(EXIT.store, `Saving the keys' state to ${storeName} failed: ${messageOf(saveError)}`, {
      cause: saveError,
    });
  }
  if (interrupted) return EXIT.interrupted;
  return counts.failed > 0 || counts.done < options.requests ? EXIT.incomplete : EXIT.ok;
}

async function forget(store: Exclude<StoreSpec, { kind: 'memory' }>): Promise<void> {
  const files =
    store.kind === 'sqlite' ? [store.path, `${store.path}-wal`, `${store.path}-shm`] : [store.path];
  await Promise.all(files.map((file) => rm(file, { force: true })));
}

/** A key whose state came from the store: it has history, or is not simply available. */
function wasRestored(key: KeySnapshot): boolean {
  return key.successes + key.failures + key.rateLimits > 0 || key.state !== 'available';
}

/** When a restored key can serve again, in ms after `startedAt` (`Infinity` when only a reset brings it back). */
function usableAfter(key: KeySnapshot, startedAt: number): number {
  if (key.state === 'cooling') return key.cooldownUntil - startedAt;
  if (key.state === 'exhausted')
    return key.reason === 'failures' ? key.recoveryAt - startedAt : Number.POSITIVE_INFINITY;
  return 0;
}

function describeRestored(key: KeySnapshot, now: number): string {
  const name = (key.label ?? key.keyId).padEnd(8);
  if (key.state === 'cooling') {
    return `${name} still cooling (${key.reason ?? 'rate-limited'}): ${formatLeft(key.cooldownUntil, now)} left`;
  }
  if (key.state === 'exhausted' && key.reason === 'failures') {
    return `${name} exhausted after failures: next probe in ${formatLeft(key.recoveryAt, now)}`;
  }
  if (key.state === 'exhausted')
    return `${name} exhausted (${key.reason ?? 'revoked'}): stays out until reset (--fresh starts over)`;
  return `${name} ${key.state}, ${key.successes} ok so far`;
}

function printBanner(
  io: CliIO,
  options: DemoOptions,
  keys: ReturnType<typeof demoKeys>,
  url: string,
  storeName: string,
  restored: readonly KeySnapshot[],
  now: number,
): void {
  const line = (text = '') => writeLine(io.stdout, text);
  line(
    `KeyMesh demo: ${options.requests} requests, ${options.concurrency} at a time, through keymeshFetch and one KeyPool (${options.strategy}, ≤ ${MAX_CONCURRENT_PER_KEY} in flight per key)`,
  );
  line(
    `mock provider ${url} (OpenAI-style; fake keys; nothing leaves this machine)${options.speed === 1 ? '' : `, speed × ${options.speed}`}`,
  );
  line(`${keys.length} key${keys.length === 1 ? '' : 's'}:`);
  for (const k of keys.slice(0, 5)) line(`  ${k.label.padEnd(8)} ${k.role}`);
  if (keys.length > 5) line(`  … and ${keys.length - 5} more plain keys`);
  line(`state kept in ${storeName}`);
  if (restored.length > 0) {
    line(`restored ${restored.length} key${restored.length === 1 ? '' : 's'} from ${storeName}:`);
    for (const key of restored) line(`  ${describeRestored(key, now)}`);
  }
  line();
}

/** Turns the pool's notable events into lines for the view; returns the unsubscribe. */
function watchEvents(pool: KeyPool, report: (text: string) => void): () => void {
  const reported = new Map<string, { readonly until: number; readonly reason: string | null }>();
  const offs = [
    pool.on('revoked', (e) =>
      report(`${e.label ?? e.keyId} revoked by the provider (${e.reason}): out of rotation`),
    ),
    pool.on('exhausted', (e) => {
      if (e.reason === 'failures') {
        report(
          `${e.label ?? e.keyId} exhausted after repeated failures: probe in ${formatDuration(e.recoveryAt - systemClock.now())}`,
        );
      }
    }),
    pool.on('recovered', (e) => report(`${e.label ?? e.keyId} recovered`)),
    pool.on('cooling', (e) => {
      const left = e.cooldownUntil - systemClock.now();
      // A cooldown extended by a later hint is the same rest: say it once, unless its reason changed
      // (a quota rest that a 429 extends is rate-limited now, as the summary and `status` will say).
      const before = reported.get(e.keyId);
      const sameRest =
        before !== undefined &&
        e.cooldownUntil < before.until + NOTABLE_COOLDOWN_MS &&
        e.reason === before.reason;
      if (left < NOTABLE_COOLDOWN_MS || sameRest) return;
      reported.set(e.keyId, { until: e.cooldownUntil, reason: e.reason });
      report(`${e.label ?? e.keyId} cooling for ${formatDuration(left)} (${e.reason ?? 'rate-limited'})`);
    }),
    pool.on('outage', (e) =>
      report(`provider outage: every key rests for ${formatDuration(e.until - systemClock.now())}`),
    ),
    pool.on('storage-error', (e) => report(`storage error (retrying): ${e.error.message}`)),
  ];
  return () => {
    for (const off of offs) off();
  };
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
