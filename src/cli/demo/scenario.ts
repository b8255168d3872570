import type { SimulatedKey } from '../../sim/provider.js';

/** One fake key of the demo and the limits the mock provider holds it to. */
export interface DemoKey {
  readonly label: string;
  /** Obviously fake: `sk-demo-fake-<label>-…`; never a real key format. */
  readonly key: string;
  /** Requests per second the provider admits (before `--speed`). */
  readonly rps: number;
  /** Requests per minute the provider admits: a quota that runs out and keeps the key cooling. */
  readonly rpm: number | undefined;
  /** Share of admitted calls that fail with 500. */
  readonly errorRate: number;
  /** The provider revokes the key this long after the start (before `--speed`), if set. */
  readonly revokeAfterMs: number | undefined;
  /**
   * The pool is told the key's rate as an `rpm` budget ({@link pacedRpm}: a little under the
   * provider's limit), and paces it: no 429 from that limit.
   */
  readonly paced: boolean;
  /** What this key shows, for the banner. */
  readonly role: string;
}

const LABELS = [
  'alpha',
  'bravo',
  'charlie',
  'delta',
  'echo',
  'foxtrot',
  'golf',
  'hotel',
  'india',
  'juliett',
  'kilo',
  'lima',
  'mike',
  'november',
  'oscar',
  'papa',
  'quebec',
  'romeo',
  'sierra',
  'tango',
  'uniform',
  'victor',
  'whiskey',
  'xray',
  'yankee',
  'zulu',
] as const;

/** Most keys the demo can make. */
export const MAX_DEMO_KEYS = LABELS.length;

/** The first five keys each show one behaviour; the rest are plain keys of varied speed. */
const ROLES: ReadonlyArray<Omit<DemoKey, 'label' | 'key'>> = [
  {
    rps: 20,
    rpm: undefined,
    errorRate: 0,
    revokeAfterMs: undefined,
    paced: true,
    role: '20 req/s, paced by an rpm budget just under it',
  },
  {
    rps: 10,
    rpm: undefined,
    errorRate: 0,
    revokeAfterMs: undefined,
    paced: true,
    role: '10 req/s, paced by an rpm budget just under it',
  },
  {
    rps: 8,
    rpm: undefined,
    errorRate: 0.15,
    revokeAfterMs: undefined,
    paced: true,
    role: '8 req/s, paced; flaky: 15 % of calls fail with 500',
  },
  {
    rps: 15,
    rpm: undefined,
    errorRate: 0,
    revokeAfterMs: 2_000,
    paced: false,
    role: '15 req/s, no budget; revoked by the provider after 2 s',
  },
  {
    rps: 10,
    rpm: 30,
    errorRate: 0,
    revokeAfterMs: undefined,
    paced: false,
    role: '10 req/s but only 30 a minute, no budget: runs out and cools ~1 min',
  },
];
const EXTRA_RPS = [12, 6, 16, 9];

/**
 * Share of a paced key's rate its `rpm` budget allows. Paced at exactly the provider's rate, calls
 * one pace apart can reach the provider's sliding second closer together than they left (network
 * jitter, or a loaded machine that sends a few at once after a stall) and draw a 429; a fifth less
 * leaves room for that (a tenth less still drew one when three demos ran side by side with a test suite).
 */
const PACING_MARGIN = 0.8;

/** The `rpm` budget the pool is given for a paced key at `speed`. */
export function pacedRpm(key: DemoKey, speed: number): number {
  return Math.floor(key.rps * speed * 60 * PACING_MARGIN);
}

/** The demo's keys: `count` of them (1 to {@link MAX_DEMO_KEYS}). */
export function demoKeys(count: number): DemoKey[] {
  return LABELS.slice(0, count).map((label, i) => {
    const role = ROLES[i] ?? {
      rps: EXTRA_RPS[i % EXTRA_RPS.length] ?? 10,
      rpm: undefined,
      errorRate: 0,
      revokeAfterMs: undefined,
      paced: true,
      role: 'plain, paced',
    };
    return { ...role, label, key: `sk-demo-fake-${label}-${String(i + 1).padStart(4, '0')}-not-a-real-key` };
  });
}

/** The keys as the mock provider knows them; `speed` multiplies rates and shortens the revocation delay. */
export function simulatedKeys(keys: readonly DemoKey[], startedAt: number, speed: number): SimulatedKey[] {
  return keys.map((k) => ({
    key: k.key,
    label: k.label,
    limits: {
      requestsPerSecond: Math.max(1, Math.round(k.rps * speed)),
      ...(k.rpm === undefined ? {} : { requestsPerMinute: k.rpm }),
    },
    errorRate: k.errorRate,
    ...(k.revokeAfterMs === undefined ? {} : { revokedAt: startedAt + k.revokeAfterMs / speed }),
  }));
}

/**
 * How many successes the provider could have given in `durationMs` at most: each key's rate for
 * as long as it was usable, within its per-minute quota, less its failure rate. The demo's goodput
 * is measured against it. `usableFromMs(label)` says when a key became usable (ms after the start:
 * later for a key restored as cooling, `Infinity` for one restored as revoked); default 0.
 */
export function capacity(
  keys: readonly DemoKey[],
  durationMs: number,
  speed: number,
  usableFromMs: (label: string) => number = () => 0,
): number {
  let total = 0;
  for (const k of keys) {
    const from = Math.max(0, usableFromMs(k.label));
    const until = k.revokeAfterMs === undefined ? durationMs : Math.min(durationMs, k.revokeAfterMs / speed);
    const usable = until - from;
    if (!(usable > 0)) continue;
    // A sliding window admits its whole limit at once, then its limit again per window length.
    let admitted = Math.max(1, Math.round(k.rps * speed)) * Math.ceil(usable / 1_000);
    if (k.rpm !== undefined) admitted = Math.min(admitted, k.rpm * Math.ceil(usable / 60_000));
    total += admitted * (1 - k.errorRate);
  }
  return total;
}
