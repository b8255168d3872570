import { describe, expect, it } from 'vitest';
import { getShortestPaths } from 'xstate/graph';
import { createKeyMachine, type KeyEvent, KeyPool, type Lease, VirtualClock } from '../../src/index.js';
import { keySettings } from '../helpers.js';

/**
 * Model-based paths: XState's graph utilities walk the key machine itself (time frozen; delayed
 * transitions are steps of their own), and every path is replayed against a real one-key KeyPool
 * through the public API only, checking after each step that the pool shows the state the model
 * reached. The model knows nothing of the pool; the pool knows nothing of the model.
 */

const settings = keySettings({
  maxConcurrent: 2,
  maxFailures: 2,
  defaultCooldownMs: 4_000,
  recoveryMaxDelayMs: 2_000,
});

const modelClock = new VirtualClock();
const model = createKeyMachine({ now: () => modelClock.now(), random: () => 0.5 }).provide({
  // Standalone traversal has no parent pool to notify.
  actions: { notifyReady: () => {}, notifyDrained: () => {} },
});

// The model grants every lease as seq 1, so a settle with seq 1 is "the probe" whenever a probe is
// out; NORMAL stands for any other lease.
const PROBE = 1;
const NORMAL = -1;
const events: KeyEvent[] = [
  { type: 'lease.grant', seq: PROBE, tokens: 0 },
  {
    type: 'lease.release',
    seq: NORMAL,
    latencyMs: 10,
    tokenDelta: 0,
    restMs: undefined,
    allowance: undefined,
  },
  {
    type: 'lease.release',
    seq: PROBE,
    latencyMs: 10,
    tokenDelta: 0,
    restMs: undefined,
    allowance: undefined,
  },
  { type: 'lease.fail', seq: NORMAL, kind: 'failure', retryAfterMs: undefined },
  { type: 'lease.fail', seq: PROBE, kind: 'failure', retryAfterMs: undefined },
  { type: 'lease.fail', seq: NORMAL, kind: 'revoked', retryAfterMs: undefined },
  { type: 'lease.rateLimit', seq: NORMAL, retryAfterMs: 1_500, latencyMs: undefined },
  { type: 'lease.rateLimit', seq: NORMAL, retryAfterMs: undefined, latencyMs: undefined },
  { type: 'lease.rateLimit', seq: PROBE, retryAfterMs: 1_500, latencyMs: undefined },
  { type: 'lease.fail', seq: NORMAL, kind: 'quota', retryAfterMs: 2_000 },
  { type: 'lease.fail', seq: PROBE, kind: 'quota', retryAfterMs: undefined },
  { type: 'key.readd' },
  { type: 'key.reset' },
  { type: 'key.drain' },
];

// Delayed transitions are events of their own in the graph (`xstate.after.<delay>.<state id>`).
const timers = [
  { type: 'xstate.after.cooldownElapsed.key.cooling' },
  { type: 'xstate.after.recoveryDue.key.exhausted.failing' },
] as unknown as KeyEvent[];

function describeEvent(event: KeyEvent): string {
  if (event.type.startsWith('xstate.after.')) return `after ${event.type.split('.')[2]}`;
  const probe = event.type !== 'lease.grant' && 'seq' in event && event.seq === PROBE ? '(probe)' : '';
  const kind = event.type === 'lease.fail' && event.kind !== 'failure' ? `(${event.kind})` : '';
  const hint = event.type === 'lease.rateLimit' && event.retryAfterMs === undefined ? '(no hint)' : '';
  return `${event.type}${probe}${kind}${hint}`;
}

function describePath(path: { readonly steps: ReadonlyArray<{ readonly event: KeyEvent }> }): string {
  return path.steps
    .slice(1)
    .map(({ event }) => describeEvent(event))
    .join(' → ');
}

type ModelSnapshot = ReturnType<typeof getShortestPaths<typeof model>>[number]['state'];

function topState(snapshot: ModelSnapshot): string {
  const value = snapshot.value;
  return typeof value === 'string' ? value : `exhausted.${value.exhausted}`;
}

const paths = getShortestPaths(model, {
  input: { keyId: 'k_model', order: 0, settings },
  events: [...events, ...timers],
  limit: 5_000,
  // Abstract away what grows without bound (counters, deadlines, streaks), but keep the event that
  // led here, so that every transition (not only every state) ends some path.
  serializeState: (snapshot, event) => {
    const c = snapshot.context;
    return JSON.stringify([
      event ? describeEvent(event) : 'init',
      snapshot.value,
      c.inFlight,
      Math.min(c.health.consecutiveFailures, settings.maxFailures),
      c.health.probeSeq,
      c.health.draining,
      c.health.reason,
      c.allowance === null
        ? null
        : [Math.min(c.allowance.remaining, 2), c.allowance.slowCap > 0, c.allowance.gapMs > 0],
    ]);
  },
  // Only what the pool can actually do: grant to an eligible key; settle a lease that is out.
  filterEvents: (snapshot, event) => {
    const c = snapshot.context;
    const state = topState(snapshot);
    if (state === 'drained') return false;
    switch (event.type) {
      case 'lease.grant':
        return state === 'available' || state === 'exhausted.probeReady';
      case 'lease.release':
      case 'lease.fail':
      case 'lease.rateLimit':
        return event.seq === PROBE
          ? c.health.probeSeq !== 0
          : c.inFlight - (c.health.probeSeq !== 0 ? 1 : 0) > 0;
      case 'key.reset':
        return state !== 'draining';
      case 'key.drain':
        return state !== 'draining';
      case 'key.readd':
        return true;
      default:
        // A timer exists only in the state that armed it.
        if (event.type.includes('cooldownElapsed')) return state === 'cooling';
        if (event.type.includes('recoveryDue')) return state === 'exhausted.failing';
        return true;
    }
  },
});

describe('key machine model paths, replayed against KeyPool', () => {
  it('reaches every state the design names', () => {
    const reached = new Set(paths.map((path) => topState(path.state)));
    for (const state of [
      'available',
      'busy',
      'cooling',
      'exhausted.failing',
      'exhausted.probeReady',
      'exhausted.probing',
      'exhausted.dead',
      'draining',
      'drained',
    ]) {
      expect(reached, state).toContain(state);
    }
    expect(paths.length).toBeGreaterThan(30);
  });

  for (const path of paths) {
    it(describePath(path) || '(initial)', async () => {
      const clock = new VirtualClock(modelClock.now());
      const pool = await KeyPool.create({
        keys: ['sk-test-model-00000000000000001'],
        clock,
        seed: 3,
        maxConcurrentPerKey: settings.maxConcurrent ?? Number.POSITIVE_INFINITY,
        maxFailures: settings.maxFailures,
        defaultCooldownMs: settings.defaultCooldownMs,
        recovery: {
          initialDelayMs: settings.recoveryInitialDelayMs,
          maxDelayMs: settings.recoveryMaxDelayMs,
        },
      });
      const held: Lease[] = [];
      // The probe of the current recovery episode; a probe lease from an earlier one is just a lease.
      let currentProbe: Lease | undefined;
      const take = (seq: number): Lease => {
        const probe = seq === PROBE;
        const index = probe
          ? held.indexOf(currentProbe as Lease)
          : held.findIndex((lease) => lease !== currentProbe);
        const [lease] = held.splice(index, 1);
        if (index < 0 || !lease) throw new Error(`no ${probe ? 'probe' : 'normal'} lease out`);
        if (probe) currentProbe = undefined;
        return lease;
      };
      const view = () => pool.snapshot().keys[0];
      for (const { event, state } of path.steps.slice(1)) {
        const key = view();
        switch (event.type) {
          case 'lease.grant': {
            const lease = pool.tryAcquire();
            expect(lease, 'the pool grants where the model does').toBeDefined();
            if (lease) held.push(lease);
            if (lease?.probe) currentProbe = lease;
            break;
          }
          case 'lease.release':
            take(event.seq).release({ latencyMs: event.latencyMs });
            break;
          case 'lease.fail':
            take(event.seq).fail(new Error('model'), {
              kind: event.kind,
              ...(event.retryAfterMs === undefined ? {} : { retryAfterMs: event.retryAfterMs }),
            });
            break;
          case 'lease.rateLimit':
            take(event.seq).rateLimited(
              event.retryAfterMs === undefined ? {} : { retryAfterMs: event.retryAfterMs },
            );
            break;
          case 'key.reset':
            currentProbe = undefined;
            await pool.resetKey('sk-test-model-00000000000000001');
            break;
          case 'key.readd':
            currentProbe = undefined;
            await pool.addKey('sk-test-model-00000000000000001');
            break;
          case 'key.drain':
            await pool.removeKey('sk-test-model-00000000000000001');
            break;
          default:
            if (event.type.includes('cooldownElapsed')) clock.advanceTo(key?.cooldownUntil ?? clock.now());
            else if (event.type.includes('recoveryDue')) clock.advanceTo(key?.recoveryAt ?? clock.now());
            else throw new Error(`unmapped model event ${event.type}`);
        }
        const expected = topState(state);
        const actual = view();
        if (expected === 'drained') {
          expect(actual, 'a drained key is gone from the pool').toBeUndefined();
          continue;
        }
        const [top, sub] = expected.split('.');
        expect(actual?.state).toBe(top);
        expect(actual?.inFlight).toBe(state.context.inFlight);
        expect(actual?.reason).toBe(state.context.health.reason);
        // The graph stores one snapshot per abstract state: compare only what the abstraction keeps.
        expect(Math.min(actual?.consecutiveFailures ?? -1, settings.maxFailures)).toBe(
          Math.min(state.context.health.consecutiveFailures, settings.maxFailures),
        );
        expect(actual?.probe).toBe(sub === 'probeReady');
        expect(pool.availableCount()).toBe(expected === 'available' || sub === 'probeReady' ? 1 : 0);
      }
      await pool.close();
      expect(clock.pendingTimers).toBe(0);
    });
  }
});
