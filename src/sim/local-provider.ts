import { systemClock } from '../clock.js';
import { startMockProvider } from './http-provider.js';
import { type RateLimitHintStyle, type SimulatedKeyStats, SimulatedProvider } from './provider.js';
import { createRandom, logNormalLatency } from './random.js';

/** Options of {@link startLocalProvider}. */
export interface LocalProviderOptions {
  /** The keys it accepts (any other key gets 401). Use obviously fake strings. At least one. */
  readonly keys: readonly string[];
  /**
   * Requests each key may make in any sliding second; beyond it the call gets 429 with the hints
   * of `hints`. Integer ≥ 0. Default: no limit.
   */
  readonly requestsPerSecond?: number;
  /** How a 429 says when to retry, and the dialect of bodies. Default `'openai'`. */
  readonly hints?: RateLimitHintStyle;
  /**
   * Send the rate-limit headers (`x-ratelimit-remaining-*` / `-reset-*`) on successes too, as
   * OpenAI does, so that a pool can pace a key before any 429. Default `true`.
   */
  readonly successHeaders?: boolean;
  /** Median latency of a call (ms, > 0; log-normal, p99 four times the median). Default 20. */
  readonly medianLatencyMs?: number;
}

/** A running {@link startLocalProvider}. */
export interface LocalProvider {
  /** `http://127.0.0.1:<port>`. OpenAI SDK: `baseURL: \`${url}/v1\``; Anthropic SDK: `baseURL: url`. */
  readonly url: string;
  /** What the provider saw, per key (named by fingerprint, never by secret). */
  stats(): readonly SimulatedKeyStats[];
  /** Stops the server. Idempotent. */
  close(): Promise<void>;
}

/**
 * A local stand-in for an LLM provider, on 127.0.0.1: OpenAI's `POST /v1/chat/completions` and
 * Anthropic's `POST /v1/messages` (JSON and SSE streams), holding each key to a rate limit. Nothing
 * leaves the machine. For examples, demos and tests; point the same code at the real API and real
 * keys in your application. Latencies are drawn from a fixed seed.
 */
export async function startLocalProvider(options: LocalProviderOptions): Promise<LocalProvider> {
  const median = options.medianLatencyMs ?? 20;
  const provider = new SimulatedProvider({
    clock: systemClock,
    hints: options.hints ?? 'openai',
    successHeaders: options.successHeaders ?? true,
    latency: logNormalLatency({ medianMs: median, p99Ms: median * 4 }, createRandom(11)),
    keys: options.keys.map((key) => ({
      key,
      ...(options.requestsPerSecond === undefined
        ? {}
        : { limits: { requestsPerSecond: options.requestsPerSecond } }),
    })),
  });
  const server = await startMockProvider({ provider });
  return { url: server.url, stats: () => provider.stats(), close: () => server.close() };
}
