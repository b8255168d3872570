import type { Clock } from '../clock.js';
import { SimulatedProvider } from './provider.js';
import { createRandom, fixedLatency, type LatencySampler, logNormalLatency, type Random } from './random.js';
import type { ResetMeaning, WindowShape } from './shaped-limit.js';

// The provider family of BENCH.md B4g: providers KeyMesh was not tuned to. A member is a plain,
// JSON-serialisable description (so that the HTTP mock provider in another process can serve it);
// `familyProvider` builds the simulated provider it describes.

/** Window shapes the family draws from. */
export const FAMILY_SHAPES: readonly WindowShape[] = ['fixed-window', 'sliding-log', 'token-bucket', 'gcra'];
/** Reset meanings the family draws from. */
export const FAMILY_RESETS: readonly ResetMeaning[] = ['window-end', 'next-slot', 'full'];
/** Window lengths the family draws from, in ms. */
export const FAMILY_WINDOWS_MS: readonly number[] = [1_000, 10_000, 60_000];
/** Caller counts the family draws from. */
export const FAMILY_CALLERS: readonly number[] = [8, 80, 400];

/** Retry headers a member's 429s carry: `retry-after-ms` (exact), `retry-after` (whole seconds, rounded up), both, or none. */
export type FamilyRetryAfter = 'ms' | 'seconds' | 'both' | 'none';
/** Rate-limit headers a member's successes (and 429s) carry: none, `x-ratelimit-*-requests`, or requests and tokens. */
export type FamilySuccessHeaders = 'none' | 'requests' | 'requests-and-tokens';
/** Call latency of a member: fixed 40 ms, or log-normal with median 400 ms and p99 4 s. */
export type FamilyLatency = 'fixed-40ms' | 'log-normal-400ms';

/** One provider of the family. */
export interface FamilyMember {
  /** The seed it was drawn from; also seeds its latencies. */
  readonly seed: number;
  readonly shape: WindowShape;
  /** What `x-ratelimit-reset-*` means. */
  readonly reset: ResetMeaning;
  readonly retryAfter: FamilyRetryAfter;
  readonly successHeaders: FamilySuccessHeaders;
  /** The window every key's limit counts over, in ms. */
  readonly windowMs: number;
  /** Requests per window, one per key (2 … 1 000, unequal). */
  readonly limits: readonly number[];
  readonly latency: FamilyLatency;
  /** Closed-loop callers driving the member. */
  readonly callers: number;
}

/** Tokens each call costs in a family run (prompt + maximum output). */
export const FAMILY_TOKENS_PER_CALL = 500;
/**
 * A member's token limit, when it has one (`'requests-and-tokens'`), is this many times what its
 * request limit lets through, so that it is reported but never the binding limit.
 */
const TOKEN_HEADROOM = 4;
/** Latency of a 429 (the gateway rejects before any model runs), in ms. */
export const FAMILY_REJECTION_LATENCY_MS = 40;
/**
 * The callers can offer at least this many times the member's capacity (at the latency's mean), so
 * that a perfect client can reach a goodput ratio of 1: below it the ratio would measure the
 * callers, not the client.
 */
const SATURATION = 2;
/** Total requests per second of a member at most, to keep a simulated run within seconds of CPU. */
export const FAMILY_MAX_RATE_PER_SECOND = 200;
/** Keys per member: 2 … 6 (fewer when the rate above leaves too little room for unequal limits). */
const MAX_KEYS = 6;
const LOG_NORMAL = { medianMs: 400, p99Ms: 4_000 } as const;
/** Mean of the log-normal latency: median · exp(σ² / 2), σ = ln(p99 / median) / Φ⁻¹(0.99). */
const LOG_NORMAL_MEAN_MS = LOG_NORMAL.medianMs * Math.exp((Math.log(10) / 2.3263478740408408) ** 2 / 2);

/** Calls a GCRA member lets go back to back: a tenth of its limit, at least 1. */
export function gcraBurst(limit: number): number {
  return Math.max(1, Math.ceil(limit / 10));
}

/** Whether a member says anything at all about its limits (a retry header or rate-limit headers). */
export function hasHints(member: FamilyMember): boolean {
  return member.retryAfter !== 'none' || member.successHeaders !== 'none';
}

function pick<T>(random: Random, values: readonly T[]): T {
  return values[Math.floor(random.next() * values.length)] as T;
}

/** An integer drawn log-uniformly from `[low, high]`. */
function logUniform(random: Random, low: number, high: number): number {
  const value = Math.floor(Math.exp(Math.log(low) + random.next() * (Math.log(high + 1) - Math.log(low))));
  return Math.min(high, Math.max(low, value));
}

/**
 * Draws one member from `seed` (same seed, same member): shape, reset meaning, retry headers,
 * success headers, window, latency and callers uniformly; one member in five says nothing at all
 * (a bare 429, no headers); 2 … 6 keys with unequal limits drawn log-uniformly from 2 … 1 000 per
 * window, capped so that the callers can offer {@link SATURATION} × the capacity and the total
 * stays within {@link FAMILY_MAX_RATE_PER_SECOND}.
 */
export function sampleFamilyMember(seed: number): FamilyMember {
  // Neighbouring seeds start mulberry32 in neighbouring states; mix them apart first.
  const random = createRandom(Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) ^ 0x2545f491);
  const shape = pick(random, FAMILY_SHAPES);
  const reset = pick(random, FAMILY_RESETS);
  const hintless = random.next() < 0.2;
  const retryAfter: FamilyRetryAfter = hintless ? 'none' : pick(random, ['ms', 'seconds', 'both'] as const);
  const successHeaders: FamilySuccessHeaders = hintless
    ? 'none'
    : pick(random, ['none', 'requests', 'requests-and-tokens'] as const);
  const windowMs = pick(random, FAMILY_WINDOWS_MS);
  const latency = pick(random, ['fixed-40ms', 'log-normal-400ms'] as const);
  const callers = pick(random, FAMILY_CALLERS);

  const meanLatencyMs = latency === 'fixed-40ms' ? 40 : LOG_NORMAL_MEAN_MS;
  const ratePerSecond = Math.min(FAMILY_MAX_RATE_PER_SECOND, (callers * 1_000) / meanLatencyMs / SATURATION);
  const perWindow = (ratePerSecond * windowMs) / 1_000;
  let keys = 2 + Math.floor(random.next() * (MAX_KEYS - 1));
  while (keys > 2 && Math.floor(perWindow / keys) < 3) keys--;
  const high = Math.max(2, Math.min(1_000, Math.floor(perWindow / keys)));
  const limits: number[] = [];
  for (let i = 0; i < keys; i++) {
    let limit = logUniform(random, 2, high);
    // Unequal where the range allows: redraw a few times rather than repeat a limit.
    for (let tries = 0; tries < 8 && limits.includes(limit) && high - 1 >= keys; tries++)
      limit = logUniform(random, 2, high);
    limits.push(limit);
  }
  return { seed, shape, reset, retryAfter, successHeaders, windowMs, limits, latency, callers };
}

/** One line naming the member: `#7 sliding-log 1s reset=next-slot retry=ms headers=requests limits 2,3,5 fixed-40ms 80 callers`. */
export function describeMember(member: FamilyMember): string {
  const window = member.windowMs % 1_000 === 0 ? `${member.windowMs / 1_000}s` : `${member.windowMs}ms`;
  return [
    `#${member.seed}`,
    member.shape,
    window,
    `reset=${member.reset}`,
    `retry=${member.retryAfter}`,
    `headers=${member.successHeaders}`,
    `limits ${member.limits.join(',')}`,
    member.latency,
    `${member.callers} callers`,
  ].join(' ');
}

/** The raw (obviously fake) key string of a member's key `index` (0-based). */
export function familyKey(index: number): string {
  return `sk-family-fake-k${index + 1}-${String(index + 1).padStart(16, '0')}`;
}

/** The latency sampler of a member's admitted calls, seeded by its seed. */
export function familyLatency(member: FamilyMember): LatencySampler {
  return member.latency === 'fixed-40ms'
    ? fixedLatency(40)
    : logNormalLatency(LOG_NORMAL, createRandom(member.seed));
}

/** Options of {@link familyProvider}. */
export interface FamilyProviderOptions {
  /** The provider's clock. */
  readonly clock: Clock;
  /** Epoch ms at which fixed windows start (a run's start, so that its windows are whole). Default: `clock.now()`. */
  readonly origin?: number;
  /** Latency of admitted calls. Default {@link familyLatency} of the member. */
  readonly latency?: LatencySampler;
}

/**
 * The simulated provider a member describes: keys `k1 …` ({@link familyKey}) with the member's
 * limits (shape, window, reset meaning), its hints, and its latency (429s answer in
 * {@link FAMILY_REJECTION_LATENCY_MS}). Without hints it answers bare 429s.
 */
export function familyProvider(member: FamilyMember, options: FamilyProviderOptions): SimulatedProvider {
  const { clock } = options;
  const origin = options.origin ?? clock.now();
  const limit = (count: number, burst: number) => ({
    shape: member.shape,
    limit: count,
    windowMs: member.windowMs,
    reset: member.reset,
    origin,
    ...(member.shape === 'gcra' ? { burst } : {}),
  });
  const tokens = FAMILY_TOKENS_PER_CALL * TOKEN_HEADROOM;
  const hints =
    member.retryAfter === 'none' && member.successHeaders === 'none'
      ? 'none'
      : member.successHeaders === 'none'
        ? 'retry-after'
        : 'openai';
  return new SimulatedProvider({
    clock,
    hints,
    retryAfter: member.retryAfter,
    successHeaders: member.successHeaders !== 'none',
    limitHeaders: member.successHeaders === 'requests' ? 'requests' : 'requests-and-tokens',
    latency: options.latency ?? familyLatency(member),
    rejectionLatency: fixedLatency(FAMILY_REJECTION_LATENCY_MS),
    seed: member.seed,
    keys: member.limits.map((count, index) => ({
      key: familyKey(index),
      label: `k${index + 1}`,
      limits: {
        requests: limit(count, gcraBurst(count)),
        ...(member.successHeaders === 'requests-and-tokens'
          ? { tokens: limit(count * tokens, gcraBurst(count) * tokens) }
          : {}),
      },
    })),
  });
}
