/**
 * The local stand-in for a real LLM provider that every example talks to: KeyMesh's mock provider
 * on 127.0.0.1 (OpenAI's `/v1/chat/completions` and Anthropic's `/v1/messages`, JSON and SSE),
 * holding each fake key to a rate limit. Nothing leaves this machine. To talk to the real API,
 * drop the `baseURL` and use real keys.
 */
import { systemClock } from '../../src/index.js';
import {
  createRandom,
  logNormalLatency,
  type RateLimitHintStyle,
  type SimulatedKeyStats,
  SimulatedProvider,
  startMockProvider,
} from '../../src/sim/index.js';

/** Obviously fake keys (never a real key format). */
export const EXAMPLE_KEYS = [
  'sk-demo-fake-example-not-a-real-key-0001',
  'sk-demo-fake-example-not-a-real-key-0002',
  'sk-demo-fake-example-not-a-real-key-0003',
] as const;

export interface LocalProvider {
  /** `http://127.0.0.1:<port>`: OpenAI SDK `baseURL: \`${url}/v1\``, Anthropic SDK `baseURL: url`. */
  readonly url: string;
  /** What the provider saw, per key label. */
  stats(): readonly SimulatedKeyStats[];
  close(): Promise<void>;
}

/**
 * Starts the mock provider with {@link EXAMPLE_KEYS}, each allowed `requestsPerSecond`, answering
 * 429s with the hints of `hints` (`'openai'` headers by default, `'anthropic'` for the Anthropic SDK).
 */
export async function startLocalProvider(
  options: { readonly hints?: RateLimitHintStyle; readonly requestsPerSecond?: number } = {},
): Promise<LocalProvider> {
  const provider = new SimulatedProvider({
    clock: systemClock,
    hints: options.hints ?? 'openai',
    latency: logNormalLatency({ medianMs: 20, p99Ms: 80 }, createRandom(11)),
    keys: EXAMPLE_KEYS.map((key, i) => ({
      key,
      label: `key-${i + 1}`,
      limits: { requestsPerSecond: options.requestsPerSecond ?? 5 },
    })),
  });
  const server = await startMockProvider({ provider });
  return {
    url: server.url,
    stats: () => provider.stats(),
    close: () => server.close(),
  };
}
