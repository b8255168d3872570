import type { RateLimitHintStyle, SimulatedResponse } from '../../src/sim/index.js';

// What a careful client reads from a 429, per hint style: the tests use it to prove that the hints
// are exact (waiting that long succeeds, waiting one unit less does not).

const UNIT_MS: Readonly<Record<string, number>> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/**
 * Parses Go's `time.Duration.String()` form (`'20ms'`, `'1.5s'`, `'6m0s'`) to whole ms: `'1.011s'`
 * would otherwise read as 1010.9999999999999 ms, a hair early.
 */
export function parseGoDuration(text: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)];
  if (parts.map((p) => p[0]).join('') !== text) throw new Error(`not a Go duration: ${text}`);
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * (UNIT_MS[p[2] ?? ''] ?? Number.NaN), 0));
}

/** The wait a hint states, in ms, and the granularity it is stated in. */
export interface HintedWait {
  readonly ms: number;
  readonly unitMs: number;
}

/** Reads the wait out of a 429 in the given style; `undefined` when it states none. */
export function hintedWait(
  response: SimulatedResponse,
  style: RateLimitHintStyle,
  now: number,
  tokens: number,
): HintedWait | undefined {
  const h = response.headers;
  switch (style) {
    case 'retry-after': {
      const seconds = h['retry-after'];
      return seconds === undefined ? undefined : { ms: Number(seconds) * 1000, unitMs: 1000 };
    }
    case 'openai': {
      let ms = 0;
      if (h['x-ratelimit-remaining-requests'] === '0')
        ms = parseGoDuration(h['x-ratelimit-reset-requests'] ?? '');
      if (Number(h['x-ratelimit-remaining-tokens'] ?? Number.POSITIVE_INFINITY) < tokens) {
        ms = Math.max(ms, parseGoDuration(h['x-ratelimit-reset-tokens'] ?? ''));
      }
      return { ms, unitMs: 1 };
    }
    case 'anthropic': {
      let at = now;
      if (h['anthropic-ratelimit-requests-remaining'] === '0') {
        at = Date.parse(h['anthropic-ratelimit-requests-reset'] ?? '');
      }
      if (Number(h['anthropic-ratelimit-tokens-remaining'] ?? Number.POSITIVE_INFINITY) < tokens) {
        at = Math.max(at, Date.parse(h['anthropic-ratelimit-tokens-reset'] ?? ''));
      }
      return { ms: at - now, unitMs: 1 };
    }
    case 'gemini': {
      const body = response.body as { error: { details: { '@type': string; retryDelay?: string }[] } };
      const info = body.error.details.find((d) => d['@type'] === 'type.googleapis.com/google.rpc.RetryInfo');
      return info?.retryDelay === undefined ? undefined : { ms: parseGoDuration(info.retryDelay), unitMs: 1 };
    }
    case 'none':
      return undefined;
  }
}
