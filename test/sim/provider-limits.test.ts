import { describe, expect, it } from 'vitest';
import {
  createRandom,
  type RateLimitHintStyle,
  type SimulatedKeyLimits,
  SimulatedProvider,
  type SimulatedResponse,
  VirtualClock,
} from '../../src/sim/index.js';
import { hintedWait } from './hint-reading.js';

const KEY = 'sk-sweep-0000000000000001';
const WINDOWS = { requestsPerSecond: 1000, requestsPerMinute: 60_000, requestsPerDay: 86_400_000 } as const;

interface Call {
  readonly at: number;
  readonly tokens: number;
  readonly response: SimulatedResponse;
}

interface Schedule {
  /** Most calls have a gap below this many ms… */
  readonly gapMs: number;
  /** …and a few jump this far. */
  readonly jumpMs: number;
  /** Integer gaps, or fractional ones. */
  readonly fractional: boolean;
  readonly maxTokens: number;
}

/** Calls the provider at seeded random instants: bursts, short gaps and a few long jumps. */
function sweep(seed: number, limits: SimulatedKeyLimits, schedule: Schedule, count: number): Call[] {
  const rng = createRandom(seed);
  const clock = new VirtualClock(0);
  const provider = new SimulatedProvider({ clock, keys: [{ key: KEY, limits }] });
  const calls: Call[] = [];
  for (let i = 0; i < count; i++) {
    const shape = rng.next();
    const span = shape < 0.3 ? 0 : shape < 0.97 ? schedule.gapMs : schedule.jumpMs;
    const gap = rng.next() * span;
    clock.advance(schedule.fractional ? gap : Math.floor(gap));
    const tokens = Math.floor(rng.next() * schedule.maxTokens);
    calls.push({ at: clock.now(), tokens, response: provider.call(KEY, { tokens }) });
  }
  return calls;
}

/** Calls admitted in the window of length `windowMs` ending at `at`, i.e. in `(at - windowMs, at]`. */
function inWindow(admitted: readonly Call[], at: number, windowMs: number): Call[] {
  return admitted.filter((c) => c.at + windowMs > at && c.at <= at);
}

const requestLimits = (limits: SimulatedKeyLimits) =>
  (Object.keys(WINDOWS) as (keyof typeof WINDOWS)[]).flatMap((name) => {
    const limit = limits[name];
    return limit === undefined ? [] : [{ limit, windowMs: WINDOWS[name] }];
  });

describe('SimulatedProvider sliding-window limits', () => {
  const seeds = Array.from({ length: 12 }, (_, i) => 1000 + i);

  it.each(seeds)(
    'never admits more than a request limit in any window, and rejects only when one is full (seed %i)',
    (seed) => {
      const limits = { requestsPerSecond: 3, requestsPerMinute: 25, requestsPerDay: 120 };
      const calls = sweep(
        seed,
        limits,
        { gapMs: 700, jumpMs: 8 * 3_600_000, fractional: false, maxTokens: 0 },
        600,
      );
      const admitted = calls.filter((c) => c.response.status === 200);
      expect(admitted.length).toBeGreaterThan(100);
      expect(calls.some((c) => c.response.status === 429)).toBe(true);
      for (const call of calls) {
        const full = requestLimits(limits).filter(
          (w) => inWindow(admitted, call.at, w.windowMs).length >= w.limit,
        );
        if (call.response.status === 200) {
          // Including itself, the window ending at an admission holds at most `limit` calls.
          for (const w of requestLimits(limits))
            expect(inWindow(admitted, call.at, w.windowMs).length).toBeLessThanOrEqual(w.limit);
        } else {
          expect(full.length).toBeGreaterThan(0);
        }
      }
    },
  );

  it.each(seeds)('keeps the request limit with fractional call times (seed %i)', (seed) => {
    const limits = { requestsPerSecond: 5, requestsPerMinute: 40 };
    const calls = sweep(seed, limits, { gapMs: 400, jumpMs: 90_000, fractional: true, maxTokens: 0 }, 600);
    const admitted = calls.filter((c) => c.response.status === 200);
    for (const call of admitted) {
      for (const w of requestLimits(limits)) {
        // A hair inside the boundary, so that float rounding of `at - window` cannot flip the test.
        expect(inWindow(admitted, call.at, w.windowMs - 1e-6).length).toBeLessThanOrEqual(w.limit);
      }
    }
  });

  it.each(seeds)(
    'never admits more tokens per minute than the limit, and rejects only when over it (seed %i)',
    (seed) => {
      const limits: SimulatedKeyLimits = { requestsPerSecond: 4, tokensPerMinute: 3000 };
      const calls = sweep(
        seed,
        limits,
        { gapMs: 2000, jumpMs: 120_000, fractional: false, maxTokens: 700 },
        500,
      );
      const admitted = calls.filter((c) => c.response.status === 200);
      const tokensIn = (at: number) => inWindow(admitted, at, 60_000).reduce((sum, c) => sum + c.tokens, 0);
      for (const call of calls) {
        const { response } = call;
        if (response.status === 200) {
          expect(tokensIn(call.at)).toBeLessThanOrEqual(3000);
        } else if (response.outcome === 'rate-limited' && response.breach.kind === 'tokens') {
          expect(tokensIn(call.at) + call.tokens).toBeGreaterThan(3000);
        }
      }
      expect(
        calls.some((c) => c.response.outcome === 'rate-limited' && c.response.breach.kind === 'tokens'),
      ).toBe(true);
    },
  );

  it.each(seeds)(
    'never lets a token bucket hand out more than its capacity plus its refill (seed %i)',
    (seed) => {
      const limits: SimulatedKeyLimits = { tokensPerMinute: 3000, tokenAlgorithm: 'token-bucket' };
      const calls = sweep(
        seed,
        limits,
        { gapMs: 1000, jumpMs: 60_000, fractional: true, maxTokens: 700 },
        400,
      );
      const admitted = calls.filter((c) => c.response.status === 200);
      expect(calls.some((c) => c.response.status === 429)).toBe(true);
      for (let i = 0; i < admitted.length; i++) {
        let spent = 0;
        for (let j = i; j < admitted.length; j++) {
          const later = admitted[j] as Call;
          spent += later.tokens;
          const refill = ((later.at - (admitted[i] as Call).at) * 3000) / 60_000;
          expect(spent).toBeLessThanOrEqual(3000 + refill + 1e-6);
        }
      }
    },
  );

  it('answers a limit of 0 with a 429 that states no wait', () => {
    const clock = new VirtualClock();
    const provider = new SimulatedProvider({ clock, keys: [{ key: KEY, limits: { requestsPerDay: 0 } }] });
    const response = provider.call(KEY);
    expect(response.outcome === 'rate-limited' && response.retryAfterMs).toBeUndefined();
    expect(response.headers['retry-after']).toBeUndefined();
  });

  it('answers a call larger than the token limit with a 429 that states no wait', () => {
    const clock = new VirtualClock();
    const provider = new SimulatedProvider({ clock, keys: [{ key: KEY, limits: { tokensPerMinute: 100 } }] });
    const response = provider.call(KEY, { tokens: 101 });
    expect(response.status).toBe(429);
    expect(response.outcome === 'rate-limited' && response.retryAfterMs).toBeUndefined();
    expect(JSON.stringify(response.body)).toContain('Request too large');
  });
});

describe('SimulatedProvider retry hints are exact', () => {
  const styles: RateLimitHintStyle[] = ['retry-after', 'openai', 'anthropic', 'gemini'];
  const cases = styles.flatMap((style) =>
    (['sliding-window', 'token-bucket'] as const).map((tokenAlgorithm) => [style, tokenAlgorithm] as const),
  );

  it.each(cases)(
    '%s hints (%s tokens): waiting the stated time succeeds, one unit less does not',
    (style, tokenAlgorithm) => {
      const rng = createRandom(77);
      const clock = new VirtualClock();
      const provider = new SimulatedProvider({
        clock,
        hints: style,
        keys: [
          {
            key: KEY,
            limits: { requestsPerSecond: 3, requestsPerMinute: 30, tokensPerMinute: 2000, tokenAlgorithm },
          },
        ],
      });
      let retries = 0;
      for (let i = 0; i < 300; i++) {
        clock.advance(Math.floor(rng.next() * 600));
        const tokens = Math.floor(rng.next() * 400);
        const first = provider.call(KEY, { tokens });
        if (first.status !== 429) continue;
        const wait = hintedWait(first, style, clock.now(), tokens);
        if (wait === undefined) throw new Error(`no hint in ${JSON.stringify(first)}`);
        expect(first.outcome === 'rate-limited' && first.retryAfterMs).toBeLessThanOrEqual(wait.ms);
        // A rejected call consumes nothing, so probing early does not move the reset.
        clock.advance(wait.ms - wait.unitMs);
        expect(provider.call(KEY, { tokens }).status).toBe(429);
        clock.advance(wait.unitMs);
        expect(provider.call(KEY, { tokens }).status).toBe(200);
        retries += 1;
      }
      expect(retries).toBeGreaterThan(20);
    },
  );
});
