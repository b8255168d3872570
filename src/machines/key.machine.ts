import { assign, sendParent, setup } from 'xstate';
import { systemClock } from '../clock.js';
import { budgetReadyAt, chargeGrant, reconcileTokens } from '../limits/budget.js';
import type {
  KeyAllowance,
  KeyContext,
  KeyEvent,
  KeyHealth,
  KeyInput,
  KeyMachineDeps,
  KeyReason,
  KeyStateName,
} from './key.types.js';

const COOLING_REASONS: ReadonlySet<KeyReason | null> = new Set(['rate-limited', 'budget', 'quota', 'paced']);

/** Shortest cooldown of the no-hint escalation (1 s, 2 s, 4 s … up to `defaultCooldownMs`). */
const FIRST_ESCALATION_MS = 1_000;

const DEAD_REASONS: ReadonlySet<KeyReason | null> = new Set(['revoked', 'disabled']);

/** Exhausted for failures, or for a spent quota (which, unlike a cooling `quota`, has a recovery time). */
function recovering(health: Pick<KeyHealth, 'reason' | 'recoveryAt' | 'probeSeq'>): boolean {
  return (
    health.reason === 'failures' ||
    (health.reason === 'quota' && (health.recoveryAt > 0 || health.probeSeq !== 0))
  );
}

/** When the key's budget is clear again after `context` (0 when it has no budget). */
function budgetClearAt(context: KeyContext): number {
  return context.settings.budget && context.budget
    ? budgetReadyAt(context.settings.budget, context.budget)
    : 0;
}

type SyncEvent = Extract<KeyEvent, { type: 'key.sync' }>;

/**
 * The part of another process's record that this key's health should adopt, or `undefined` when it
 * tells nothing new: a revocation, an exhaustion of a healthy key, or a longer cooldown.
 */
function externalNews(health: KeyHealth, event: SyncEvent, now: number): Partial<KeyHealth> | undefined {
  if (DEAD_REASONS.has(health.reason)) return undefined;
  if (DEAD_REASONS.has(event.reason)) return { reason: event.reason, recoveryAt: 0, probeSeq: 0 };
  if (recovering(health)) return undefined;
  if ((event.reason === 'failures' || event.reason === 'quota') && event.recoveryAt > now) {
    return {
      reason: event.reason,
      recoveryAt: event.recoveryAt,
      recoveryDelayMs: event.recoveryDelayMs,
      probeSeq: 0,
    };
  }
  if (COOLING_REASONS.has(event.reason) && event.cooldownUntil > Math.max(now, health.cooldownUntil)) {
    return { reason: event.reason, cooldownUntil: event.cooldownUntil };
  }
  return undefined;
}

/**
 * A new key takes at most this many leases at once until an answer says more (headers, a 429) or it
 * has proven itself: the cap grows by one per success, like TCP's slow start with an initial window
 * of 10 (RFC 6928), and is dropped at SLOW_START_DONE.
 */
const SLOW_START_WINDOW = 10;
const SLOW_START_DONE = 1_000;
/** The slow-start cap a key restarts from when a 429 came before any success could teach a pace. */
const RESTART_WINDOW = 1;

/**
 * AIMD on a learned pace. A 429 of a paced lease widens the gap by PACE_BACKOFF — hinted or not: an
 * unhinted pace is measured between a refused and an admitted probe, no further off than a hinted
 * one — and remembers the gap that drew it. Each success narrows the gap by 1/PACE_PROBE — a pace learned too slow (a hint in
 * whole seconds says little) recovers by a quarter in about 15 calls — but never below PACE_FLOOR
 * times the gap that drew the last 429: a key that found its limit stays just short of it instead of
 * probing it again (a 429 can cost a whole second's rest).
 */
const PACE_BACKOFF = 1.25;
const PACE_PROBE = 64;
const PACE_FLOOR = 1.05;
/**
 * An unhinted 429 places the limit less well (and costs a whole escalating rest): the key stays
 * this much above the gap that drew it instead — as `lossGapMs`, the floor is kept scaled.
 */
const PACE_FLOOR_UNHINTED = 1.1;

/**
 * While a key awaits a freed slot after a bare 429, it rests this fraction of the time its episode
 * has lasted before each probe (at least 1 ms, never more than the escalating rest): the first probe to get through places the freed slot within an eighth of the
 * episode's span — the pace learned from it is at most that much slow — and the rests still grow
 * geometrically, so a long window costs a few more probes, not a rest twice too long.
 */
const PROBE_REST_FRACTION = 1 / 8;
/** Hints in whole seconds are rounded up: the slot may free up to this much earlier than stated. */
const WHOLE_SECOND_MS = 1_000;

/**
 * What a key assumes its call past a reset left (see `KeyAllowance.zeroResetMs`) is the longest reset
 * its recent spent answers stated, fading by this factor per answer: slots of a sliding log free
 * unevenly, and a guess too short only risks a 429 while the answer itself soon says more.
 */
const ZERO_RESET_DECAY = 0.9;

/** Grants a key remembers while it waits for an answer to count them against (see `KeyAllowance.sent`). */
const MAX_SENT_SEQS = 256;

/**
 * Resets that must each have shown the limit fully free to a call sent as they passed before the
 * key takes that much at the next: once can be chance (calls that all came at once all leave at
 * once, whatever the reset means), a provider whose reset means full replenishment shows it every time.
 */
const FULL_RESETS_SEEN = 2;

/** Leases sent at passed resets a key remembers until their answers say what the reset freed (see `KeyAllowance.resetLeases`). */
const MAX_RESET_LEASES = 64;

/**
 * Leases the key may start once a reset passed at `at` (stated, or assumed after calls sent at the
 * last one): at least the one slot any reset frees; on a limit whose resets replenish it fully
 * (`resetFrees` > 1), that much less what the key itself sent within a full replenishment before
 * (the longest reset a spent answer stated: those calls still count, whatever the window's shape).
 * A log too short to say counts as full.
 */
function freedByReset(allowance: KeyAllowance, at: number): number {
  const spanMs = allowance.longestResetMs;
  if (allowance.resetFrees <= 1 || spanMs <= 0) return 1;
  const from = at - spanMs + resetMarginMs(spanMs, undefined);
  const log = allowance.sentLog;
  if (log.length >= MAX_SENT_SEQS && (log[0] ?? 0) > from) return 1;
  let taken = 0;
  for (const sentAt of log) if (sentAt > from) taken++;
  return Math.max(1, allowance.resetFrees - taken);
}

/**
 * How many leases the key takes at once now: its `maxConcurrent`, or the slow-start cap while that
 * is tighter (with the stragglers of an episode it awaits a freed slot for); `null` = uncapped.
 */
export function concurrencyCap(context: KeyContext): number | null {
  const configured = context.settings.maxConcurrent;
  const allowance = context.allowance;
  if (allowance === null || allowance.slowCap === 0) return configured;
  // Leases out that do not count against the cap (see `cappedLeases`) come on top of it.
  const cap =
    allowance.slowCap + context.inFlight - cappedLeases(allowance, context.inFlight, context.lastLeaseSeq);
  return configured === null ? cap : Math.min(configured, cap);
}

/**
 * Why the key is in `state`: its health's reason, or — busy below its `maxConcurrent` because its
 * slow-start cap is full — `slow-start`.
 */
export function stateReason(context: KeyContext, state: KeyStateName): KeyReason | null {
  const reason = context.health.reason;
  if (reason !== null || state !== 'busy' || (context.allowance?.slowCap ?? 0) === 0) return reason;
  const configured = context.settings.maxConcurrent;
  return configured !== null && context.inFlight >= configured ? null : 'slow-start';
}

/**
 * A stated reset counts from when the provider counted the call: some time after the key granted it
 * (transit, a busy event loop), and no later than its answer. The key waits a hundredth of the reset
 * or a tenth of the call's latency longer (at least 1 ms), whichever is longer, so that its next call
 * does not arrive just before the slot frees.
 */
function resetMarginMs(resetMs: number, latencyMs: number | undefined): number {
  const latency = latencyMs !== undefined && Number.isFinite(latencyMs) ? Math.max(0, latencyMs) : 0;
  return Math.max(1, Math.ceil(resetMs / 100), Math.ceil(latency / 10));
}

/** A new key: in slow start, learning from its first episode. */
const SLOW_START: KeyAllowance = {
  remaining: -1,
  resetAt: 0,
  heardSeq: 0,
  sent: [],
  countedTo: 0,
  slowCap: SLOW_START_WINDOW,
  gapMs: 0,
  lossGapMs: 0,
  nextAt: 0,
  since: 0,
  fromSeq: 0,
  got: 0,
  spanMs: 0,
  toSeq: -1,
  refusedAt: 0,
  zeroResetMs: 0,
  spentGrantedAt: 0,
  spentResetMs: 0,
  slotSpacingMs: 0,
  resetFrees: 1,
  freedAt: 0,
  resetLeases: [],
  resetGroup: 0,
  sentLog: [],
  mostFree: 0,
  longestResetMs: 0,
  fullGroup: 0,
  fullResets: 0,
};

/** Nothing learned and no slow start: the key has no use for an allowance. */
function isBlank(allowance: KeyAllowance): boolean {
  return (
    allowance.remaining < 0 && allowance.slowCap === 0 && allowance.gapMs === 0 && allowance.spanMs === 0
  );
}

/** A grant changes `allowance`: it spends what remains, moves the pace's meter, or starts an episode. */
function movesAllowance(allowance: KeyAllowance): boolean {
  return allowance.remaining >= 0 || allowance.gapMs > 0 || (allowance.since === 0 && allowance.spanMs === 0);
}

/**
 * An episode a bare 429 ended, whose pace waits for a slot to be seen free: the 429 said nothing
 * of when one frees, so the key sends one call at a time until one of them gets through.
 */
function awaitsFreedSlot(allowance: KeyAllowance): boolean {
  return allowance.heardSeq === 0 && allowance.toSeq >= 0 && allowance.spanMs === 0 && allowance.gapMs === 0;
}

/**
 * The gap an unhinted episode's refused probe showed too fast: no slot had freed when it was sent, so
 * the episode's `got` calls took longer than that (kept scaled, as `lossGapMs` is for a bare 429).
 * `lossGapMs` as it was when no probe of this episode was refused.
 */
function refusedProbeGapMs(allowance: KeyAllowance, got: number): number {
  return allowance.refusedAt > allowance.since && got > 0
    ? ((allowance.refusedAt - allowance.since) / got) * (PACE_FLOOR_UNHINTED / PACE_FLOOR)
    : allowance.lossGapMs;
}

/**
 * The leases out that count against the slow-start cap: while the key awaits a freed slot, only its
 * probe — the episode's stragglers (slow calls sent before the 429) say nothing of a slot now.
 */
export function cappedLeases(allowance: KeyAllowance | null, inFlight: number, lastLeaseSeq: number): number {
  return allowance !== null && awaitsFreedSlot(allowance)
    ? Math.min(inFlight, lastLeaseSeq - allowance.toSeq)
    : inFlight;
}

/**
 * The allowance after the success of lease `seq`, which the provider counted at `countedAt`: the
 * slow-start cap widens by one (until it is dropped); a success of the learning episode counts —
 * however late it answers — and refines the pace learned from it. The first success of a lease
 * sent after an episode's bare 429 shows when a slot had freed: the episode's calls took from
 * `since` until then, which sets the pace.
 */
function credited(
  allowance: KeyContext['allowance'],
  seq: number,
  countedAt: number,
): KeyContext['allowance'] {
  if (allowance === null) return null;
  const awaiting = awaitsFreedSlot(allowance);
  if (awaiting && seq > allowance.toSeq) {
    // Nothing of the episode got through: no pace to learn. This success begins the next episode,
    // in slow start from one call at a time (TCP's after a timeout).
    if (allowance.got === 0) {
      return {
        ...allowance,
        slowCap: RESTART_WINDOW + 1,
        since: countedAt,
        fromSeq: allowance.toSeq,
        got: 1,
        toSeq: -1,
      };
    }
    const spanMs = Math.max(1, countedAt - allowance.since);
    const gapMs = spanMs / allowance.got;
    return {
      ...allowance,
      slowCap: 0,
      spanMs,
      gapMs,
      lossGapMs: refusedProbeGapMs(allowance, allowance.got),
      nextAt: Math.max(allowance.nextAt, countedAt + gapMs),
    };
  }
  const inEpisode = seq > allowance.fromSeq && (allowance.toSeq < 0 || seq <= allowance.toSeq);
  // A late success of a call sent before the 429 says nothing of a slot now: one call at a time still.
  const slowCap = awaiting
    ? allowance.slowCap
    : allowance.slowCap > 0 && allowance.slowCap + 1 < SLOW_START_DONE
      ? allowance.slowCap + 1
      : 0;
  if (!inEpisode && slowCap === allowance.slowCap && allowance.gapMs === 0) return allowance;
  const got = inEpisode ? allowance.got + 1 : allowance.got;
  const refines = inEpisode && allowance.spanMs > 0;
  const next = {
    ...allowance,
    slowCap,
    got,
    gapMs: refines
      ? allowance.spanMs / got
      : Math.max(allowance.lossGapMs * PACE_FLOOR, allowance.gapMs * (1 - 1 / PACE_PROBE)),
    lossGapMs: refines ? refusedProbeGapMs(allowance, got) : allowance.lossGapMs,
  };
  return isBlank(next) ? null : next;
}

/**
 * The pace a 429 teaches. The first, of a key not paced yet: the episode got `got` calls through
 * from `since` until `freesAt`, when the 429 says (or, unhinted, the rest assumes) a slot frees — on
 * a window that was empty when the key began, that is one window's worth, whatever the window's
 * shape. A hint in whole seconds may overstate the wait by up to a second: the span is then taken at
 * its shortest, never shorter than the hint itself, and the pace is only an upper bound on the gap
 * (as it is unhinted), which the key narrows quickly. Later 429s of leases granted at the pace widen
 * the gap. A key whose answers state what remains goes by them instead.
 */
function learnedPace(
  allowance: KeyAllowance,
  seq: number,
  freesAt: number,
  hintMs: number | undefined,
  lastLeaseSeq: number,
  sentAt: number,
): KeyAllowance {
  // A lease granted before the pace last changed says nothing about the pace.
  if (
    allowance.heardSeq > 0 ||
    seq <= allowance.fromSeq ||
    (allowance.toSeq >= 0 && seq <= allowance.toSeq)
  ) {
    return allowance;
  }
  // A bare 429 of a call sent before any success at the pace (a probe for a freed slot, or the first
  // call after a rest) tests no pace: the slot has not freed yet, and the rest escalates. A refused
  // probe moves the episode's end past it (the next probe may go when the rest ends) and says the
  // episode's calls took longer than until it was sent (`refusedAt`).
  if (hintMs === undefined && awaitsFreedSlot(allowance)) {
    return { ...allowance, toSeq: lastLeaseSeq, refusedAt: sentAt };
  }
  if (hintMs === undefined && allowance.gapMs > 0 && allowance.got === 0) return allowance;
  if (allowance.gapMs > 0 || allowance.since === 0) {
    const gapMs = PACE_BACKOFF * allowance.gapMs;
    return {
      ...allowance,
      slowCap: 0,
      gapMs,
      lossGapMs:
        hintMs === undefined ? (allowance.gapMs * PACE_FLOOR_UNHINTED) / PACE_FLOOR : allowance.gapMs,
      nextAt: Math.max(allowance.nextAt, freesAt + gapMs),
      fromSeq: lastLeaseSeq,
      since: 0,
      got: 0,
      spanMs: 0,
      toSeq: -1,
    };
  }
  const rounded = hintMs !== undefined && hintMs > 0 && hintMs % WHOLE_SECOND_MS === 0;
  const spanMs = Math.max(
    hintMs ?? 0,
    (rounded ? freesAt - WHOLE_SECOND_MS + 1 : freesAt) - allowance.since,
    1,
  );
  // Unhinted, the rest is a guess, not when a slot frees: the episode closes (its late successes
  // still count), and the pace waits for the first call after it to get through (see `credited`),
  // one call at a time until then.
  if (hintMs === undefined) return { ...allowance, slowCap: RESTART_WINDOW, toSeq: lastLeaseSeq };
  // Nothing got through and the wait stated is none: no pace to learn; the next episode may tell —
  // sent from one call at a time, a cap widened by each success (slow start again, as TCP's after a
  // timeout), or the key's slow calls would be refused by the burst before any could teach a pace.
  // Nothing got through yet before a stated wait: one call per span, until the episode's late
  // answers say more.
  if (allowance.got === 0 && !(hintMs > 0)) {
    return { ...allowance, slowCap: RESTART_WINDOW, since: 0, fromSeq: lastLeaseSeq };
  }
  const got = Math.max(1, allowance.got);
  const exact = hintMs !== undefined && !rounded;
  return {
    ...allowance,
    slowCap: 0,
    gapMs: spanMs / got,
    lossGapMs: exact ? spanMs / got : 0,
    spanMs,
    toSeq: lastLeaseSeq,
  };
}

/**
 * The allowance after the answer to lease `seq` said `remaining` (free then: that and the call
 * itself). A lease sent as a reset passed shows what that reset freed: when it is as much as any
 * answer ever showed free at once, the reset replenished the limit fully (OpenAI's "resets to its
 * initial state", Anthropic's "fully replenished", a fixed window's end), and the key takes that
 * much at the next one. Less says nothing: the calls sent at one reset are counted in no particular
 * order, and on a limit whose reset frees only the next slot, more slots free while the call is on
 * its way. Answers from a reset older than the newest a 429 spoke of say nothing either.
 */
function resetLearned(
  allowance: KeyAllowance,
  seq: number,
  { remaining, resetMs }: { readonly remaining: number; readonly resetMs: number },
): KeyAllowance {
  const free = remaining + 1;
  const mostFree = Math.max(allowance.mostFree, free);
  const longestResetMs = Math.max(allowance.longestResetMs, resetMs + resetMarginMs(resetMs, undefined));
  const lease = allowance.resetLeases.find((sent) => sent.seq === seq);
  if (lease === undefined) {
    return mostFree === allowance.mostFree && longestResetMs === allowance.longestResetMs
      ? allowance
      : { ...allowance, mostFree, longestResetMs };
  }
  const resetLeases = allowance.resetLeases.filter((sent) => sent.seq !== seq);
  const full = lease.group >= allowance.resetGroup && free >= allowance.mostFree;
  const fullResets =
    full && lease.group !== allowance.fullGroup ? allowance.fullResets + 1 : allowance.fullResets;
  return {
    ...allowance,
    mostFree,
    longestResetMs,
    resetLeases,
    fullGroup: full ? Math.max(allowance.fullGroup, lease.group) : allowance.fullGroup,
    fullResets,
    resetFrees:
      full && fullResets >= FULL_RESETS_SEEN ? Math.max(allowance.resetFrees, free) : allowance.resetFrees,
  };
}

/** Recovery delays are spread ±20 % so that keys exhausted together do not probe together. */
const RECOVERY_JITTER = 0.2;

/**
 * A success with nothing for the key to weigh: its headers set no rest and teach no allowance, and
 * the key has no budget to reconcile. The hot-path shortcuts `settlesPlainly` and
 * `freesSlotPlainly` start from this.
 */
function isPlainSuccess(context: KeyContext, event: KeyEvent): boolean {
  return (
    event.type === 'lease.release' &&
    event.restMs === undefined &&
    event.allowance === undefined &&
    context.settings.budget === null
  );
}

/** When the provider counted a call that took `latencyMs` to answer: at its start (its headers and hints count from there). */
function callStart(now: number, latencyMs: number | undefined): number {
  return latencyMs !== undefined && Number.isFinite(latencyMs) && latencyMs > 0 ? now - latencyMs : now;
}

/**
 * When the provider counted a success, for reading the reset its headers state. A call can wait
 * before it reaches the provider (a busy event loop, a slow connection); the time it took beyond the
 * key's usual latency is taken as spent before the provider counted it, so the reset errs late.
 * The usual latency is what the key knew before this answer (`recordSuccess` has already averaged it
 * in): at its first success it knew none, so the call may have been counted as late as its answer —
 * a new client's first calls wait for connections, and their latency is no measure of the next ones'.
 */
function countedAt(context: KeyContext, now: number, latencyMs: number | undefined): number {
  const usual = context.counts.successes > 1 ? context.latencyEwma : 0;
  return callStart(now, usual === null || latencyMs === undefined ? latencyMs : Math.min(latencyMs, usual));
}

/**
 * What a key's context becomes when its cooldown ends at `now`: no deadline, no cooling reason. A key
 * whose answers said nothing remains rested until the stated reset: now what such a reset freed last
 * time goes out (one call, until an answer showed more), and the answers say how many more.
 */
function cooldownEnded(context: KeyContext): Partial<KeyContext> {
  const allowance = context.allowance;
  const health = context.health;
  return {
    ...(allowance && allowance.remaining === 0
      ? {
          allowance: {
            ...allowance,
            remaining: freedByReset(allowance, health.cooldownUntil),
            resetAt: 0,
            freedAt: health.cooldownUntil,
          },
        }
      : {}),
    health: {
      ...health,
      cooldownUntil: 0,
      reason: COOLING_REASONS.has(health.reason) ? null : health.reason,
    },
  };
}

/** The budget after a success reconciles reserved and used tokens. */
function reconciled(context: KeyContext, event: KeyEvent, now: () => number): KeyContext['budget'] {
  const limits = context.settings.budget;
  if (!limits || !context.budget || event.type !== 'lease.release' || event.tokenDelta === 0)
    return context.budget;
  return reconcileTokens(limits, context.budget, now(), event.tokenDelta);
}

function ewma(previous: number | null, sample: number | undefined, alpha: number): number | null {
  if (sample === undefined || !Number.isFinite(sample) || sample < 0) return previous;
  return previous === null ? sample : alpha * sample + (1 - alpha) * previous;
}

/**
 * Builds the key machine: one actor per API key, owning that key's truth (state, in-flight count,
 * health, cooldown, recovery schedule). Every action, guard and delay is named, so the config is
 * plain data that Stately tooling can import. Actions never throw and do no I/O; time and
 * randomness come from `deps`, so a restored key re-arms its timers from absolute deadlines.
 */
export function createKeyMachine(deps: KeyMachineDeps) {
  const jittered = (baseMs: number, capMs: number): number =>
    Math.min(capMs, Math.round(baseMs * (1 - RECOVERY_JITTER + 2 * RECOVERY_JITTER * deps.random())));

  // Settling a lease on a key that stays healthy (available, cooling); busy's list ends in
  // `routing` instead, since its settle frees a slot.
  const releaseWhileHealthy = [
    { guard: 'settlesPlainly', actions: 'recordSuccess' },
    { guard: 'noLeaseOut' },
    {
      guard: 'refundShortensBudgetRest',
      target: 'routing',
      actions: ['recordSuccess', 'learnAllowance', 'endBudgetRestEarly', 'restAfterSuccess'],
    },
    {
      guard: 'learnsAllowance',
      target: 'routing',
      actions: ['recordSuccess', 'learnAllowance', 'restAfterSuccess'],
    },
    { guard: 'successRests', target: 'routing', actions: ['recordSuccess', 'restAfterSuccess'] },
    { actions: 'recordSuccess' },
  ] as const;
  const failWhileHealthy = [
    { guard: 'noLeaseOut' },
    { guard: 'isRevocation', target: '#key.exhausted.dead', actions: ['countFailure', 'markDead'] },
    { guard: 'isQuotaSpent', target: '#key.exhausted.failing', actions: 'spendQuota' },
    { guard: 'isOutageError', actions: 'countProviderError' },
    {
      guard: 'reachesMaxFailures',
      target: '#key.exhausted.failing',
      actions: ['countFailure', 'startRecovery'],
    },
    { actions: 'countFailure' },
  ] as const;

  return setup({
    types: {
      context: {} as KeyContext,
      events: {} as KeyEvent,
      input: {} as KeyInput,
    },
    guards: {
      noLeaseOut: ({ context }) => context.inFlight <= 0,
      grantFillsCapacity: ({ context }) =>
        context.settings.maxConcurrent !== null && context.inFlight + 1 >= context.settings.maxConcurrent,
      isRevocation: ({ event }) =>
        event.type === 'lease.fail' && (event.kind === 'revoked' || event.kind === 'disabled'),
      isQuotaSpent: ({ event }) => event.type === 'lease.fail' && event.kind === 'quota',
      // A provider-wide error the pool judged an outage, or the caller's own abort: neither is the key's fault.
      isOutageError: ({ event }) =>
        event.type === 'lease.fail' && (event.kind === 'provider' || event.kind === 'aborted'),
      isProbeOutage: ({ context, event }) =>
        event.type === 'lease.fail' &&
        (event.kind === 'provider' || event.kind === 'aborted') &&
        context.health.probeSeq !== 0 &&
        event.seq === context.health.probeSeq,
      grantSpendsBudget: ({ context, event }) =>
        event.type === 'lease.grant' &&
        context.settings.budget !== null &&
        context.budget !== null &&
        budgetReadyAt(
          context.settings.budget,
          chargeGrant(context.settings.budget, context.budget, deps.now(), event.tokens),
        ) > deps.now(),
      successRests: ({ context, event }) => {
        if (event.type !== 'lease.release') return false;
        if (event.restMs !== undefined && event.restMs > 0) return true;
        const limits = context.settings.budget;
        if (!limits || !context.budget || event.tokenDelta <= 0) return false;
        return (
          budgetReadyAt(limits, reconcileTokens(limits, context.budget, deps.now(), event.tokenDelta)) >
          deps.now()
        );
      },
      // The call used fewer tokens than reserved while the key rests for exactly that budget: the
      // refund moves the rest's end forward (it is the only rest that may shorten: the budget's own).
      refundShortensBudgetRest: ({ context, event }) => {
        const limits = context.settings.budget;
        if (event.type !== 'lease.release' || event.tokenDelta >= 0 || !limits || !context.budget)
          return false;
        const health = context.health;
        return (
          health.reason === 'budget' &&
          health.cooldownUntil <= budgetClearAt(context) &&
          budgetReadyAt(limits, reconcileTokens(limits, context.budget, deps.now(), event.tokenDelta)) <
            health.cooldownUntil
        );
      },
      reachesMaxFailures: ({ context }) =>
        context.health.consecutiveFailures + 1 >= context.settings.maxFailures,
      isProbeOutcome: ({ context, event }) =>
        event.type !== 'lease.grant' &&
        'seq' in event &&
        context.health.probeSeq !== 0 &&
        event.seq === context.health.probeSeq,
      isDrained: ({ context }) => context.health.draining && context.inFlight <= 0,
      isDraining: ({ context }) => context.health.draining,
      isDead: ({ context }) => context.health.reason === 'revoked' || context.health.reason === 'disabled',
      isProbing: ({ context }) => recovering(context.health) && context.health.probeSeq !== 0,
      isRecoveryPending: ({ context }) =>
        recovering(context.health) && context.health.recoveryAt > deps.now(),
      isHalfOpen: ({ context }) => recovering(context.health),
      isCoolingDue: ({ context }) => context.health.cooldownUntil > deps.now(),
      isNewsFromElsewhere: ({ context, event }) =>
        event.type === 'key.sync' && externalNews(context.health, event, deps.now()) !== undefined,
      atCapacity: ({ context }) =>
        (context.settings.maxConcurrent !== null && context.inFlight >= context.settings.maxConcurrent) ||
        (context.allowance !== null &&
          (context.allowance.remaining === 0 ||
            (context.allowance.slowCap > 0 &&
              cappedLeases(context.allowance, context.inFlight, context.lastLeaseSeq) >=
                context.allowance.slowCap))),
      // The grant uses up what the key was told remains, fills its slow-start cap, or must wait
      // for its pace: `routing` decides where the key rests.
      grantSpendsAllowance: ({ context }) =>
        context.allowance !== null &&
        (context.allowance.remaining === 1 ||
          context.allowance.gapMs > 0 ||
          (context.allowance.slowCap > 0 &&
            cappedLeases(context.allowance, context.inFlight, context.lastLeaseSeq) + 1 >=
              context.allowance.slowCap)),
      // The grant changes the allowance: what remains, the pace's meter, or an episode's start.
      hasAllowance: ({ context }) => context.allowance !== null && movesAllowance(context.allowance),
      learnsAllowance: ({ event }) => event.type === 'lease.release' && event.allowance !== undefined,
      // The common grant: no budget, allowance or pace to spend, room left under the cap and in
      // the slow-start cap — every guard after it would refuse, so it only saves evaluating
      // them (the acquire hot path).
      grantIsPlain: ({ context }) =>
        context.settings.budget === null &&
        (context.allowance === null ||
          (!movesAllowance(context.allowance) &&
            (context.allowance.slowCap === 0 ||
              cappedLeases(context.allowance, context.inFlight, context.lastLeaseSeq) + 1 <
                context.allowance.slowCap))) &&
        (context.settings.maxConcurrent === null || context.inFlight + 1 < context.settings.maxConcurrent),
      // The common settle: a lease is out, nothing to learn or rest, no budget to reconcile — the
      // guards after it would all refuse (the release hot path).
      settlesPlainly: ({ context, event }) => context.inFlight > 0 && isPlainSuccess(context, event),
      // A success that only frees a slot: no budget, allowance, rest, drain or lapsed deadline for
      // `routing` to weigh, so the key is simply available again (four context copies fewer).
      freesSlotPlainly: ({ context, event }) =>
        isPlainSuccess(context, event) &&
        context.allowance === null &&
        context.health.cooldownUntil === 0 &&
        !context.health.draining,
    },
    delays: {
      cooldownElapsed: ({ context }) => Math.max(0, context.health.cooldownUntil - deps.now()),
      recoveryDue: ({ context }) => Math.max(0, context.health.recoveryAt - deps.now()),
    },
    actions: {
      recordGrant: assign(({ context, event }) => {
        if (event.type !== 'lease.grant') return {};
        const now = event.at ?? deps.now();
        const limits = context.settings.budget;
        return {
          inFlight: context.inFlight + 1,
          lastLeaseSeq: event.seq,
          lastUsedAt: now,
          budget:
            limits && context.budget
              ? chargeGrant(limits, context.budget, now, event.tokens)
              : context.budget,
        };
      }),
      // The grant used up the budget: rest until it is clear (waiters wake exactly then).
      coolForBudget: assign(({ context }) => {
        const health = context.health;
        const clearAt = budgetClearAt(context);
        if (clearAt <= health.cooldownUntil && COOLING_REASONS.has(health.reason)) return {};
        return {
          health: { ...health, cooldownUntil: Math.max(health.cooldownUntil, clearAt), reason: 'budget' },
        };
      }),
      // A success said the quota is used up until a reset, or used more tokens than reserved.
      restAfterSuccess: assign(({ context, event }) => {
        const now = deps.now();
        const restUntil =
          event.type === 'lease.release' && event.restMs !== undefined
            ? countedAt(context, now, event.latencyMs) + event.restMs
            : 0;
        const clearAt = budgetClearAt(context);
        const until = Math.max(restUntil, clearAt);
        if (until <= Math.max(now, context.health.cooldownUntil)) return {};
        return {
          health: {
            ...context.health,
            cooldownUntil: until,
            reason: restUntil >= clearAt ? 'quota' : 'budget',
          },
        };
      }),
      // After recordSuccess reconciled the meters: the budget rest ends when the budget is clear.
      endBudgetRestEarly: assign(({ context }) => ({
        health: { ...context.health, cooldownUntil: Math.max(deps.now(), budgetClearAt(context)) },
      })),
      markProbe: assign(({ context, event }) =>
        event.type === 'lease.grant' ? { health: { ...context.health, probeSeq: event.seq } } : {},
      ),
      recordSuccess: assign(({ context, event }) => {
        const h = context.health;
        return {
          inFlight: context.inFlight - 1,
          allowance:
            event.type === 'lease.release'
              ? credited(context.allowance, event.seq, callStart(deps.now(), event.latencyMs))
              : context.allowance,
          budget: reconciled(context, event, deps.now),
          counts: { ...context.counts, successes: context.counts.successes + 1 },
          // A healthy key's success (the hot path) keeps its health object: nothing to copy.
          health:
            h.consecutiveFailures === 0 && h.rateLimitStreak === 0
              ? h
              : { ...h, consecutiveFailures: 0, rateLimitStreak: 0 },
          latencyEwma: ewma(
            context.latencyEwma,
            event.type === 'lease.release' ? event.latencyMs : undefined,
            context.settings.latencyAlpha,
          ),
        };
      }),
      // A success while exhausted is counted, but only the probe decides recovery.
      countSuccess: assign(({ context, event }) => ({
        inFlight: context.inFlight - 1,
        budget: reconciled(context, event, deps.now),
        counts: { ...context.counts, successes: context.counts.successes + 1 },
        latencyEwma: ewma(
          context.latencyEwma,
          event.type === 'lease.release' ? event.latencyMs : undefined,
          context.settings.latencyAlpha,
        ),
      })),
      countFailure: assign(({ context }) => ({
        inFlight: context.inFlight - 1,
        counts: { ...context.counts, failures: context.counts.failures + 1 },
        health: {
          ...context.health,
          consecutiveFailures: context.health.consecutiveFailures + 1,
          lastPenaltyAt: deps.now(),
        },
      })),
      // The pool judged this 5xx/network error an outage: counted, but not against the key's health.
      // The caller's abort is not even a penalty.
      countProviderError: assign(({ context, event }) => ({
        inFlight: context.inFlight - 1,
        counts: { ...context.counts, failures: context.counts.failures + 1 },
        health:
          event.type === 'lease.fail' && event.kind === 'aborted'
            ? context.health
            : { ...context.health, lastPenaltyAt: deps.now() },
      })),
      releaseProbe: assign(({ context }) => ({ health: { ...context.health, probeSeq: 0 } })),
      // A grant spends what the key was told remains, moves its pace's meter, and (first grant of a
      // learning episode) marks when the key began sending.
      spendAllowance: assign(({ context, event }) => {
        const allowance = context.allowance;
        if (!allowance) return {};
        const now = event.type === 'lease.grant' ? (event.at ?? deps.now()) : deps.now();
        const seq = event.type === 'lease.grant' ? event.seq : context.lastLeaseSeq;
        // Grants are remembered only once an answer has said what remains (see learnAllowance).
        const sent = allowance.sent;
        const tracks = allowance.remaining >= 0;
        const full = tracks && sent.length >= MAX_SENT_SEQS;
        // The one call after a stated reset passed: until an answer says more, it leaves the key as
        // the last answer that said nothing remains did (see `KeyAllowance.zeroResetMs`).
        const probes = allowance.remaining === 1 && allowance.resetAt <= now && allowance.zeroResetMs > 0;
        const fullRest = allowance.resetFrees > 1;
        // A lease sent as a reset passed (within the hundredth of it the key allows for transit):
        // its answer says what that reset freed (see `KeyAllowance.resetFrees`).
        const atReset =
          allowance.freedAt > 0 && now <= allowance.freedAt + resetMarginMs(allowance.zeroResetMs, undefined);
        const resetLeases = allowance.resetLeases;
        return {
          allowance: {
            ...allowance,
            // After calls sent at a reset that replenishes fully, the whole limit is free again after
            // the longest reset any answer stated (at most a full window, or a bucket's refill).
            ...(probes
              ? { resetAt: now + (fullRest ? allowance.longestResetMs : allowance.zeroResetMs) }
              : {}),
            sentLog: !tracks
              ? allowance.sentLog
              : [
                  ...(allowance.sentLog.length >= MAX_SENT_SEQS
                    ? allowance.sentLog.slice(1)
                    : allowance.sentLog),
                  now,
                ],
            resetLeases: !atReset
              ? resetLeases
              : [
                  ...(resetLeases.length >= MAX_RESET_LEASES ? resetLeases.slice(1) : resetLeases),
                  { seq, group: allowance.freedAt },
                ],
            remaining: allowance.remaining > 0 ? allowance.remaining - 1 : allowance.remaining,
            sent: !tracks ? sent : full ? [...sent.slice(1), { seq, at: now }] : [...sent, { seq, at: now }],
            countedTo: full ? (sent[0]?.seq ?? allowance.countedTo) : allowance.countedTo,
            nextAt: allowance.gapMs > 0 ? Math.max(allowance.nextAt, now) + allowance.gapMs : 0,
            since:
              allowance.since === 0 && allowance.gapMs === 0 && allowance.spanMs === 0
                ? now
                : allowance.since,
          },
        };
      }),
      // An answer without headers after the stated reset still shows a slot moved: one more lease,
      // never stuck waiting for headers that do not come.
      creditAllowance: assign(({ context }) => {
        const allowance = context.allowance;
        return allowance && allowance.remaining === 0 && allowance.resetAt <= deps.now()
          ? { allowance: { ...allowance, remaining: 1 } }
          : {};
      }),
      // What the newest answer said remains, less the leases granted after its call (the provider
      // had not counted them). Before the key has heard a count it does not know which leases those
      // are: all those still out come off. An answer older than the one the key last heard is stale.
      // The reset counts from when the provider counted the call, and a hundredth later.
      learnAllowance: assign(({ context, event }) => {
        if (event.type !== 'lease.release' || !event.allowance) return {};
        const prior = context.allowance ?? { ...SLOW_START, slowCap: 0, since: 0 };
        const told = event.allowance;
        const freed = resetLearned(prior, event.seq, told);
        if (event.seq < prior.heardSeq) return freed === prior ? {} : { allowance: freed };
        const grantedAt = prior.sent.find((lease) => lease.seq === event.seq)?.at;
        const knows = prior.remaining >= 0 && event.seq > prior.countedTo && grantedAt !== undefined;
        const later = knows
          ? prior.sent.filter(
              (lease) => lease.seq !== event.seq && (lease.seq > event.seq || lease.at >= grantedAt),
            )
          : [];
        const since = knows ? later.length : context.inFlight;
        // Leases granted at the same instant as the call may have been counted before it: less them
        // all, the answer undercounts by up to that batch. The key's own count (the answer before,
        // less every grant since) bounds what the answer cannot rule out.
        const strictlyLater = knows ? later.filter((lease) => lease.seq > event.seq).length : since;
        const remaining = Math.max(
          0,
          told.remaining - since,
          Math.min(prior.remaining, told.remaining - strictlyLater),
        );
        const statedResetAt =
          countedAt(context, deps.now(), event.latencyMs) +
          told.resetMs +
          resetMarginMs(told.resetMs, event.latencyMs);
        // More leases went out after the call than its answer said remained: they took what it
        // stated, and the slot its reset frees. It cannot say when the key's next slot frees; what
        // the key assumed when it sent them stands until their own answers say more.
        const overtaken = knows && later.length > told.remaining;
        // An answer to a call the key sent others after, saying nothing remains and a slot frees
        // before the reset the key already waits for, tells nothing of the calls sent since: the
        // later reset stands.
        const keeps = remaining === 0 && since > 0 && prior.remaining === 0 && prior.resetAt > statedResetAt;
        const resetAt =
          overtaken || (keeps && !knows) ? Math.max(statedResetAt, prior.resetAt) : statedResetAt;
        // Two answers in a row that said nothing remains: when the later stated a longer reset, the
        // slots they point at freed further apart than the key sent the calls (it sends too fast),
        // one slot apart per call sent in between (see `KeyAllowance.spentResetMs`).
        const spent = told.remaining === 0 && grantedAt !== undefined;
        const slotSpacingMs =
          spent && prior.spentResetMs > 0 && told.resetMs > prior.spentResetMs
            ? (grantedAt + told.resetMs - prior.spentGrantedAt - prior.spentResetMs) /
              Math.max(1, prior.sent.length - later.length)
            : 0;
        // Measured, the spacing holds until a newer measure replaces it: it does not fade.
        const spacingMs = slotSpacingMs > 0 ? slotSpacingMs : prior.slotSpacingMs;
        // A rest for a spent allowance ends when a newer answer says requests and tokens remain, or
        // — a rest the key assumed after its call past a reset — an answer that speaks for it says
        // the next slot frees sooner: that very call's, or an earlier one's whose later calls fit
        // in what it said remained (none of them needed the slot its reset frees).
        const health = context.health;
        const assumed =
          knows &&
          later.length <= told.remaining &&
          health.cooldownUntil === prior.resetAt &&
          resetAt < prior.resetAt;
        const lifts =
          (remaining > 0 ? event.restMs === undefined : assumed) &&
          health.reason === 'quota' &&
          !recovering(health);
        return {
          ...(lifts ? { health: { ...health, cooldownUntil: 0, reason: null } } : {}),
          allowance: {
            ...freed,
            remaining,
            resetAt,
            heardSeq: event.seq,
            zeroResetMs:
              told.remaining === 0
                ? Math.max(
                    told.resetMs + resetMarginMs(told.resetMs, undefined),
                    spacingMs > 0 ? spacingMs + resetMarginMs(spacingMs, undefined) : 0,
                    prior.zeroResetMs * ZERO_RESET_DECAY,
                  )
                : prior.zeroResetMs,
            slotSpacingMs: spacingMs,
            spentGrantedAt: spent ? grantedAt : 0,
            spentResetMs: spent ? told.resetMs : 0,
            sent: later,
            countedTo: knows ? prior.countedTo : context.lastLeaseSeq,
            slowCap: 0,
            gapMs: 0,
            spanMs: 0,
          },
        };
      }),
      blame: assign(({ context }) => ({
        health: { ...context.health, consecutiveFailures: context.health.consecutiveFailures + 1 },
      })),
      // A spend or daily quota is spent: out until the stated reset, or (none stated) half-open
      // probing on the recovery schedule. The key is valid, so failures are not counted.
      spendQuota: assign(({ context, event }) => {
        const now = deps.now();
        const health = context.health;
        const hint = event.type === 'lease.fail' ? event.retryAfterMs : undefined;
        const already = health.reason === 'quota' && health.recoveryAt > 0;
        const base = already
          ? Math.min(context.settings.recoveryMaxDelayMs, Math.max(health.recoveryDelayMs, 1) * 2)
          : context.settings.recoveryInitialDelayMs;
        const until =
          hint !== undefined && Number.isFinite(hint)
            ? now + Math.max(0, hint)
            : now + jittered(base, context.settings.recoveryMaxDelayMs);
        return {
          inFlight: context.inFlight - 1,
          // Settled with `fail`, so counted as the pool counts it: per-key totals add up to the pool's.
          counts: { ...context.counts, failures: context.counts.failures + 1 },
          health: {
            ...health,
            consecutiveFailures: 0,
            lastPenaltyAt: now,
            reason: 'quota',
            recoveryDelayMs: base,
            recoveryAt: Math.max(already ? health.recoveryAt : 0, until, now + 1, health.cooldownUntil),
            cooldownUntil: 0,
            probeSeq: 0,
          },
          // What the key had learned about its pace is stale once it is out: it learns anew.
          allowance: null,
        };
      }),
      markDead: assign(({ context, event }) => ({
        health: {
          ...context.health,
          reason: event.type === 'lease.fail' && event.kind === 'disabled' ? 'disabled' : 'revoked',
          recoveryAt: 0,
          probeSeq: 0,
        },
        allowance: null,
      })),
      // An exhaustion absorbs a pending cooldown: no probe before the cooldown would have ended.
      startRecovery: assign(({ context }) => ({
        health: {
          ...context.health,
          reason: 'failures',
          recoveryDelayMs: context.settings.recoveryInitialDelayMs,
          recoveryAt: Math.max(
            context.health.cooldownUntil,
            deps.now() +
              jittered(context.settings.recoveryInitialDelayMs, context.settings.recoveryMaxDelayMs),
          ),
          cooldownUntil: 0,
          probeSeq: 0,
        },
        allowance: null,
      })),
      backOffRecovery: assign(({ context }) => {
        const health = context.health;
        const base = Math.min(
          context.settings.recoveryMaxDelayMs,
          Math.max(health.recoveryDelayMs, context.settings.recoveryInitialDelayMs) * 2,
        );
        return {
          health: {
            ...health,
            reason: 'failures',
            recoveryDelayMs: base,
            recoveryAt: Math.max(
              health.cooldownUntil,
              deps.now() + jittered(base, context.settings.recoveryMaxDelayMs),
            ),
            cooldownUntil: 0,
            probeSeq: 0,
          },
          allowance: null,
        };
      }),
      endRecovery: assign(({ context }) => ({
        health: {
          ...context.health,
          reason: recovering(context.health) ? null : context.health.reason,
          recoveryAt: 0,
          recoveryDelayMs: 0,
          probeSeq: 0,
          consecutiveFailures: 0,
        },
      })),
      applyRateLimit: assign(({ context, event }) => {
        const now = deps.now();
        const hint = event.type === 'lease.rateLimit' ? event.retryAfterMs : undefined;
        const hinted = hint !== undefined && Number.isFinite(hint);
        // The provider refused the call when it started: its hint counts from there. A late 429 of
        // a call whose wait is already over asks for no rest (and says nothing about this window).
        const startedAt = event.type === 'lease.rateLimit' ? callStart(now, event.latencyMs) : now;
        // The 429s of leases granted before this rest began belong to the same episode: they
        // neither escalate nor extend an unhinted rest (a burst of ten is one rate limit, not ten).
        // A rest for the key's own pace is no episode: a 429 in it begins one (and names it).
        const health = context.health;
        const sameEpisode = !hinted && health.cooldownUntil > now && health.reason === 'rate-limited';
        const learned = context.allowance ?? { ...SLOW_START, slowCap: 0, fromSeq: context.lastLeaseSeq };
        const escalates = !hinted && !sameEpisode;
        const streak = hinted ? 0 : escalates ? health.rateLimitStreak + 1 : health.rateLimitStreak;
        // A paced key told to wait whole seconds (rounded up) may be back a second early: the slot
        // frees within the last second stated, and its pace spaces the calls after it.
        const early = hinted && learned.gapMs > 0 && hint > 0 && hint % WHOLE_SECOND_MS === 0;
        const waitMs = hinted
          ? Math.max(0, startedAt + hint - (early ? WHOLE_SECOND_MS - 1 : 0) - now)
          : escalates
            ? Math.min(context.settings.defaultCooldownMs, FIRST_ESCALATION_MS * 2 ** (streak - 1))
            : 0;
        const beginsEpisode = !(health.cooldownUntil > now && health.reason === 'rate-limited');
        // What the key got through before this 429, and when it says (or, unhinted, the rest
        // assumes) a slot frees, sets or widens the key's pace (see learnedPace). A key that knew
        // nothing starts learning now. What answers said remains is spent: after the rest, one call.
        const taught =
          event.type === 'lease.rateLimit' && (hinted || !sameEpisode)
            ? learnedPace(
                learned,
                event.seq,
                hinted ? startedAt + hint - (early ? WHOLE_SECOND_MS - 1 : 0) : now + waitMs,
                hinted ? hint : undefined,
                context.lastLeaseSeq,
                startedAt,
              )
            : learned;
        const restMs =
          escalates && awaitsFreedSlot(taught) && taught.got > 0
            ? Math.min(waitMs, Math.max(1, (now - taught.since) * PROBE_REST_FRACTION))
            : waitMs;
        // Cooldowns extend, never shorten: a short hint must not erase a long one.
        const cooldownUntil = Math.max(health.cooldownUntil, now + restMs);
        const cooling = cooldownUntil > now;
        // A 429 says a reset freed less than the key sent at it: one call when the next passes, until
        // answers to calls sent at a newer one say more (those to older ones no longer count).
        const refused = {
          ...taught,
          resetFrees: 1,
          fullResets: 0,
          resetGroup: Math.max(taught.resetGroup, taught.freedAt),
          resetLeases: taught.resetLeases.filter(
            (lease) => event.type !== 'lease.rateLimit' || lease.seq !== event.seq,
          ),
        };
        const allowance =
          cooling && refused.remaining > 0 ? { ...refused, remaining: 0, resetAt: cooldownUntil } : refused;
        return {
          inFlight: context.inFlight - 1,
          counts: { ...context.counts, rateLimits: context.counts.rateLimits + 1 },
          health: {
            ...health,
            consecutiveFailures: 0,
            rateLimitStreak: streak,
            lastPenaltyAt: now,
            cooldownUntil,
            reason:
              cooling &&
              (!COOLING_REASONS.has(health.reason) || health.reason === 'paced' || (hinted && beginsEpisode))
                ? 'rate-limited'
                : health.reason,
          },
          allowance,
        };
      }),
      countRateLimit: assign(({ context }) => ({
        inFlight: context.inFlight - 1,
        counts: { ...context.counts, rateLimits: context.counts.rateLimits + 1 },
        health: { ...context.health, lastPenaltyAt: deps.now() },
      })),
      // The timer firing *is* the deadline passing: clear it rather than re-reading the clock, so the
      // outcome does not depend on timer precision (and model traversal, which freezes time, agrees).
      endCooldown: assign(({ context }) => cooldownEnded(context)),
      // A settle can reach `routing` after the deadline but before the timer fired (a real timer is
      // late; a timer due at the same instant may run first): end the rest as the timer would have,
      // or the key leaves `cooling` with a stale deadline and its reason (`available`, `budget`).
      endLapsedCooldown: assign(({ context }) => {
        const now = deps.now();
        const until = context.health.cooldownUntil;
        return until !== 0 && until <= now ? cooldownEnded(context) : {};
      }),
      // Where the allowance leaves the key: resting until the reset its answers stated once what
      // they said remains is spent (a timer), or — the reset passed, nothing out to answer — one
      // more call; resting until its pace's next slot.
      settleAllowance: assign(({ context }) => {
        const allowance = context.allowance;
        if (!allowance) return {};
        const now = deps.now();
        const spent = allowance.remaining === 0;
        if (spent && allowance.resetAt !== 0 && allowance.resetAt <= now) {
          return {
            allowance: {
              ...allowance,
              remaining: freedByReset(allowance, allowance.resetAt),
              resetAt: 0,
              freedAt: allowance.resetAt,
            },
          };
        }
        const openAt = Math.max(spent ? allowance.resetAt : 0, allowance.gapMs > 0 ? allowance.nextAt : 0);
        const health = context.health;
        if (
          openAt <= now ||
          recovering(health) ||
          DEAD_REASONS.has(health.reason) ||
          health.cooldownUntil >= openAt
        ) {
          return {};
        }
        return {
          health: {
            ...health,
            cooldownUntil: openAt,
            reason: COOLING_REASONS.has(health.reason)
              ? health.reason
              : spent && allowance.resetAt >= openAt
                ? 'quota'
                : 'paced',
          },
        };
      }),
      // Drain and penalty time stay: a reset vouches for the key's health, not for its removal.
      clearHealth: assign(({ context }) => ({
        allowance: null,
        health: {
          ...context.health,
          consecutiveFailures: 0,
          rateLimitStreak: 0,
          cooldownUntil: 0,
          reason: null,
          recoveryAt: 0,
          recoveryDelayMs: 0,
          probeSeq: 0,
        },
      })),
      markDraining: assign(({ context }) => ({ health: { ...context.health, draining: true } })),
      // An exhaustion or revocation replaces the reason while a cooldown may still be pending; when
      // the key comes back into that cooldown, it is a rate limit's (the only source of cooldowns
      // besides budgets and quotas, which set their own reason).
      labelCooldown: assign(({ context }) =>
        COOLING_REASONS.has(context.health.reason)
          ? {}
          : { health: { ...context.health, reason: 'rate-limited' } },
      ),
      // The operator vouches for the key again: revocation and failure history go, a drain is
      // cancelled; a provider-imposed cooldown stays (the provider said so).
      revive: assign(({ context }) => {
        const health = context.health;
        return {
          health: {
            ...health,
            reason:
              COOLING_REASONS.has(health.reason) && !recovering(health) && health.cooldownUntil > deps.now()
                ? health.reason
                : null,
            recoveryAt: 0,
            recoveryDelayMs: 0,
            probeSeq: 0,
            consecutiveFailures: 0,
            draining: false,
          },
        };
      }),
      adoptExternalState: assign(({ context, event }) => {
        const news = event.type === 'key.sync' ? externalNews(context.health, event, deps.now()) : undefined;
        return news ? { health: { ...context.health, ...news } } : {};
      }),
      notifyReady: sendParent(({ context }) => ({ type: 'key.ready', keyId: context.keyId })),
      notifyDrained: sendParent(({ context }) => ({ type: 'key.drained', keyId: context.keyId })),
    },
  }).createMachine({
    id: 'key',
    description: 'One API key: leases, health, cooldowns and half-open recovery.',
    context: ({ input }) => {
      const restored = input.restored;
      const health = restored?.health;
      const cooldownUntil = health?.cooldownUntil ?? 0;
      return {
        keyId: input.keyId,
        order: input.order,
        settings: input.settings,
        inFlight: restored?.inFlight ?? 0,
        counts: restored?.counts ?? { successes: 0, failures: 0, rateLimits: 0 },
        latencyEwma: restored?.latencyEwma ?? null,
        lastLeaseSeq: restored?.lastLeaseSeq ?? 0,
        lastUsedAt: restored?.lastUsedAt ?? 0,
        budget: input.settings.budget ? (restored?.budget ?? { requestsAt: 0, tokensAt: 0, dayAt: 0 }) : null,
        // A key with no history starts slowly; a restored one knows its provider already.
        allowance: (restored?.counts?.successes ?? 0) > 0 ? null : SLOW_START,
        // Field by field: a crashed key's context carries its probe and drain, which a new actor does not.
        health: {
          consecutiveFailures: health?.consecutiveFailures ?? 0,
          rateLimitStreak: health?.rateLimitStreak ?? 0,
          cooldownUntil,
          // A cooldown that ended while the process was down leaves no reason behind.
          reason:
            COOLING_REASONS.has(health?.reason ?? null) && cooldownUntil <= deps.now()
              ? null
              : (health?.reason ?? null),
          recoveryAt: health?.recoveryAt ?? 0,
          recoveryDelayMs: health?.recoveryDelayMs ?? 0,
          probeSeq: 0,
          draining: false,
          lastPenaltyAt: health?.lastPenaltyAt ?? 0,
        },
      };
    },
    initial: 'routing',
    on: {
      // A grant only reaches an eligible key; should one race in anyway it is still counted,
      // because `inFlight` must always equal the unsettled leases.
      'lease.grant': { actions: 'recordGrant' },
      'lease.release': [{ guard: 'noLeaseOut' }, { actions: 'countSuccess' }],
      'lease.fail': [
        { guard: 'noLeaseOut' },
        { guard: 'isRevocation', target: '#key.exhausted.dead', actions: ['countFailure', 'markDead'] },
        { guard: 'isQuotaSpent', target: '#key.exhausted.failing', actions: 'spendQuota' },
        { guard: 'isOutageError', actions: 'countProviderError' },
        { actions: 'countFailure' },
      ],
      'lease.rateLimit': [{ guard: 'noLeaseOut' }, { target: '#key.routing', actions: 'applyRateLimit' }],
      'key.blame': [
        {
          guard: 'reachesMaxFailures',
          target: '#key.exhausted.failing',
          actions: ['blame', 'startRecovery'],
        },
        { actions: 'blame' },
      ],
      'key.reset': { target: '#key.routing', actions: 'clearHealth' },
      'key.readd': { target: '#key.routing', actions: 'revive' },
      'key.drain': { target: '#key.routing', actions: 'markDraining' },
      'key.sync': { guard: 'isNewsFromElsewhere', target: '#key.routing', actions: 'adoptExternalState' },
    },
    states: {
      routing: {
        description: 'Transient: derives the state from context (start, restore, reset, settle).',
        entry: ['endLapsedCooldown', 'settleAllowance'],
        always: [
          { guard: 'isDrained', target: 'drained' },
          { guard: 'isDraining', target: 'draining' },
          { guard: 'isDead', target: 'exhausted.dead' },
          { guard: 'isProbing', target: 'exhausted.probing' },
          { guard: 'isRecoveryPending', target: 'exhausted.failing' },
          { guard: 'isHalfOpen', target: 'exhausted.probeReady' },
          { guard: 'isCoolingDue', target: 'cooling' },
          { guard: 'atCapacity', target: 'busy' },
          { target: 'available' },
        ],
      },
      available: {
        description: 'May be leased now: healthy, under its concurrency cap, within its budget.',
        entry: 'notifyReady',
        on: {
          'lease.grant': [
            { guard: 'grantIsPlain', actions: 'recordGrant' },
            { guard: 'grantSpendsBudget', target: 'routing', actions: ['recordGrant', 'coolForBudget'] },
            {
              guard: 'grantSpendsAllowance',
              target: 'routing',
              actions: ['recordGrant', 'spendAllowance'],
            },
            { guard: 'grantFillsCapacity', target: 'busy', actions: 'recordGrant' },
            // Still allowance left: tell the pool, which grants to such a key one lease per step.
            { guard: 'hasAllowance', actions: ['recordGrant', 'spendAllowance', 'notifyReady'] },
            { actions: 'recordGrant' },
          ],
          'lease.release': releaseWhileHealthy,
          'lease.fail': failWhileHealthy,
        },
      },
      busy: {
        description:
          'At its concurrency cap (maxConcurrent, or its slow-start cap), or waiting for an answer to say more remains; a settle frees a slot.',
        on: {
          'lease.release': [
            { guard: 'noLeaseOut' },
            // The common hand-off: nothing to learn, pace or rest — straight back to available.
            { guard: 'freesSlotPlainly', target: 'available', actions: 'recordSuccess' },
            {
              guard: 'learnsAllowance',
              target: 'routing',
              actions: ['recordSuccess', 'learnAllowance', 'restAfterSuccess'],
            },
            { guard: 'successRests', target: 'routing', actions: ['recordSuccess', 'restAfterSuccess'] },
            { target: 'routing', actions: ['recordSuccess', 'creditAllowance'] },
          ],
          'lease.fail': [
            { guard: 'noLeaseOut' },
            { guard: 'isRevocation', target: 'exhausted.dead', actions: ['countFailure', 'markDead'] },
            { guard: 'isQuotaSpent', target: 'exhausted.failing', actions: 'spendQuota' },
            { guard: 'isOutageError', target: 'routing', actions: ['countProviderError', 'creditAllowance'] },
            {
              guard: 'reachesMaxFailures',
              target: 'exhausted.failing',
              actions: ['countFailure', 'startRecovery'],
            },
            { target: 'routing', actions: ['countFailure', 'creditAllowance'] },
          ],
        },
      },
      cooling: {
        description:
          'Resting until cooldownUntil (rate-limited, budget, quota, or paced at a learned pace). Never polled.',
        entry: 'labelCooldown',
        after: { cooldownElapsed: { target: 'routing', actions: 'endCooldown' } },
        on: {
          'lease.release': releaseWhileHealthy,
          'lease.fail': failWhileHealthy,
        },
      },
      exhausted: {
        description:
          'Failing or out of quota (half-open recovery with one probe), or dead (revoked, disabled).',
        initial: 'failing',
        on: {
          // Already out: a late verdict on an old error changes nothing.
          'key.blame': {},
          // A rate limit proves the key authenticates: it is valid, only throttled.
          'lease.rateLimit': [
            { guard: 'noLeaseOut' },
            { target: '#key.routing', actions: ['applyRateLimit', 'endRecovery'] },
          ],
        },
        states: {
          failing: {
            description:
              'Waiting for recoveryAt (a recovery delay, or the stated quota reset) before a probe.',
            after: { recoveryDue: { target: 'probeReady' } },
          },
          probeReady: {
            description: 'Half-open: admits exactly one probe lease.',
            entry: 'notifyReady',
            on: { 'lease.grant': { target: 'probing', actions: ['recordGrant', 'markProbe'] } },
          },
          probing: {
            description: 'The probe is out; its outcome decides recovery.',
            on: {
              'lease.release': [
                { guard: 'noLeaseOut' },
                {
                  guard: 'isProbeOutcome',
                  target: '#key.routing',
                  actions: ['recordSuccess', 'endRecovery', 'restAfterSuccess'],
                },
                { actions: 'countSuccess' },
              ],
              'lease.fail': [
                { guard: 'noLeaseOut' },
                { guard: 'isRevocation', target: 'dead', actions: ['countFailure', 'markDead'] },
                { guard: 'isQuotaSpent', target: 'failing', actions: 'spendQuota' },
                // An outage says nothing about this key: admit another probe later.
                {
                  guard: 'isProbeOutage',
                  target: 'probeReady',
                  actions: ['countProviderError', 'releaseProbe'],
                },
                { guard: 'isOutageError', actions: 'countProviderError' },
                { guard: 'isProbeOutcome', target: 'failing', actions: ['countFailure', 'backOffRecovery'] },
                { actions: 'countFailure' },
              ],
            },
          },
          dead: {
            description: 'Revoked or disabled: leaves only through resetKey or addKey.',
            on: {
              'lease.fail': [{ guard: 'noLeaseOut' }, { actions: 'countFailure' }],
              'lease.rateLimit': [{ guard: 'noLeaseOut' }, { actions: 'countRateLimit' }],
            },
          },
        },
      },
      draining: {
        description: 'Removed while leases are out: takes no new lease, stops when the last settles.',
        on: {
          'lease.release': [{ guard: 'noLeaseOut' }, { target: 'routing', actions: 'recordSuccess' }],
          'lease.fail': [{ guard: 'noLeaseOut' }, { target: 'routing', actions: 'countFailure' }],
          'lease.rateLimit': [{ guard: 'noLeaseOut' }, { target: 'routing', actions: 'countRateLimit' }],
          'key.reset': {},
          'key.readd': { target: 'routing', actions: 'revive' },
          'key.drain': {},
          'key.sync': {},
          'key.blame': {},
        },
      },
      drained: {
        description: 'Removed and idle; the pool stops the actor.',
        type: 'final',
        entry: 'notifyDrained',
      },
    },
  });
}

/** The key machine built on the system clock, for inspection, Stately import and diagrams. */
export const keyMachine = createKeyMachine({ now: () => systemClock.now(), random: Math.random });

export type KeyMachine = ReturnType<typeof createKeyMachine>;
