import { type ActorRefFrom, assertEvent, enqueueActions, setup } from 'xstate';
import { type Clock, systemClock } from '../clock.js';
import { type KeyChangeListener, type KeyEntry, KeyIndex } from '../pool/key-index.js';
import { ProviderHealth } from '../pool/provider-health.js';
import { leastBusy } from '../pool/strategies/least-busy.js';
import type { Strategy } from '../pool/strategies/strategy.js';
import { WaiterQueue } from '../pool/waiters.js';
import { createKeyMachine, type KeyMachine, stateReason } from './key.machine.js';
import type { KeyInput } from './key.types.js';
import type { LeaseGranted, PoolEmitted, PoolEvent, PoolInput, RejectReason } from './pool.types.js';

/** What a pool machine is built with. One machine serves one pool. */
export interface PoolMachineDeps {
  readonly clock: Clock;
  /** The key machine to spawn (built with the same clock). */
  readonly keyMachine: KeyMachine;
  readonly strategy: Strategy;
  /** Most waiters at once; beyond it acquires are rejected (`queue-full`). */
  readonly maxWaiters: number;
  /** Seed of the strategy's random source (latency strategy). */
  readonly seed: number;
  /**
   * Receives every grant the pool decides, synchronously, before the key actor books it (the
   * `KeyPool` wrapper turns it into a `Lease`). A direct call rather than an emitted event: it is
   * the hot path, and an emit costs as much again as the rest of the pool's step.
   */
  readonly onGrant?: (granted: LeaseGranted) => void;
  /** Told after every change of a key's cached view (events, persistence). */
  readonly onKeyChange?: KeyChangeListener;
  /** Provider-outage detection and pool-wide backoff. Defaults: 2 s window, 250 ms doubling to 1 s. */
  readonly outage?: OutageSettings;
}

/** How the pool tells a provider outage from a bad key, and how long it then backs off as a whole. */
export interface OutageSettings {
  /** How far back pool-wide outcomes count (ms). */
  readonly windowMs: number;
  /** First pool-wide backoff (ms); doubles while the outage lasts. */
  readonly initialBackoffMs: number;
  /** Longest pool-wide backoff (ms): short, so recovery is noticed within about this long. */
  readonly maxBackoffMs: number;
}

export const DEFAULT_OUTAGE: OutageSettings = { windowMs: 2_000, initialBackoffMs: 250, maxBackoffMs: 1_000 };

export interface PoolContext {
  /** Key actors by fingerprint. */
  keys: Record<string, ActorRefFrom<KeyMachine>>;
  /** Next child actor id (numeric strings keep XState's children map fast). */
  nextChildId: number;
  /** Next configured-order position for a key added at runtime. */
  nextOrder: number;
  /** A provider outage the pool is backing off from as a whole, or `null`. */
  outage: { readonly until: number; readonly level: number } | null;
  /** The last outage backoff: a new outage soon after it escalates the backoff. */
  lastOutage: { readonly endedAt: number; readonly level: number } | null;
}

const expireId = (requestId: number): string => `expire-${requestId}`;
const respawnId = (keyId: string): string => `respawn-${keyId}`;

/**
 * A crashed key actor is replaced at once up to this many times in a row; after that each
 * replacement waits, from {@link CRASH_BACKOFF_MS} doubling up to {@link CRASH_MAX_BACKOFF_MS}, so a
 * key that crashes on every start (a broken clock, a bug) can never pin a core in a replace loop.
 */
export const CRASH_IMMEDIATE_REPLACEMENTS = 3;
export const CRASH_BACKOFF_MS = 1_000;
export const CRASH_MAX_BACKOFF_MS = 60_000;
/** Crashes further apart than this (ms) do not count as "in a row". */
const CRASH_WINDOW_MS = 60_000;

/** Per-state and per-`state:reason` key counts, for errors and diagnostics. */
export function countKeyStates(index: KeyIndex): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const entry of index.values()) {
    counts[entry.state] = (counts[entry.state] ?? 0) + 1;
    const reason = stateReason(entry.context, entry.state);
    if (reason !== null) {
      const key = `${entry.state}:${reason}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
  }
  return counts;
}

/**
 * How long until some key can be expected to take a lease: 0 when one can now or may at any
 * moment (a lease on a busy key can settle, a probe can succeed); otherwise the earliest cooldown
 * end or recovery time; `undefined` when no key will ever come back by itself (all revoked).
 */
export function earliestReturnMs(index: KeyIndex, now: number): number | undefined {
  let earliest: number | undefined;
  for (const entry of index.values()) {
    if (!entry.schedulable) continue;
    let wait: number | undefined;
    switch (entry.state) {
      case 'available':
      case 'busy':
        wait = 0;
        break;
      case 'cooling':
        wait = Math.max(0, entry.context.health.cooldownUntil - now);
        break;
      case 'exhausted':
        if (entry.sub === 'failing') wait = Math.max(0, entry.context.health.recoveryAt - now);
        else if (entry.sub === 'probeReady' || entry.sub === 'probing') wait = 0;
        break;
      case 'draining':
        break;
    }
    if (wait !== undefined && (earliest === undefined || wait < earliest)) earliest = wait;
    if (earliest === 0) return 0;
  }
  return earliest;
}

/** When the earliest *timed* return is (cooldown end, recovery), for `retryAfterMs`. */
function timedReturnMs(index: KeyIndex, now: number): number | undefined {
  let earliest: number | undefined;
  for (const entry of index.values()) {
    let at: number | undefined;
    if (entry.state === 'cooling') at = entry.context.health.cooldownUntil;
    else if (entry.sub === 'failing') at = entry.context.health.recoveryAt;
    if (at !== undefined && (earliest === undefined || at < earliest)) earliest = at;
  }
  return earliest === undefined ? undefined : Math.max(0, earliest - now);
}

/**
 * Builds the pool machine: spawns the key actors, runs the strategy over their (cached) snapshots,
 * keeps the waiter queue and grants leases through emitted events. Returns the machine with its
 * runtime (the key index and waiter queue), which the `KeyPool` wrapper reads for snapshots.
 */
export function createPoolMachine(deps: PoolMachineDeps) {
  const { clock, strategy } = deps;
  const outageSettings = deps.outage ?? DEFAULT_OUTAGE;
  const health = new ProviderHealth(outageSettings.windowMs);
  // Provider errors not yet blamed on their key, oldest first.
  const suspects: Array<{ readonly keyId: string; readonly at: number }> = [];
  /**
   * A success of one key whose call started after another key's provider error shows the provider
   * works: that error was the other key's own, and now counts against it. (An error from the same
   * outage as the success's start is never blamed.)
   */
  const blameSuspects = (succeeded: KeyEntry, now: number): void => {
    const startedAfter = now - (succeeded.context.latencyEwma ?? 0);
    while (suspects.length > 0 && (suspects[0] as { at: number }).at < now - outageSettings.windowMs)
      suspects.shift();
    for (let i = 0; i < suspects.length; ) {
      const suspect = suspects[i] as { keyId: string; at: number };
      if (suspect.keyId !== succeeded.keyId && suspect.at < startedAfter) {
        suspects.splice(i, 1);
        index.get(suspect.keyId)?.ref.send({ type: 'key.blame' });
      } else i++;
    }
  };
  // The strategy's memory (cursor, virtual times, random state) is this actor's bookkeeping, like
  // the index: rebuilt from the seed for every pool, never persisted.
  const scheduler = strategy.create(deps.seed);
  const index = new KeyIndex(
    (entry, previous) => {
      if (entry.context.counts.successes > previous.context.counts.successes) {
        const now = clock.now();
        health.recordSuccess(now);
        if (suspects.length > 0) blameSuspects(entry, now);
      }
      deps.onKeyChange?.(entry, previous);
    },
    strategy.schedulable,
    scheduler.tracker,
  );
  const onGrant = deps.onGrant;
  const waiters = new WaiterQueue();
  // Crashes in a row per key, and keys waiting out their respawn backoff (with their last context).
  const crashes = new Map<string, { readonly count: number; readonly at: number }>();
  const respawning = new Map<string, KeyInput>();
  // Grants are numbered in the order they are made (request ids are not: a priority hand-off
  // serves a later request first). Least-busy ties and probe identity rely on this order. It is
  // bookkeeping of this actor instance, never persisted, so it stays out of context.
  let grantSeq = 0;

  /** Books a grant in the index; returns the event for the key and the one for the wrapper. */
  const grant = (entry: KeyEntry, requestId: number, waitedMs: number, tokens: number, at: number) => {
    const probe = entry.probe;
    const seq = ++grantSeq;
    index.noteGrant(entry, seq);
    return {
      toKey: { type: 'lease.grant', seq, tokens, at } as const,
      granted: { requestId, keyId: entry.keyId, probe, seq, waitedMs, at } satisfies LeaseGranted,
    };
  };

  const rejection = (
    requestId: number,
    reason: RejectReason,
    since: number,
    error?: unknown,
  ): PoolEmitted & { type: 'acquire.rejected' } => {
    const now = clock.now();
    return {
      type: 'acquire.rejected',
      requestId,
      reason,
      retryAfterMs: timedReturnMs(index, now),
      counts: countKeyStates(index),
      waitedMs: Math.max(0, now - since),
      ...(error === undefined ? {} : { error }),
    };
  };

  const machine = setup({
    types: {
      context: {} as PoolContext,
      events: {} as PoolEvent,
      input: {} as PoolInput,
      emitted: {} as PoolEmitted,
    },
    actors: { key: deps.keyMachine },
    delays: {
      outageBackoff: ({ context }) => Math.max(0, (context.outage?.until ?? 0) - clock.now()),
    },
    guards: {
      // A built-in strategy always chooses when a key is eligible: the grant cannot be refused.
      grantsAtOnce: ({ context }) => context.outage === null && strategy.total && index.eligible.length > 0,
    },
    actions: {
      // The hot path: a key is free now. One plain action — the owner hears of the grant first
      // (as it would of an emitted event), then the key books it, before this step ends.
      grantAtOnce: ({ event }) => {
        assertEvent(event, 'pool.acquire');
        // One clock read serves the choice, the lease's start and the key's last use.
        const now = clock.now();
        const entry = scheduler.select(index, now) as KeyEntry;
        const { toKey, granted } = grant(entry, event.requestId, 0, event.tokens, now);
        onGrant?.(granted);
        entry.ref.send(toKey);
      },
      acquire: enqueueActions(({ context, event, enqueue }) => {
        assertEvent(event, 'pool.acquire');
        const now = clock.now();
        let entry: KeyEntry | undefined;
        try {
          // While the pool backs off from a provider outage, nobody is granted a key.
          entry = context.outage ? undefined : scheduler.select(index, now);
        } catch (error) {
          enqueue.emit(rejection(event.requestId, 'strategy', now, error));
          return;
        }
        if (entry) {
          const { toKey, granted } = grant(entry, event.requestId, 0, event.tokens, now);
          enqueue(() => onGrant?.(granted));
          enqueue.sendTo(entry.ref, toKey);
          return;
        }
        if (!event.wait) {
          enqueue.emit(rejection(event.requestId, 'unavailable', now));
          return;
        }
        if (waiters.size >= deps.maxWaiters) {
          enqueue.emit(rejection(event.requestId, 'queue-full', now));
          return;
        }
        // Fail fast: nothing can become eligible before the deadline, so waiting is pointless.
        const keysBack = earliestReturnMs(index, now);
        const earliest =
          keysBack === undefined || !context.outage
            ? keysBack
            : Math.max(keysBack, context.outage.until - now);
        if (earliest === undefined || earliest > event.timeoutMs) {
          enqueue.emit(rejection(event.requestId, 'unavailable', now));
          return;
        }
        waiters.push({
          requestId: event.requestId,
          priority: event.priority,
          since: now,
          deadline: now + event.timeoutMs,
          tokens: event.tokens,
        });
        if (Number.isFinite(event.timeoutMs)) {
          enqueue.raise(
            { type: 'pool.expire', requestId: event.requestId },
            { delay: event.timeoutMs, id: expireId(event.requestId) },
          );
        }
        enqueue.emit({
          type: 'acquire.queued',
          requestId: event.requestId,
          priority: event.priority,
          waiting: waiters.size,
        });
      }),
      // A key became able to take a lease: hand it to the waiters, highest priority first.
      serveWaiters: enqueueActions(({ context, event, enqueue }) => {
        if (event.type === 'key.ready') {
          const entry = index.get(event.keyId);
          if (entry) index.refresh(entry);
        }
        if (waiters.size === 0 || context.outage) return;
        const now = clock.now();
        for (let waiter = waiters.peek(); waiter; waiter = waiters.peek()) {
          let entry: KeyEntry | undefined;
          try {
            entry = scheduler.select(index, now);
          } catch (error) {
            waiters.shift();
            if (Number.isFinite(waiter.deadline)) enqueue.cancel(expireId(waiter.requestId));
            enqueue.emit(rejection(waiter.requestId, 'strategy', waiter.since, error));
            continue;
          }
          if (!entry) break;
          waiters.shift();
          if (Number.isFinite(waiter.deadline)) enqueue.cancel(expireId(waiter.requestId));
          const waited = Math.max(0, now - waiter.since);
          const { toKey, granted } = grant(entry, waiter.requestId, waited, waiter.tokens, now);
          enqueue(() => onGrant?.(granted));
          enqueue.sendTo(entry.ref, toKey);
        }
      }),
      // A 5xx, 529 or network error counts against the key only while other keys succeed; when
      // most of the pool fails at once it is the provider, and the pool backs off as a whole
      // instead of exhausting its keys one by one.
      judgeProviderError: enqueueActions(({ context, event, enqueue }) => {
        assertEvent(event, 'pool.providerError');
        const entry = index.get(event.keyId);
        const now = clock.now();
        health.recordError(event.keyId, now);
        const seen = health.view(now);
        let schedulable = 0;
        for (const candidate of index.values())
          if (candidate.schedulable && candidate.state !== 'draining') schedulable++;
        // During a backoff every error is the outage's (leases granted before it still settle).
        const outage =
          context.outage !== null ||
          (seen.errorKeys >= Math.min(2, schedulable) && seen.errors >= seen.successes);
        // Counted now, blamed later: only a success of another key that started after this error
        // proves the provider works and the key does not (see `suspects`).
        if (entry) {
          enqueue.sendTo(entry.ref, {
            type: 'lease.fail',
            seq: event.seq,
            kind: 'provider',
            retryAfterMs: undefined,
          });
        }
        if (!outage) {
          suspects.push({ keyId: event.keyId, at: now });
          return;
        }
        suspects.length = 0;
        if (context.outage) return;
        const last = context.lastOutage;
        const level = last && now - last.endedAt < outageSettings.windowMs ? last.level + 1 : 1;
        const backoff = Math.min(
          outageSettings.maxBackoffMs,
          outageSettings.initialBackoffMs * 2 ** (level - 1),
        );
        const until = now + backoff;
        enqueue.assign({ outage: { until, level } });
        enqueue.emit({ type: 'pool.outage', until, level });
        enqueue.raise({ type: 'pool.outage' });
      }),
      endOutage: enqueueActions(({ context, enqueue }) => {
        if (!context.outage) return;
        enqueue.assign({ outage: null, lastOutage: { endedAt: clock.now(), level: context.outage.level } });
        enqueue.emit({ type: 'pool.outageOver' });
      }),
      // The provider said a quota shared by a group of keys (one project) is spent: they all rest.
      restGroup: enqueueActions(({ event, enqueue }) => {
        assertEvent(event, 'pool.groupRest');
        const source = index.get(event.keyId);
        const group = source?.context.settings.group;
        if (!source || !group) return;
        index.refresh(source);
        const { reason, cooldownUntil, recoveryAt, recoveryDelayMs } = source.context.health;
        for (const entry of index.values()) {
          if (entry === source || entry.context.settings.group !== group) continue;
          enqueue.sendTo(entry.ref, { type: 'key.sync', reason, cooldownUntil, recoveryAt, recoveryDelayMs });
        }
      }),
      expireWaiter: enqueueActions(({ event, enqueue }) => {
        assertEvent(event, 'pool.expire');
        const waiter = waiters.remove(event.requestId);
        if (waiter) enqueue.emit(rejection(waiter.requestId, 'timeout', waiter.since));
      }),
      cancelWaiter: enqueueActions(({ event, enqueue }) => {
        assertEvent(event, 'pool.cancel');
        const waiter = waiters.remove(event.requestId);
        if (!waiter) return;
        if (Number.isFinite(waiter.deadline)) enqueue.cancel(expireId(waiter.requestId));
        enqueue.emit(rejection(waiter.requestId, 'aborted', waiter.since));
      }),
      addKey: enqueueActions(({ context, event, enqueue }) => {
        assertEvent(event, 'pool.addKey');
        const existing = index.get(event.key.keyId);
        if (existing) {
          enqueue.sendTo(existing.ref, { type: 'key.readd' });
          return;
        }
        const childId = String(context.nextChildId);
        const input: KeyInput = { ...event.key, order: context.nextOrder };
        enqueue.assign(({ context: current, spawn }) => {
          const ref = spawn('key', { id: childId, input });
          index.add(input.keyId, childId, ref);
          return {
            keys: { ...current.keys, [input.keyId]: ref },
            nextChildId: current.nextChildId + 1,
            nextOrder: current.nextOrder + 1,
          };
        });
        // Adding is vouching for the key: a stored revocation or failure history does not stick.
        enqueue.sendTo(childId, { type: 'key.readd' });
        enqueue.emit({ type: 'key.added', keyId: input.keyId });
      }),
      removeKey: enqueueActions(({ context, event, enqueue }) => {
        const keyId =
          event.type === 'pool.removeKey' || event.type === 'key.drained' ? event.keyId : undefined;
        const entry = keyId === undefined ? undefined : index.get(keyId);
        if (!entry || keyId === undefined) return;
        if (event.type === 'pool.removeKey' && entry.inFlight > 0) {
          enqueue.sendTo(entry.ref, { type: 'key.drain' });
          enqueue.emit({ type: 'key.draining', keyId });
          return;
        }
        index.remove(keyId);
        enqueue.stopChild(entry.ref);
        const { [keyId]: _removed, ...keys } = context.keys;
        enqueue.assign({ keys });
        enqueue.emit({ type: 'key.removed', keyId });
      }),
      resetKey: enqueueActions(({ event, enqueue }) => {
        assertEvent(event, 'pool.resetKey');
        const entry = index.get(event.keyId);
        if (entry) enqueue.sendTo(entry.ref, { type: 'key.reset' });
      }),
      // One broken key must never take the pool down: replace it with a fresh actor that carries
      // on from its last good context (leases still out included).
      replaceCrashedKey: enqueueActions(({ event, enqueue }) => {
        const childId = event.type.slice('xstate.error.actor.'.length);
        let crashed: KeyEntry | undefined;
        for (const entry of index.values()) if (entry.childId === childId) crashed = entry;
        if (!crashed) return;
        const last = crashed.context;
        index.remove(crashed.keyId);
        enqueue.stopChild(crashed.ref);
        const input: KeyInput = {
          keyId: last.keyId,
          order: last.order,
          settings: last.settings,
          restored: { ...last },
        };
        enqueue.emit({
          type: 'key.crashed',
          keyId: last.keyId,
          error: 'error' in event ? event.error : undefined,
        });
        const now = clock.now();
        const previous = crashes.get(last.keyId);
        const count = previous && now - previous.at < CRASH_WINDOW_MS ? previous.count + 1 : 1;
        crashes.set(last.keyId, { count, at: now });
        respawning.set(last.keyId, input);
        const respawn = { type: 'pool.respawnKey', keyId: last.keyId } as const;
        if (count <= CRASH_IMMEDIATE_REPLACEMENTS) {
          enqueue.raise(respawn);
          return;
        }
        // Out of the pool until its backoff ends: nothing is granted on it meanwhile.
        const level = count - CRASH_IMMEDIATE_REPLACEMENTS - 1;
        const delay = Math.min(CRASH_MAX_BACKOFF_MS, CRASH_BACKOFF_MS * 2 ** Math.min(level, 30));
        enqueue.raise(respawn, { delay, id: respawnId(last.keyId) });
      }),
      respawnKey: enqueueActions(({ context, event, enqueue }) => {
        assertEvent(event, 'pool.respawnKey');
        const input = respawning.get(event.keyId);
        respawning.delete(event.keyId);
        // Re-added meanwhile (`addKey`): that actor stands.
        if (!input || index.get(event.keyId)) return;
        const childId = String(context.nextChildId);
        enqueue.assign(({ context: current, spawn }) => {
          const ref = spawn('key', { id: childId, input });
          index.add(input.keyId, childId, ref);
          return { keys: { ...current.keys, [input.keyId]: ref }, nextChildId: current.nextChildId + 1 };
        });
      }),
      // XState copies the children map on every stop; deleting the highest numeric id first keeps
      // those copies fast (front-first deletes turn the map into a dictionary: 10 s at 10 000 keys).
      stopAllKeys: enqueueActions(({ context, enqueue, self }) => {
        const childIds = Object.keys(self.getSnapshot().children).sort((a, b) => Number(b) - Number(a));
        for (const childId of childIds) enqueue.stopChild(childId);
        if (Object.keys(context.keys).length > 0) enqueue.assign({ keys: {} });
      }),
      rejectAllWaiters: enqueueActions(({ enqueue }) => {
        for (const waiter of waiters.drain()) {
          if (Number.isFinite(waiter.deadline)) enqueue.cancel(expireId(waiter.requestId));
          enqueue.emit(rejection(waiter.requestId, 'closed', waiter.since));
        }
      }),
    },
  }).createMachine({
    id: 'pool',
    description: 'Supervises the key actors, schedules leases and keeps the waiter queue.',
    context: ({ input, spawn }) => {
      const keys: PoolContext['keys'] = {};
      // All initial keys in one go: spawning one per event copies the children map each time.
      input.keys.forEach((key, i) => {
        const childId = String(i);
        const ref = spawn('key', { id: childId, input: key });
        keys[key.keyId] = ref;
        index.add(key.keyId, childId, ref);
      });
      const maxOrder = input.keys.reduce((max, key) => Math.max(max, key.order), -1);
      return {
        keys,
        nextChildId: input.keys.length,
        nextOrder: maxOrder + 1,
        outage: null,
        lastOutage: null,
      };
    },
    initial: 'running',
    on: {
      'pool.expire': { actions: 'expireWaiter' },
      'pool.cancel': { actions: 'cancelWaiter' },
      // No serving here: the new key is not started yet; its own key.ready wakes the waiters.
      'pool.addKey': { actions: 'addKey' },
      'pool.removeKey': { actions: 'removeKey' },
      'key.drained': { actions: 'removeKey' },
      'pool.resetKey': { actions: 'resetKey' },
      'pool.providerError': { actions: 'judgeProviderError' },
      'pool.groupRest': { actions: 'restGroup' },
      'xstate.error.actor.*': { actions: 'replaceCrashedKey' },
      'pool.respawnKey': { actions: 'respawnKey' },
      'pool.close': { target: '.closed', actions: ['rejectAllWaiters', 'stopAllKeys'] },
    },
    states: {
      running: {
        description: 'Granting leases; waiters are woken by the event that frees a key.',
        on: {
          'pool.acquire': [{ guard: 'grantsAtOnce', actions: 'grantAtOnce' }, { actions: 'acquire' }],
          'key.ready': { actions: 'serveWaiters' },
          'pool.outage': { target: 'backingOff' },
        },
      },
      backingOff: {
        description:
          'Most keys fail at once: the provider is down. Nobody is granted a key until outage.until.',
        on: {
          // Requests queue (or fail fast) meanwhile; key.ready only refreshes the index.
          'pool.acquire': { actions: 'acquire' },
          'key.ready': { actions: 'serveWaiters' },
        },
        after: { outageBackoff: { target: 'running', actions: ['endOutage', 'serveWaiters'] } },
      },
      closed: {
        description: 'Takes no acquires; every key actor and timer is stopped.',
        type: 'final',
      },
    },
  });

  return { machine, runtime: { index, waiters } };
}

export type PoolMachine = ReturnType<typeof createPoolMachine>['machine'];
export type PoolRuntime = ReturnType<typeof createPoolMachine>['runtime'];

/** A pool machine on the system clock with the default strategy, for inspection, Stately import and diagrams. */
export const poolMachine: PoolMachine = createPoolMachine({
  clock: systemClock,
  keyMachine: createKeyMachine({ now: () => systemClock.now(), random: Math.random }),
  strategy: leastBusy,
  maxWaiters: Number.POSITIVE_INFINITY,
  seed: 1,
}).machine;
