import { InvalidConfigError } from '../errors.js';
import { nextRandom } from '../pool/strategies/random.js';

/** A source of uniformly distributed numbers. */
export interface Random {
  /** The next number, uniform in `[0, 1)`. */
  next(): number;
}

/** Draws one call latency in milliseconds (≥ 0) per invocation. */
export type LatencySampler = () => number;

/**
 * A seeded PRNG (mulberry32: 32 bits of state, period 2³²). The same seed gives the same sequence
 * on every platform, so simulated runs are bit-for-bit repeatable. Not for cryptography.
 *
 * @param seed any finite number; it is truncated to an unsigned 32-bit integer.
 */
export function createRandom(seed: number): Random {
  if (!Number.isFinite(seed)) throw new InvalidConfigError('seed', `must be a finite number, got ${seed}`);
  let state = seed >>> 0;
  return {
    next() {
      const step = nextRandom(state);
      state = step.state;
      return step.value;
    },
  };
}

/** Every call takes exactly `ms` milliseconds (≥ 0). */
export function fixedLatency(ms: number): LatencySampler {
  if (!(ms >= 0) || !Number.isFinite(ms)) {
    throw new InvalidConfigError('latency', `fixedLatency needs a finite ms ≥ 0, got ${ms}`);
  }
  return () => ms;
}

/** Shape of a log-normal latency distribution, given as the two figures people quote. */
export interface LogNormalLatencyOptions {
  /** Median latency in milliseconds (> 0). */
  readonly medianMs: number;
  /** 99th-percentile latency in milliseconds (≥ `medianMs`; equal means no spread). */
  readonly p99Ms: number;
}

/** Φ⁻¹(0.99): how many standard deviations the 99th percentile lies above the median. */
const Z_99 = 2.3263478740408408;

/**
 * Log-normal latencies: `medianMs · exp(σ·Z)` with `σ = ln(p99Ms / medianMs) / Φ⁻¹(0.99)` and Z standard normal,
 * the usual shape of LLM call durations (a long right tail). Normal draws use Box–Muller, two
 * `rng.next()` calls per sample, so the sequence depends only on the seed of `rng`.
 */
export function logNormalLatency(options: LogNormalLatencyOptions, rng: Random): LatencySampler {
  const { medianMs, p99Ms } = options;
  if (!(medianMs > 0) || !Number.isFinite(medianMs)) {
    throw new InvalidConfigError('latency.medianMs', `must be a finite number > 0, got ${medianMs}`);
  }
  if (!(p99Ms >= medianMs) || !Number.isFinite(p99Ms)) {
    throw new InvalidConfigError(
      'latency.p99Ms',
      `must be finite and ≥ medianMs (${medianMs}), got ${p99Ms}`,
    );
  }
  const sigma = Math.log(p99Ms / medianMs) / Z_99;
  return () => {
    // 1 - next() lies in (0, 1], so the logarithm stays finite.
    const radius = Math.sqrt(-2 * Math.log(1 - rng.next()));
    const z = radius * Math.cos(2 * Math.PI * rng.next());
    return medianMs * Math.exp(sigma * z);
  };
}
