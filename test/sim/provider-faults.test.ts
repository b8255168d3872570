import { describe, expect, it } from 'vitest';
import { InvalidConfigError } from '../../src/errors.js';
import {
  createRandom,
  logNormalLatency,
  SimulatedProvider,
  type SimulatedProviderOptions,
  VirtualClock,
} from '../../src/sim/index.js';

const T0 = 1_700_000_000_000;
const ALPHA = 'sk-alpha-000000000000000000001';
const BETA = 'sk-beta-0000000000000000000002';

function setup(options: Partial<SimulatedProviderOptions> = {}): {
  clock: VirtualClock;
  sim: SimulatedProvider;
} {
  const clock = new VirtualClock(T0);
  return { clock, sim: new SimulatedProvider({ clock, keys: [{ key: ALPHA }], ...options }) };
}

describe('revoked and unknown keys', () => {
  it('answers 401 with invalid_api_key from the revocation instant on', () => {
    const { clock, sim } = setup({ keys: [{ key: ALPHA, revokedAt: T0 + 5000 }] });
    clock.advance(4999);
    expect(sim.call(ALPHA).status).toBe(200);
    clock.advance(1);
    const response = sim.call(ALPHA);
    expect(response).toMatchObject({ outcome: 'unauthorized', status: 401 });
    expect(response.body).toEqual({
      error: {
        message: expect.stringContaining('Incorrect API key provided: ****0001'),
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_api_key',
      },
    });
    expect(JSON.stringify(response.body)).not.toContain(ALPHA);
    clock.advance(3_600_000);
    expect(sim.call(ALPHA).status).toBe(401);
    expect(sim.keyStats(ALPHA)).toMatchObject({ calls: 3, successes: 1, unauthorized: 2, errors: 2 });
  });

  it('revokes a key on demand', () => {
    const { sim } = setup();
    sim.revoke(ALPHA);
    expect(sim.call(ALPHA).status).toBe(401);
  });

  it('answers 401 to a key it does not know, and counts it apart', () => {
    const { sim } = setup();
    expect(sim.call('sk-nobody-knows-me-000').status).toBe(401);
    expect(sim.totals).toMatchObject({ calls: 1, unknownKeyCalls: 1, errors: 0 });
    expect(() => sim.keyStats('sk-nobody-knows-me-000')).toThrow(/unknown key \*\*\*\*-000/);
  });

  it('answers in the dialect of the hint style', () => {
    expect(setup({ hints: 'anthropic' }).sim.call('sk-x').body).toEqual({
      type: 'error',
      error: { type: 'authentication_error', message: 'invalid x-api-key' },
    });
    expect(setup({ hints: 'gemini' }).sim.call('sk-x').body).toMatchObject({
      error: { code: 401, details: [{ reason: 'API_KEY_INVALID' }] },
    });
  });
});

describe('error rate', () => {
  it('fails about errorRate of the calls with 500, drawn from the seed', () => {
    const { sim } = setup({ keys: [{ key: ALPHA, errorRate: 0.3 }], seed: 11 });
    const statuses = Array.from({ length: 2000 }, () => sim.call(ALPHA).status);
    const failures = statuses.filter((s) => s === 500).length;
    expect(failures / 2000).toBeGreaterThan(0.27);
    expect(failures / 2000).toBeLessThan(0.33);
    expect(sim.keyStats(ALPHA)).toMatchObject({
      successes: 2000 - failures,
      serverErrors: failures,
      errors: failures,
    });

    const again = setup({ keys: [{ key: ALPHA, errorRate: 0.3 }], seed: 11 }).sim;
    expect(Array.from({ length: 2000 }, () => again.call(ALPHA).status)).toEqual(statuses);
  });

  it("answers 500 with OpenAI's server_error body", () => {
    const { sim } = setup({ keys: [{ key: ALPHA, errorRate: 1 }] });
    expect(sim.call(ALPHA)).toMatchObject({
      outcome: 'server-error',
      status: 500,
      body: { error: { type: 'server_error' } },
    });
  });

  it('counts a failed call against the limits, as the gateway admitted it', () => {
    const { sim } = setup({ keys: [{ key: ALPHA, errorRate: 1, limits: { requestsPerSecond: 1 } }] });
    expect(sim.call(ALPHA).status).toBe(500);
    expect(sim.call(ALPHA).status).toBe(429);
  });
});

describe('provider-wide outage', () => {
  it('answers 503 to every key within [from, to) and nothing else changes', () => {
    const { clock, sim } = setup({
      keys: [{ key: ALPHA, limits: { requestsPerSecond: 1 } }],
      outages: [{ from: T0 + 1000, to: T0 + 2000 }],
    });
    clock.advance(999);
    expect(sim.call(ALPHA).status).toBe(200);
    clock.advance(1);
    expect(sim.call(ALPHA)).toMatchObject({ outcome: 'unavailable', status: 503 });
    expect(sim.call('sk-unknown').status).toBe(503);
    clock.advance(999);
    expect(sim.call(ALPHA).status).toBe(503);
    clock.advance(1);
    expect(sim.call(ALPHA).status).toBe(200);
    expect(sim.keyStats(ALPHA)).toMatchObject({ calls: 4, successes: 2, unavailable: 2, rateLimited: 0 });
  });

  it('takes outages added later', () => {
    const { clock, sim } = setup();
    sim.addOutage({ from: T0 + 10, to: T0 + 20 });
    clock.advance(15);
    expect(sim.call(ALPHA).status).toBe(503);
    expect(() => sim.addOutage({ from: T0 + 5, to: T0 })).toThrow(InvalidConfigError);
  });
});

describe('counters and capacity', () => {
  it('counts successes, 429s and errors per key, labelled by fingerprint unless told', () => {
    const { sim } = setup({
      keys: [
        { key: ALPHA, limits: { requestsPerMinute: 2 } },
        { key: BETA, label: 'beta', errorRate: 1 },
      ],
    });
    for (let i = 0; i < 3; i++) sim.call(ALPHA, { tokens: 5 });
    sim.call(BETA);
    expect(sim.stats()).toEqual([
      {
        label: expect.stringMatching(/^k_[0-9a-f]{16}$/),
        calls: 3,
        successes: 2,
        rateLimited: 1,
        errors: 0,
        unauthorized: 0,
        serverErrors: 0,
        unavailable: 0,
        tokens: 10,
      },
      {
        label: 'beta',
        calls: 1,
        successes: 0,
        rateLimited: 0,
        errors: 1,
        unauthorized: 0,
        serverErrors: 1,
        unavailable: 0,
        tokens: 0,
      },
    ]);
    expect(sim.totals).toEqual({ calls: 4, successes: 2, rateLimited: 1, errors: 1, unknownKeyCalls: 0 });
  });

  it('sums the per-key rates into a capacity', () => {
    const keys = Array.from({ length: 5 }, (_, i) => ({
      key: `sk-cap-${i}`,
      limits: { requestsPerSecond: 10 },
    }));
    expect(setup({ keys }).sim.capacity(60_000)).toBe(3000);
  });

  it('takes the tightest limit of a key, and a whole window longer than the duration', () => {
    const { sim } = setup({
      keys: [
        { key: ALPHA, limits: { requestsPerSecond: 10, requestsPerMinute: 300 } },
        { key: BETA, limits: { requestsPerSecond: 10, requestsPerDay: 1000, tokensPerMinute: 6000 } },
      ],
    });
    expect(sim.capacity(60_000)).toBe(300 + 600);
    expect(sim.capacity(60_000, { tokensPerCall: 100 })).toBe(300 + 60);
    expect(sim.capacity(3_600_000)).toBe(18_000 + 1000);
  });

  it('has no capacity bound when a key is unlimited', () => {
    expect(setup().sim.capacity(1000)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('configuration', () => {
  it('rejects a key configured twice without printing it', () => {
    const attempt = () => setup({ keys: [{ key: ALPHA }, { key: ALPHA }] });
    expect(attempt).toThrow(InvalidConfigError);
    expect(attempt).not.toThrow(ALPHA);
  });

  it('rejects limits that are not whole numbers and error rates outside [0, 1]', () => {
    expect(() => setup({ keys: [{ key: ALPHA, limits: { requestsPerSecond: 1.5 } }] })).toThrow(
      /requestsPerSecond/,
    );
    expect(() => setup({ keys: [{ key: ALPHA, errorRate: 2 }] })).toThrow(/errorRate/);
  });
});

describe('repeatability', () => {
  function run(seed: number): string {
    const rng = createRandom(seed);
    const clock = new VirtualClock(T0);
    const sim = new SimulatedProvider({
      clock,
      seed,
      hints: 'openai',
      successHeaders: true,
      latency: logNormalLatency({ medianMs: 400, p99Ms: 4000 }, createRandom(seed + 1)),
      keys: [
        { key: ALPHA, limits: { requestsPerSecond: 2, tokensPerMinute: 5000 }, errorRate: 0.2 },
        { key: BETA, limits: { requestsPerMinute: 30 }, revokedAt: T0 + 40_000 },
      ],
      outages: [{ from: T0 + 10_000, to: T0 + 12_000 }],
    });
    const responses = [];
    for (let i = 0; i < 400; i++) {
      clock.advance(Math.floor(rng.next() * 300));
      const key = rng.next() < 0.5 ? ALPHA : BETA;
      responses.push(sim.call(key, { tokens: Math.floor(rng.next() * 300) }));
    }
    return JSON.stringify({ responses, stats: sim.stats() });
  }

  it('gives identical response sequences for the same seed', () => {
    const first = run(5);
    expect(run(5)).toBe(first);
    expect(run(6)).not.toBe(first);
    for (const status of [200, 401, 429, 500, 503]) expect(first).toContain(`"status":${status}`);
  });
});
