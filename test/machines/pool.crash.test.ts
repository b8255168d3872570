import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import {
  createKeyMachine,
  createPoolMachine,
  type LeaseGranted,
  type PoolEmitted,
  VirtualClock,
} from '../../src/index.js';

import type { KeyInput } from '../../src/machines/key.types.js';
import { leastBusy } from '../../src/pool/strategies/least-busy.js';
import { keySettings, releaseEvent } from '../helpers.js';

const settings = keySettings({ maxConcurrent: 4 });

/**
 * A pool machine on a virtual clock whose key action `action` throws while `crash.armed` is set:
 * a bug in a key action, which the pool must survive.
 */
function poolWithBuggyKeyAction(action: 'countFailure' | 'countProviderError', keyIds: readonly string[]) {
  const clock = new VirtualClock();
  const crash = { armed: false };
  const keyMachine = createKeyMachine({ now: () => clock.now(), random: () => 0.5 }).provide({
    actions: {
      [action]: () => {
        if (crash.armed) throw new Error('bug in a key action');
      },
    },
  });
  const granted: LeaseGranted[] = [];
  const { machine, runtime } = createPoolMachine({
    clock,
    keyMachine,
    strategy: leastBusy,
    maxWaiters: Number.POSITIVE_INFINITY,
    seed: 1,
    onGrant: (grant) => granted.push(grant),
  });
  const keys: KeyInput[] = keyIds.map((keyId, order) => ({ keyId, order, settings }));
  const pool = createActor(machine, { input: { keys }, clock });
  const emitted: PoolEmitted[] = [];
  pool.on('*', (event) => emitted.push(event));
  pool.start();
  const acquire = (requestId: number) =>
    pool.send({ type: 'pool.acquire', requestId, priority: 0, timeoutMs: 1_000, wait: true, tokens: 0 });
  return { clock, crash, granted, runtime, pool, emitted, acquire };
}

describe('pool supervision', () => {
  it('replaces a crashed key actor from its last good state and keeps serving', () => {
    const { clock, crash, granted, runtime, pool, emitted, acquire } = poolWithBuggyKeyAction(
      'countFailure',
      ['k_aaaaaaaaaaaaaaaa', 'k_bbbbbbbbbbbbbbbb'],
    );
    acquire(1);
    acquire(2);
    expect(granted).toHaveLength(2);
    const victim = runtime.index.get('k_aaaaaaaaaaaaaaaa');
    if (!victim) throw new Error('missing key');
    crash.armed = true;
    victim.ref.send({ type: 'lease.fail', seq: 1, kind: 'failure', retryAfterMs: undefined });
    crash.armed = false;

    expect(pool.getSnapshot().status).toBe('active');
    expect(emitted.some((e) => e.type === 'key.crashed' && e.keyId === 'k_aaaaaaaaaaaaaaaa')).toBe(true);
    const replacement = runtime.index.get('k_aaaaaaaaaaaaaaaa');
    expect(replacement?.ref).not.toBe(victim.ref);
    // It carries on from its last good context: the lease granted before the crash is still counted.
    expect(replacement?.context.inFlight).toBe(1);
    replacement?.ref.send(releaseEvent(1));
    expect(runtime.index.get('k_aaaaaaaaaaaaaaaa')?.context.inFlight).toBe(0);
    acquire(3);
    expect(granted).toHaveLength(3);
    pool.stop();
    expect(clock.pendingTimers).toBe(0);
  });

  it("carries the crashed key's health over to its replacement", () => {
    const { clock, crash, runtime, pool, acquire } = poolWithBuggyKeyAction('countProviderError', [
      'k_aaaaaaaaaaaaaaaa',
    ]);
    for (let requestId = 1; requestId <= 4; requestId++) acquire(requestId);
    const victim = runtime.index.get('k_aaaaaaaaaaaaaaaa');
    if (!victim) throw new Error('missing key');
    clock.advance(10);
    for (const seq of [1, 2, 3])
      victim.ref.send({ type: 'lease.fail', seq, kind: 'failure', retryAfterMs: undefined });
    const before = victim.context;
    expect(victim.sub).toBe('failing');
    expect(before.health).toMatchObject({
      reason: 'failures',
      consecutiveFailures: 3,
      lastPenaltyAt: clock.now(),
    });
    crash.armed = true;
    victim.ref.send({ type: 'lease.fail', seq: 4, kind: 'provider', retryAfterMs: undefined });
    crash.armed = false;

    const replacement = runtime.index.get('k_aaaaaaaaaaaaaaaa');
    expect(replacement?.ref).not.toBe(victim.ref);
    expect(replacement?.sub).toBe('failing');
    expect(replacement?.context.health).toEqual(before.health);
    expect(replacement?.context.counts).toEqual(before.counts);
    expect(replacement?.context.inFlight).toBe(before.inFlight);
    pool.stop();
    expect(clock.pendingTimers).toBe(0);
  });
});
