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
} from './key.types.js';

const COOLING_REASONS: ReadonlySet<KeyReason | null> = new Set(['rate-limited', 'budget', 'quota']);

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
 * A new key takes at most this many leases at once until its first answer says more (headers, a
 * 429) or it has proven itself: the window grows by one per success, like TCP's slow start with an
 * initial window of 10 (RFC 6928), and is dropped at SLOW_START_DONE.
 */
const SLOW_START_WINDOW = 10;
const SLOW_START_DONE = 1_000;

function inSlowStart(allowance: KeyContext['allowance']): boolean {
  return allowance !== null && allowance.windowMs < 0;
}

/** Knows what a window admits and how long it lasts: sends a window, then rests (see `KeyAllowance`). */
function isPaced(allowance: KeyContext['allowance']): boolean {
  return allowance !== null && allowance.perWindow > 0 && allowance.windowMs > 0;
}

/** A new key's slow-start window: counts its successes from the first lease, in case a 429 asks what it got through. */
const SLOW_START: KeyAllowance = {
  remaining: SLOW_START_WINDOW,
  resetAt: 0,
  perWindow: 0,
  windowMs: -1,
  seq: 0,
  admitted: 0,
  learnFrom: -1,
  learnTo: -1,
  learned: 0,
  refusedSeq: 0,
  slackMs: 0,
};

/**
 * The allowance after the success of lease `seq`: a slow-start window widens by one (until it is
 * dropped); a success of the current window counts as admitted; a success of the window a 429 episode
 * learns from — however late it answers — raises what a window admits, and the open window with it.
 */
function credited(allowance: KeyContext['allowance'], seq: number): KeyContext['allowance'] {
  if (allowance === null) return null;
  const admitted = seq > allowance.seq ? allowance.admitted + 1 : allowance.admitted;
  if (inSlowStart(allowance)) {
    const remaining = allowance.remaining + 1;
    return remaining >= SLOW_START_DONE ? null : { ...allowance, remaining, admitted };
  }
  const learning =
    allowance.learnFrom >= 0 &&
    seq > allowance.learnFrom &&
    (allowance.learnTo < 0 || seq <= allowance.learnTo);
  if (!learning) return admitted === allowance.admitted ? allowance : { ...allowance, admitted };
  const learned = allowance.learned + 1;
  const rises = allowance.learnTo >= 0 && learned > allowance.perWindow;
  return {
    ...allowance,
    admitted,
    learned,
    // Got through after an earlier lease of its window was refused: the window opened too early.
    refusedSeq: allowance.learnTo < 0 && seq > allowance.refusedSeq ? -1 : allowance.refusedSeq,
    perWindow: rises ? learned : allowance.perWindow,
    remaining: rises ? allowance.remaining + 1 : allowance.remaining,
  };
}

/**
 * Calls reach the provider a little later than they are granted, and not all equally late: after a
 * paced window's last grant the key waits its window plus this much (a hundredth, at least 1 ms), so
 * that the next window's first call cannot overtake the previous one's last in the provider's window.
 */
function windowSlackMs(allowance: KeyAllowance): number {
  return Math.max(allowance.slackMs, 1, Math.ceil(allowance.windowMs / 100));
}

/** When a spent paced window may be followed by a full one: every call of it has left the provider's window. */
function nextWindowAt(context: KeyContext, allowance: KeyAllowance): number {
  return Math.max(allowance.resetAt, context.lastUsedAt + allowance.windowMs + windowSlackMs(allowance));
}

/** Recovery delays are spread ±20 % so that keys exhausted together do not probe together. */
const RECOVERY_JITTER = 0.2;

/**
 * The allowance when its window (or the rest that used it up) ends. A paced allowance opens a full
 * window. After a 429 episode's rest, a window admits what the window that drew the 429 got through
 * (at least one: its late answers raise it) — unless that window opened too early rather than too
 * full (nothing got through, or something after the refusal): then what it admits stands, and the
 * key waits longer after a window's last grant. A header-clocked one admits one lease, whose
 * response says how much more.
 */
function nextAllowanceWindow(context: KeyContext): Pick<KeyContext, 'allowance'> {
  const learned = context.allowance;
  if (!learned || inSlowStart(learned)) return { allowance: learned };
  const resting = learned.learnFrom >= 0 && learned.learnTo < 0;
  if (learned.windowMs > 0 && (learned.perWindow > 0 || resting)) {
    const early = resting && learned.perWindow > 0 && (learned.refusedSeq < 0 || learned.learned === 0);
    // Nothing got through and nothing is left to answer: there is no pace to learn.
    if (resting && !early && learned.learned === 0 && context.inFlight <= 0) return { allowance: null };
    const perWindow = resting && !early ? Math.max(1, learned.learned) : learned.perWindow;
    return {
      allowance: {
        ...learned,
        remaining: perWindow,
        resetAt: 0,
        perWindow,
        seq: context.lastLeaseSeq,
        admitted: 0,
        learnTo: resting ? context.lastLeaseSeq : learned.learnTo,
        slackMs: early ? Math.min(learned.windowMs / 4, 2 * windowSlackMs(learned)) : learned.slackMs,
      },
    };
  }
  if (learned.remaining <= 0)
    return { allowance: { ...learned, remaining: 1, resetAt: 0, seq: context.lastLeaseSeq, admitted: 0 } };
  return { allowance: learned };
}

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
 * What a key's context becomes when its cooldown ends at `now`: no deadline, no cooling reason. A
 * spent allowance rested for its next window (settleAllowance made the cooldown last that long);
 * a paced one whose window's calls have all left the provider's window starts afresh.
 */
function cooldownEnded(context: KeyContext, now: number): Partial<KeyContext> {
  const allowance = context.allowance;
  const health = context.health;
  return {
    ...(allowance &&
    (allowance.remaining <= 0 || (isPaced(allowance) && nextWindowAt(context, allowance) <= now))
      ? nextAllowanceWindow(context)
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
          (inSlowStart(context.allowance)
            ? context.inFlight >= context.allowance.remaining
            : context.allowance.remaining <= 0)),
      grantSpendsAllowance: ({ context }) =>
        context.allowance !== null &&
        (inSlowStart(context.allowance)
          ? context.inFlight + 1 >= context.allowance.remaining
          : context.allowance.remaining <= 1),
      // A counted allowance (not the slow-start window, which works like a concurrency cap).
      hasAllowance: ({ context }) => context.allowance !== null && !inSlowStart(context.allowance),
      learnsAllowance: ({ event }) => event.type === 'lease.release' && event.allowance !== undefined,
      // The common grant: no budget or counted allowance to spend, room left under the cap and in
      // the slow-start window — every guard after it would refuse, so it only saves evaluating
      // them (the acquire hot path).
      grantIsPlain: ({ context }) =>
        context.settings.budget === null &&
        (context.allowance === null ||
          (inSlowStart(context.allowance) && context.inFlight + 1 < context.allowance.remaining)) &&
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
          allowance: credited(context.allowance, event.type === 'lease.release' ? event.seq : 0),
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
      spendAllowance: assign(({ context }) =>
        context.allowance && !inSlowStart(context.allowance)
          ? { allowance: { ...context.allowance, remaining: context.allowance.remaining - 1 } }
          : {},
      ),
      // A response without headers still shows a header-clocked window moved: one more lease, never stuck.
      creditAllowance: assign(({ context }) => {
        const allowance = context.allowance;
        // A paced window opens when its time has come (settleAllowance), never one lease early.
        if (!allowance || inSlowStart(allowance) || isPaced(allowance)) return {};
        return allowance.remaining <= 0 && allowance.resetAt <= deps.now()
          ? { allowance: { ...allowance, remaining: 1, resetAt: 0 } }
          : {};
      }),
      // Leases still out were granted after the provider counted this response's `remaining`, so
      // they come off it: the estimate errs low, never into a 429. The limit (or, unstated, at least
      // remaining + 1) is what a window admits; the longest reset seen is how long a window lasts.
      learnAllowance: assign(({ context, event }) => {
        if (event.type !== 'lease.release' || !event.allowance) return {};
        const told = event.allowance;
        const prior = context.allowance;
        const known = prior !== null && !inSlowStart(prior) ? prior : null;
        const counted = told.remaining - context.inFlight;
        // A key paced by an rpm budget spreads its calls over the window instead of sending them in
        // a burst, so resting a whole window after a window's last grant would halve its rate: its
        // headers stay the clock (rest until the stated reset, then one lease whose answer says
        // how many more).
        const spread = context.settings.budget !== null && context.settings.budget.rpm !== null;
        return {
          allowance: {
            remaining: known && isPaced(known) ? Math.min(known.remaining, counted) : counted,
            resetAt: countedAt(context, deps.now(), event.latencyMs) + told.resetMs,
            perWindow: told.limit ?? Math.max(known?.perWindow ?? 0, told.remaining + 1),
            windowMs: spread ? (known?.windowMs ?? 0) : Math.max(known?.windowMs ?? 0, told.resetMs),
            seq: prior?.seq ?? context.lastLeaseSeq,
            admitted: prior?.admitted ?? 0,
            learnFrom: known?.learnFrom ?? -1,
            learnTo: known?.learnTo ?? -1,
            learned: known?.learned ?? 0,
            refusedSeq: known?.refusedSeq ?? 0,
            slackMs: known?.slackMs ?? 0,
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
        const health = context.health;
        const sameEpisode = !hinted && health.cooldownUntil > now && health.reason === 'rate-limited';
        const streak = hinted ? 0 : sameEpisode ? health.rateLimitStreak : health.rateLimitStreak + 1;
        const waitMs = hinted
          ? Math.max(0, startedAt + hint - now)
          : sameEpisode
            ? 0
            : Math.min(context.settings.defaultCooldownMs, FIRST_ESCALATION_MS * 2 ** (streak - 1));
        // Cooldowns extend, never shorten: a short hint must not erase a long one.
        const cooldownUntil = Math.max(health.cooldownUntil, now + waitMs);
        const cooling = cooldownUntil > now;
        // A hinted 429 that begins an episode says how long a window of this key lasts; what a window
        // admits is what the window that drew it (the leases since it opened) got through, counted
        // as its answers come in, however late (see credited, nextAllowanceWindow).
        const beginsEpisode = !(health.cooldownUntil > now && health.reason === 'rate-limited');
        const learned = context.allowance;
        const allowance: KeyContext['allowance'] =
          hinted && beginsEpisode && waitMs > 0
            ? {
                remaining: 0,
                resetAt: cooldownUntil,
                // A paced key keeps what a window admits until the episode shows whether its window
                // was too full (then it learns anew) or opened too early.
                perWindow:
                  learned && isPaced(learned) && event.type === 'lease.rateLimit' && event.seq > learned.seq
                    ? learned.perWindow
                    : 0,
                windowMs: Math.max(learned?.windowMs ?? 0, hint),
                seq: learned?.seq ?? 0,
                admitted: learned?.admitted ?? 0,
                learnFrom: learned?.seq ?? 0,
                learnTo: -1,
                learned: learned?.admitted ?? 0,
                refusedSeq: event.type === 'lease.rateLimit' ? event.seq : 0,
                slackMs: learned?.slackMs ?? 0,
              }
            : learned;
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
              cooling && (!COOLING_REASONS.has(health.reason) || (hinted && beginsEpisode))
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
      endCooldown: assign(({ context }) => cooldownEnded(context, deps.now())),
      // A settle can reach `routing` after the deadline but before the timer fired (a real timer is
      // late; a timer due at the same instant may run first): end the rest as the timer would have,
      // or the key leaves `cooling` with a stale deadline and its reason (`available`, `budget`).
      endLapsedCooldown: assign(({ context }) => {
        const now = deps.now();
        const until = context.health.cooldownUntil;
        return until !== 0 && until <= now ? cooldownEnded(context, now) : {};
      }),
      // Where a used-up allowance leaves the key: resting until its next window (paced) or its reset
      // (a timer), starting a new window once that has passed, or — header-clocked with nothing out
      // to answer — one more.
      settleAllowance: assign(({ context }) => {
        const allowance = context.allowance;
        if (!allowance || allowance.remaining > 0 || inSlowStart(allowance)) return {};
        const paced = isPaced(allowance);
        if (!paced && allowance.resetAt === 0)
          return context.inFlight > 0 ? {} : { allowance: { ...allowance, remaining: 1 } };
        const openAt = paced ? nextWindowAt(context, allowance) : allowance.resetAt;
        if (openAt <= deps.now()) return nextAllowanceWindow(context);
        const health = context.health;
        if (recovering(health) || DEAD_REASONS.has(health.reason) || health.cooldownUntil >= openAt) {
          return {};
        }
        return {
          health: {
            ...health,
            cooldownUntil: openAt,
            reason: COOLING_REASONS.has(health.reason) ? health.reason : 'quota',
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
        description: 'At its concurrency cap; the next settle frees a slot.',
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
        description: 'Resting until cooldownUntil (rate-limited, budget or quota). Never polled.',
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
