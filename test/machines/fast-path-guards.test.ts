import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { createKeyMachine, type KeyAllowance, type KeyContext, type KeyEvent } from '../../src/index.js';
import { keySettings, releaseEvent } from '../helpers.js';

/**
 * `grantIsPlain` and `settlesPlainly` come first in their transition lists so that the hot path
 * evaluates one guard instead of four, and `busy`'s `freesSlotPlainly` goes straight back to
 * `available` instead of through `routing`. They are only right while they change nothing but
 * speed: checked here over arbitrary contexts and events, so a change elsewhere that breaks a
 * shortcut fails here rather than silently.
 */
const NOW = 1_000_000;
const quiet = { notifyReady: () => {}, notifyDrained: () => {} };
const machine = createKeyMachine({ now: () => NOW, random: () => 0.5 }).provide({ actions: quiet });
/** The same machine without the shortcuts: every event takes the long way. */
const longWay = machine.provide({
  guards: { grantIsPlain: () => false, settlesPlainly: () => false, freesSlotPlainly: () => false },
});

/** Where `event` takes a key resting in `state` with `context`, on `keyMachine`. */
function outcome(
  keyMachine: typeof machine,
  state: 'available' | 'busy' | 'cooling',
  context: KeyContext,
  event: KeyEvent,
) {
  const actor = createActor(keyMachine, {
    input: { keyId: context.keyId, order: context.order, settings: context.settings },
    snapshot: keyMachine.resolveState({ value: state, context }),
  });
  actor.start();
  actor.send(event);
  const { value, context: after } = actor.getSnapshot();
  actor.stop();
  return { value, context: after };
}
const guards = machine.implementations.guards as Record<
  string,
  (args: { context: KeyContext; event: KeyEvent }, params: undefined) => boolean
>;
const holds = (name: string, context: KeyContext, event: KeyEvent): boolean => {
  const guard = guards[name];
  if (!guard) throw new Error(`no guard ${name}`);
  return guard({ context, event }, undefined);
};

const baseContext: KeyContext = createActor(machine, {
  input: { keyId: 'k_0000000000000000', order: 0, settings: keySettings() },
}).getSnapshot().context;

const allowanceArb: fc.Arbitrary<KeyAllowance | null> = fc.oneof(
  fc.constant(null),
  fc.record({
    remaining: fc.integer({ min: -1, max: 12 }),
    resetAt: fc.constantFrom(0, NOW - 10, NOW + 500),
    heardSeq: fc.integer({ min: 0, max: 20 }),
    sent: fc.constantFrom([], [{ seq: 3, at: NOW - 40 }]),
    countedTo: fc.integer({ min: 0, max: 5 }),
    slowCap: fc.constantFrom(0, 1, 10, 11),
    gapMs: fc.constantFrom(0, 25, 100),
    lossGapMs: fc.constantFrom(0, 20),
    nextAt: fc.constantFrom(0, NOW - 5, NOW + 50),
    since: fc.constantFrom(0, NOW - 1_000),
    fromSeq: fc.integer({ min: 0, max: 10 }),
    got: fc.integer({ min: 0, max: 10 }),
    spanMs: fc.constantFrom(0, 1_000),
    toSeq: fc.constantFrom(-1, 8),
    refusedAt: fc.constantFrom(0, NOW - 500),
    zeroResetMs: fc.constantFrom(0, 40),
    spentGrantedAt: fc.constantFrom(0, 1_000),
    spentResetMs: fc.constantFrom(0, 40),
    slotSpacingMs: fc.constantFrom(0, 40),
    resetFrees: fc.constantFrom(1, 3),
    freedAt: fc.constantFrom(0, NOW - 10),
    resetLeases: fc.constantFrom([], [{ seq: 3, group: NOW - 10 }]),
    resetGroup: fc.constantFrom(0, NOW - 10),
    sentLog: fc.constantFrom([], [NOW - 40]),
    mostFree: fc.constantFrom(0, 3),
    longestResetMs: fc.constantFrom(0, 60),
    fullGroup: fc.constantFrom(0, NOW - 10),
    fullResets: fc.constantFrom(0, 2),
  }),
);

const contextArb: fc.Arbitrary<KeyContext> = fc
  .record({
    maxConcurrent: fc.option(fc.integer({ min: 1, max: 5 }), { nil: null, freq: 1 }),
    budget: fc.option(
      fc.record({
        rpm: fc.option(fc.integer({ min: 1, max: 600 }), { nil: null, freq: 1 }),
        tpm: fc.option(fc.integer({ min: 1, max: 100_000 }), { nil: null, freq: 1 }),
        rpd: fc.option(fc.integer({ min: 1, max: 10_000 }), { nil: null, freq: 1 }),
      }),
      { nil: null, freq: 1 },
    ),
    inFlight: fc.integer({ min: 0, max: 6 }),
    allowance: allowanceArb,
    cooldownUntil: fc.constantFrom(0, NOW - 5, NOW + 5),
    draining: fc.boolean(),
    meters: fc.record({
      requestsAt: fc.constantFrom(0, NOW - 1_000, NOW + 1_000),
      tokensAt: fc.constantFrom(0, NOW + 2_000),
      dayAt: fc.constantFrom(0, NOW + 5_000),
    }),
  })
  .map(({ maxConcurrent, budget, inFlight, allowance, cooldownUntil, draining, meters }) => ({
    ...baseContext,
    settings: keySettings({ maxConcurrent, budget }),
    budget: budget ? meters : null,
    inFlight,
    allowance,
    health: { ...baseContext.health, cooldownUntil, draining },
  }));

const grantArb: fc.Arbitrary<KeyEvent> = fc.record({
  type: fc.constant('lease.grant' as const),
  seq: fc.integer({ min: 1, max: 30 }),
  tokens: fc.constantFrom(0, 500, 50_000),
  at: fc.constant(NOW),
});

const releaseArb: fc.Arbitrary<KeyEvent> = fc.record({
  type: fc.constant('lease.release' as const),
  seq: fc.integer({ min: 1, max: 30 }),
  latencyMs: fc.option(fc.integer({ min: 0, max: 2_000 }), { nil: undefined, freq: 1 }),
  tokenDelta: fc.constantFrom(-100, 0, 100, 50_000),
  restMs: fc.option(fc.constantFrom(0, 200, 5_000), { nil: undefined, freq: 1 }),
  allowance: fc.option(
    fc.record({
      remaining: fc.integer({ min: 0, max: 10 }),
      resetMs: fc.constantFrom(0, 1_000),
      limit: fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined, freq: 1 }),
    }),
    { nil: undefined, freq: 1 },
  ),
});

describe('hot-path guards admit only what every later guard refuses', () => {
  it('grantIsPlain: no budget or allowance to spend and no cap to fill', () => {
    fc.assert(
      fc.property(contextArb, grantArb, (context, event) => {
        if (!holds('grantIsPlain', context, event)) return;
        for (const later of [
          'grantSpendsBudget',
          'grantSpendsAllowance',
          'grantFillsCapacity',
          'hasAllowance',
        ])
          expect(holds(later, context, event), later).toBe(false);
      }),
      { numRuns: 2_000 },
    );
  });

  it('settlesPlainly: a lease is out and there is nothing to learn or rest', () => {
    fc.assert(
      fc.property(contextArb, releaseArb, (context, event) => {
        if (!holds('settlesPlainly', context, event)) return;
        for (const later of ['noLeaseOut', 'learnsAllowance', 'successRests'])
          expect(holds(later, context, event), later).toBe(false);
      }),
      { numRuns: 2_000 },
    );
  });

  it('the shortcuts change nothing: the same state and context as the long way', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('available' as const, 'busy' as const, 'cooling' as const),
        contextArb,
        fc.oneof(grantArb, releaseArb),
        (state, context, event) => {
          expect(outcome(machine, state, context, event)).toEqual(outcome(longWay, state, context, event));
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('both shortcuts are taken on the plain hot path', () => {
    const plain = { ...baseContext, allowance: null, inFlight: 1 };
    expect(holds('grantIsPlain', plain, { type: 'lease.grant', seq: 2, tokens: 0, at: NOW })).toBe(true);
    expect(holds('settlesPlainly', plain, releaseEvent(1))).toBe(true);
  });
});
