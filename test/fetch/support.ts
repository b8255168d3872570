import { afterEach, expect } from 'vitest';
import { KeyPool, type KeyPoolOptions, VirtualClock } from '../../src/index.js';
import {
  type MockProviderServer,
  type SimulatedKey,
  SimulatedProvider,
  type SimulatedProviderOptions,
  startMockProvider,
} from '../../src/sim/index.js';

/** Obviously fake keys, long enough to have a mask. */
export const fetchKey = (n: number): string => `sk-test-fetch-${String(n).padStart(15, '0')}`;

export interface MockSetup {
  /** Drives the pool's and the provider's time; the HTTP server answers at once (latency 0). */
  readonly clock: VirtualClock;
  readonly provider: SimulatedProvider;
  readonly server: MockProviderServer;
  readonly pool: KeyPool;
  readonly url: string;
}

/**
 * Starts a mock provider on 127.0.0.1 and a round-robin pool over the same keys, both on one virtual
 * clock. Register once per file; after each test it checks that no lease is left out, then closes
 * every pool and server it started.
 */
export function mockProviders(): (
  keys: readonly SimulatedKey[],
  options?: {
    readonly pool?: Partial<KeyPoolOptions>;
    readonly provider?: Partial<SimulatedProviderOptions>;
  },
) => Promise<MockSetup> {
  const open: MockSetup[] = [];
  afterEach(async () => {
    const setups = open.splice(0);
    try {
      for (const { pool } of setups) {
        for (const key of pool.snapshot().keys) expect(key.inFlight, `${key.keyId} in flight`).toBe(0);
      }
    } finally {
      await Promise.all(setups.map(({ pool, server }) => Promise.all([pool.close(), server.close()])));
    }
  });
  return async (keys, options = {}) => {
    const clock = new VirtualClock();
    const provider = new SimulatedProvider({ clock, keys, ...options.provider });
    const server = await startMockProvider({ provider, port: 0 });
    const pool = new KeyPool({
      keys: keys.map((k) => k.key),
      clock,
      seed: 42,
      strategy: 'round-robin',
      ...options.pool,
    });
    const setup = { clock, provider, server, pool, url: server.url };
    open.push(setup);
    return setup;
  };
}

/** An OpenAI chat completion request, sent with the placeholder key an SDK would carry. */
export function chat(
  fetchFn: typeof fetch,
  url: string,
  body: Readonly<Record<string, unknown>> = {},
  init: RequestInit = {},
): Promise<Response> {
  return fetchFn(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: 'Bearer unused', 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-sim', messages: [{ role: 'user', content: 'Hello there' }], ...body }),
    ...init,
  });
}
