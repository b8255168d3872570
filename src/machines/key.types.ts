import type { BudgetLimits, BudgetState } from '../limits/budget.js';

/** The four states SPEC §2 names, plus `draining` for a key removed while leases are out. */
export type KeyStateName = 'available' | 'busy' | 'cooling' | 'exhausted' | 'draining';

/**
 * Why a key is cooling (`rate-limited`, `budget`, `quota`, `paced`), busy under its slow-start cap
 * (`slow-start`) or exhausted (`failures`, `quota`, `revoked`, `disabled`). `quota` is cooling when a
 * success said the requests or tokens left are used up until a stated reset, and exhausted when a
 * 429 said a spend or daily quota is spent. `paced` rests between grants at the pace the key learned
 * from 429s. `slow-start`: a new key that has heard nothing of its limits yet takes a few leases at
 * once (see `KeyAllowance`), whatever `maxConcurrent` says.
 */
export type KeyReason =
  | 'rate-limited'
  | 'budget'
  | 'quota'
  | 'paced'
  | 'slow-start'
  | 'failures'
  | 'revoked'
  | 'disabled';

/** Every {@link KeyReason}, in a fixed order (metrics list one sample per reason). */
export const KEY_REASONS: readonly KeyReason[] = [
  'rate-limited',
  'budget',
  'quota',
  'paced',
  'slow-start',
  'failures',
  'revoked',
  'disabled',
];

/** Per-key settings, fixed for the key's lifetime (defaults come from the pool options). */
export interface KeySettings {
  /** A name shown instead of the fingerprint; never the key. */
  readonly label: string | null;
  /** What people may see of the key (`****` + at most its last 4 characters). */
  readonly mask: string;
  /** Concurrent leases before the key is `busy`. ≥ 1; `null` = uncapped (JSON has no `Infinity`). */
  readonly maxConcurrent: number | null;
  /** Share for the `weighted` strategy. ≥ 0; 0 = drained. */
  readonly weight: number;
  /** Consecutive failures that exhaust the key. ≥ 1. */
  readonly maxFailures: number;
  /** Longest cooldown for a rate limit that carries no hint (ms). */
  readonly defaultCooldownMs: number;
  /** First half-open recovery delay after exhaustion (ms). */
  readonly recoveryInitialDelayMs: number;
  /** Cap of the doubling recovery delay (ms). */
  readonly recoveryMaxDelayMs: number;
  /** Weight of the newest sample in the latency EWMA, in (0, 1]. */
  readonly latencyAlpha: number;
  /** rpm / tpm / rpd budgets, or `null` when the key has none. */
  readonly budget: BudgetLimits | null;
  /** Keys sharing a provider quota (one OpenAI project, one Gemini project) share a group name. */
  readonly group: string | null;
}

/** Lifetime outcome counters of a key. */
export interface KeyCounts {
  readonly successes: number;
  readonly failures: number;
  readonly rateLimits: number;
}

/**
 * A key's health: failure and rate-limit streaks, cooldown, exhaustion and recovery. Changes on
 * failures, rate limits, rests and recoveries, rarely on the hot path, so it is one nested object
 * that a plain grant or success shares with the previous context instead of copying.
 */
export interface KeyHealth {
  readonly consecutiveFailures: number;
  /** Rate limits without a hint in a row; drives the 1 s, 2 s, 4 s … escalation. */
  readonly rateLimitStreak: number;
  /** End of the current cooldown (epoch ms); 0 when none. Only ever extended while cooling. */
  readonly cooldownUntil: number;
  /** Why the key is cooling or exhausted; `null` when healthy. */
  readonly reason: KeyReason | null;
  /** When the next probe is admitted (epoch ms), while exhausted for failures or quota; else 0. */
  readonly recoveryAt: number;
  /** Current un-jittered recovery delay (ms); doubles after each failed probe; 0 when healthy. */
  readonly recoveryDelayMs: number;
  /** Grant sequence of the single probe lease out, while half-open; 0 = none. Identifies the probe of
   *  *this* recovery episode, so a stale probe from an earlier one cannot decide it. */
  readonly probeSeq: number;
  /** True once `removeKey` asked the key to leave; it drains its leases, then stops. */
  readonly draining: boolean;
  /** When the key last failed or was rate limited (epoch ms); the latency strategy penalises it. */
  readonly lastPenaltyAt: number;
}

/**
 * Everything a key actor knows. JSON-only; times are epoch ms from the injected clock so that a
 * persisted record means the same after a restart and in another process. Never holds the secret.
 *
 * Keep the top level small: XState copies context with `Object.assign({}, …)` on every `assign`,
 * and V8 grows the copy's out-of-object property store several times per copy, so each top-level
 * field costs on the hot path. Measured with a bare XState pool (three steps per acquire/release
 * pair): 19 top-level fields cost 8.3 µs per pair, 12 fields 7.2 µs, 8 fields 6.95 µs; at 20 or
 * more the copy becomes a slow dictionary (21 fields halved that pool's throughput). Related
 * fields are grouped (`settings`, `counts`, `health`, `budget`, `allowance`) for that reason.
 */
export interface KeyContext {
  /** Fingerprint of the key (never the key itself). */
  readonly keyId: string;
  /** Position in the configured order (tie-breaker, round-robin ring). */
  readonly order: number;
  readonly settings: KeySettings;
  /** Unsettled leases on this key, exactly. */
  inFlight: number;
  counts: KeyCounts;
  /** EWMA of successful call latency (ms); `null` until the first success. */
  latencyEwma: number | null;
  /** Sequence number of the last lease granted (ties in least-busy: least recently leased first). */
  lastLeaseSeq: number;
  /** When the key was last leased (epoch ms); 0 = never. */
  lastUsedAt: number;
  /** Budget meters, or `null` when the key has no budget. */
  budget: BudgetState | null;
  /** What the key learned it may send, and at what pace; `null` = nothing learned: no limit. */
  allowance: KeyAllowance | null;
  /** Streaks, cooldown, exhaustion and recovery; replaced as a whole when any of it changes. */
  health: KeyHealth;
}

/**
 * What a key learned of its provider's limit, from answers alone (nothing here is configured):
 * - **told** (`remaining` ≥ 0): the newest answer's rate-limit headers said how many requests
 *   remain; the key starts at most that many, less the leases out since, then rests until the
 *   reset the answer stated (the earliest moment *a* slot may free, not a promise of a whole
 *   window) and sends one call, whose answer says how many more;
 * - **paced** (`gapMs` > 0): 429s showed what the provider admits; the key spaces its grants
 *   `gapMs` apart, as an `rpm` budget does, instead of bursting after each rest. The first 429
 *   sets the pace from what the key got through since it started sending and when the 429 said
 *   a slot frees — a bare 429 says nothing, so the key probes one call at a time until one gets
 *   through, and that call's send time ends the span; each later 429 of a paced lease widens the gap;
 * - **slow start** (`slowCap` > 0): a new key that has heard nothing yet takes at most `slowCap`
 *   leases at once, one more per success; it ends once an answer states what remains, a 429
 *   sets a pace, or the cap reaches 1 000.
 */
export interface KeyAllowance {
  /** Leases the key may still start before it hears more; −1 = no answer stated it (no cap). */
  readonly remaining: number;
  /** When the newest answer said a slot frees (epoch ms, from when the provider counted it); 0 = not stated. */
  readonly resetAt: number;
  /** Grant sequence of the lease whose answer set `remaining`: an older answer is stale and ignored. */
  readonly heardSeq: number;
  /**
   * The leases granted since the answer that set `remaining` was granted (sequence and grant time,
   * at most 256, oldest dropped): a newer answer's count is less those granted after it — or at the
   * same instant, since calls granted together reach the provider in no particular order.
   */
  readonly sent: readonly { readonly seq: number; readonly at: number }[];
  /** Every lease granted after this sequence is in `sent` (tracking began, or the oldest was dropped). */
  readonly countedTo: number;
  /** Leases out at once while in slow start; 0 = not in slow start. */
  readonly slowCap: number;
  /** Learned pace: ms between grants; 0 = not paced. */
  readonly gapMs: number;
  /**
   * The gap at which the pace last drew a 429 (ms; scaled by 1.1 / 1.05 when that 429 stated no
   * wait); 0 = none yet. Successes narrow the gap to no less than 1.05 times it.
   */
  readonly lossGapMs: number;
  /** The pace's meter: when the next lease may be granted (epoch ms, as an rpm budget's). */
  readonly nextAt: number;
  /** When the key began sending in the episode a first 429 learns from (epoch ms); 0 = not yet. */
  readonly since: number;
  /** Leases with a larger grant sequence belong to that episode. */
  readonly fromSeq: number;
  /** Successes of the episode's leases so far (late answers included, while `spanMs` > 0). */
  readonly got: number;
  /**
   * From `since` to when the episode's 429 said a slot frees (ms), once it came: the pace is
   * `spanMs / got`, refined as the episode's late successes come in; 0 = not learned.
   */
  readonly spanMs: number;
  /**
   * Leases up to this grant sequence still count toward `got` after the 429; −1 = the episode is
   * open. With no pace and no span yet, the episode's bare 429 came and the key awaits a freed slot:
   * its probes (one at a time) are the leases after it.
   */
  readonly toSeq: number;
  /**
   * When the key sent the last probe refused while it awaited a freed slot after a bare 429 (epoch
   * ms); 0 = none. No slot had freed then, so the episode's calls took longer than that: its pace is
   * never narrowed past that span over `got` (kept scaled, as `lossGapMs`).
   */
  readonly refusedAt: number;
  /**
   * The longest reset the recent answers that said nothing remains stated (ms, each answer's
   * and a hundredth more; it fades by a tenth per such answer); 0 = none yet. A call sent
   * once a stated reset has passed, before any answer says more, is taken to leave the key as that
   * answer did: nothing remains until this much later (so a key whose answers come back slower than
   * its slots free keeps sending, one call per freed slot, instead of waiting for each answer).
   */
  readonly zeroResetMs: number;
  /**
   * Grant time (epoch ms) and stated reset (ms) of the call whose answer, the newest heard, said
   * nothing remains; 0 when the newest said more. When the next such answer states a longer reset,
   * the slots the two point at freed further apart than the key sent the calls: that spacing (per
   * call sent in between) is a floor of `zeroResetMs`, which a reset stated for a call that came
   * late to its slot understates.
   */
  readonly spentGrantedAt: number;
  readonly spentResetMs: number;
  /** The newest such spacing measured (ms); 0 = none yet. */
  readonly slotSpacingMs: number;
  /**
   * Leases the key starts at once when a stated (or assumed) reset passes with nothing left (less
   * its own calls still counted then, see `sentLog`): 1, or — once the answers to calls sent as two
   * such resets passed each showed as much free as any answer ever did (`mostFree`: the reset
   * replenished the limit fully, as OpenAI's, Anthropic's and a fixed window's do) — that much,
   * which the key then uses at once instead of sending one call and waiting for its answer. ≥ 1.
   * Any 429 sets it back to 1 until two newer resets show it again.
   */
  readonly resetFrees: number;
  /** When the newest passed reset restored `resetFrees` leases (epoch ms); 0 = none since the last grant. */
  readonly freedAt: number;
  /**
   * Leases sent within a hundredth of a passed reset (at most 64, oldest dropped), each with that
   * reset's `freedAt`: their answers say what the reset freed.
   */
  readonly resetLeases: readonly { readonly seq: number; readonly group: number }[];
  /** The `freedAt` of the newest reset a 429 came from: answers from older ones no longer count; 0 = none. */
  readonly resetGroup: number;
  /**
   * When the key granted its recent leases (epoch ms, at most 256, oldest dropped), once an answer
   * said what remains: what a reset that replenishes fully gives back is `resetFrees` less those
   * sent within a full replenishment before it.
   */
  readonly sentLog: readonly number[];
  /** The most requests any answer showed free at once (its `remaining` and the call itself); 0 = none yet. */
  readonly mostFree: number;
  /**
   * The longest reset any answer stated (and a hundredth more; ms); 0 = none yet. No limit takes
   * longer to replenish fully: a key taking `resetFrees` > 1 at a reset rests this long after them,
   * and counts its own calls within this span before a reset as still taken there.
   */
  readonly longestResetMs: number;
  /** The `freedAt` of the newest reset that showed the limit fully free (see `resetFrees`); 0 = none. */
  readonly fullGroup: number;
  /** Resets that showed the limit fully free since the last 429. */
  readonly fullResets: number;
}

/**
 * What kind of failure a `lease.fail` reports.
 * - `failure`: counts toward `maxFailures`;
 * - `provider`: a provider-wide error (5xx, 529, network) the pool judged an outage: counted, but
 *   never against the key's health;
 * - `quota`: a spend or daily quota is spent: exhausted until the stated reset (or half-open probing);
 * - `revoked` (401/403), `disabled` (402, billing): out until `resetKey`/`addKey`;
 * - `aborted`: the caller cancelled the call: counted, never against the key's health.
 */
export type FailureKind = 'failure' | 'provider' | 'quota' | 'revoked' | 'disabled' | 'aborted';

/**
 * Events a key actor accepts. Settle events may arrive in every state; `seq` is the grant sequence
 * of the lease being settled (the pool numbers grants).
 */
export type KeyEvent =
  | {
      readonly type: 'lease.grant';
      readonly seq: number;
      readonly tokens: number;
      /** When the pool granted it (epoch ms); the key's clock when absent. */
      readonly at?: number;
    }
  | {
      readonly type: 'lease.release';
      readonly seq: number;
      readonly latencyMs: number | undefined;
      /** Tokens used minus tokens reserved at grant (budget reconciliation); 0 when unknown. */
      readonly tokenDelta: number;
      /** How long the success said the key's quota is used up (remaining 0 until a reset), if it did. */
      readonly restMs: number | undefined;
      /**
       * Remaining requests and ms until the next one frees, when the success's headers said; `limit`:
       * the requests a window admits, when they said that too.
       */
      readonly allowance:
        | { readonly remaining: number; readonly resetMs: number; readonly limit: number | undefined }
        | undefined;
    }
  | {
      readonly type: 'lease.fail';
      readonly seq: number;
      readonly kind: FailureKind;
      /** For `quota`: when the provider said the quota resets (ms from now). */
      readonly retryAfterMs: number | undefined;
    }
  | {
      readonly type: 'lease.rateLimit';
      readonly seq: number;
      /** How long to wait, counted from the call's start (where the provider refused it). */
      readonly retryAfterMs: number | undefined;
      /** How long the call took (ms), so that the wait counts from its start. */
      readonly latencyMs: number | undefined;
    }
  | {
      /** What another process (storage `watch`) or a key of the same quota group recorded: honoured if it is news. */
      readonly type: 'key.sync';
      readonly reason: KeyReason | null;
      readonly cooldownUntil: number;
      readonly recoveryAt: number;
      readonly recoveryDelayMs: number;
    }
  /** The pool concluded that an earlier provider error was this key's own (others succeeded since). */
  | { readonly type: 'key.blame' }
  | { readonly type: 'key.reset' }
  /** `addKey` of a key the pool has: bring it back (cancels a drain, clears revocation and failures). */
  | { readonly type: 'key.readd' }
  | { readonly type: 'key.drain' };

/** Events a key actor sends to its parent pool. */
export type KeyToPoolEvent =
  | { readonly type: 'key.ready'; readonly keyId: string }
  | { readonly type: 'key.drained'; readonly keyId: string };

/** Input of a key actor: identity, settings, and (after a restart) the restored record fields. */
export interface KeyInput {
  readonly keyId: string;
  readonly order: number;
  readonly settings: KeySettings;
  /**
   * The fields a new actor takes over (from a stored record, or from a crashed actor's context),
   * health nested as in the context; never the probe or the drain, which belong to the old actor.
   */
  readonly restored?: Partial<
    Pick<KeyContext, 'inFlight' | 'lastLeaseSeq' | 'counts' | 'latencyEwma' | 'lastUsedAt' | 'budget'>
  > & { readonly health?: Partial<Omit<KeyHealth, 'probeSeq' | 'draining'>> };
}

/** Time and randomness a key machine reads; injected so tests and simulations are deterministic. */
export interface KeyMachineDeps {
  /** Current time, epoch ms. */
  readonly now: () => number;
  /** Uniform in [0, 1); used for recovery jitter. */
  readonly random: () => number;
}
