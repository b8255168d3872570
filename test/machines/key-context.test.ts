import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { createKeyMachine, VirtualClock } from '../../src/index.js';
import { createTestPool, keySettings, releaseEvent } from '../helpers.js';

const settings = keySettings();

describe('key actor context', () => {
  it('stays JSON-only with at most 11 top-level fields (XState copies the top level on every assign)', async () => {
    const { pool } = await createTestPool(2);
    const lease = await pool.acquire();
    lease.rateLimited({ retryAfterMs: 1_000 });
    for (const ref of Object.values(pool.actor.getSnapshot().context.keys)) {
      const context = ref.getSnapshot().context;
      expect(Object.keys(context).length).toBeLessThanOrEqual(11);
      expect(JSON.parse(JSON.stringify(context))).toEqual(context);
    }
    await pool.close();
  });

  it('keeps the same health object through a healthy grant and success (the hot path copies no nested object)', () => {
    const clock = new VirtualClock();
    // Standalone: no parent pool to notify.
    const machine = createKeyMachine({ now: () => clock.now(), random: () => 0.5 }).provide({
      actions: { notifyReady: () => {}, notifyDrained: () => {} },
    });
    const key = createActor(machine, {
      input: { keyId: 'k_aaaaaaaaaaaaaaaa', order: 0, settings },
    }).start();
    const health = key.getSnapshot().context.health;
    key.send({ type: 'lease.grant', seq: 1, tokens: 0 });
    key.send(releaseEvent(1));
    expect(key.getSnapshot().context.health).toBe(health);

    key.send({ type: 'lease.grant', seq: 2, tokens: 0 });
    key.send({ type: 'lease.fail', seq: 2, kind: 'failure', retryAfterMs: undefined });
    expect(key.getSnapshot().context.health.consecutiveFailures).toBe(1);
    key.send({ type: 'lease.grant', seq: 3, tokens: 0 });
    key.send(releaseEvent(3));
    expect(key.getSnapshot().context.health).toEqual({ ...health, lastPenaltyAt: clock.now() });
    key.stop();
  });
});
