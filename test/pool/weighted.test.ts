import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Lease } from '../../src/index.js';
import { fakeKeys, pools } from '../helpers.js';

const make = pools();

/** Longest run of consecutive equal picks. */
function longestRun(picks: readonly string[]): number {
  let longest = 0;
  let run = 0;
  for (let i = 0; i < picks.length; i++) {
    run = i > 0 && picks[i] === picks[i - 1] ? run + 1 : 1;
    longest = Math.max(longest, run);
  }
  return longest;
}

const count = (picks: readonly string[], key: string | undefined): number =>
  picks.filter((pick) => pick === key).length;

/**
 * Earliest eligible virtual deadline first, written as plainly as possible: every choice looks at
 * every key whose turn has begun. Returns the first pick (by index) that is not a begun turn with
 * the earliest end, or -1. Ends that are equal as doubles are ties whatever the rounding that made
 * them so; the strategy breaks exact ties by configured order (the other tests show it).
 */
function firstWrongPick(weights: readonly number[], picks: readonly number[]): number {
  const turns = weights.map((weight) => ({ weight, start: 0, finish: 1 / weight }));
  const total = weights.reduce((sum, weight) => sum + weight, 0);
  let now = 0;
  for (let i = 0; i < picks.length; i++) {
    if (!turns.some((turn) => turn.start <= now)) now = Math.min(...turns.map((turn) => turn.start));
    const earliest = Math.min(...turns.filter((turn) => turn.start <= now).map((turn) => turn.finish));
    const turn = turns[picks[i] as number];
    if (!turn || turn.start > now || turn.finish !== earliest) return i;
    turn.start = turn.finish;
    turn.finish = turn.start + 1 / turn.weight;
    now += 1 / total;
  }
  return -1;
}

describe('weighted strategy', () => {
  it('serves exact proportions, spread out, when every key stays free', async () => {
    const keys = fakeKeys(3);
    const { pool } = await make(0, {
      keys: keys.map((key, i) => ({ key, weight: 3 - i })),
      strategy: 'weighted',
    });
    const picks: string[] = [];
    for (let i = 0; i < 600; i++) {
      const lease = await pool.acquire();
      picks.push(lease.key);
      lease.release();
    }
    expect([count(picks, keys[0]), count(picks, keys[1]), count(picks, keys[2])]).toEqual([300, 200, 100]);
    // Every window of one period (6 leases) holds each key its share, give or take one.
    for (let start = 0; start + 6 <= picks.length; start += 6) {
      const period = picks.slice(start, start + 6);
      expect(Math.abs(count(period, keys[0]) - 3)).toBeLessThanOrEqual(1);
    }
    expect(longestRun(picks)).toBeLessThanOrEqual(2);
  });

  it('keeps the proportions among leases held at once', async () => {
    const keys = fakeKeys(2);
    const { pool } = await make(0, {
      keys: [
        { key: keys[0] as string, weight: 2 },
        { key: keys[1] as string, weight: 1 },
      ],
      strategy: 'weighted',
    });
    const held: Lease[] = [];
    // 15 at once: within the slow-start window (10 leases) of a new key.
    for (let i = 0; i < 15; i++) held.push(await pool.acquire());
    expect(
      count(
        held.map((lease) => lease.key),
        keys[0],
      ),
    ).toBe(10);
    for (const lease of held) lease.release();
  });

  it('gives a key back from a cooldown its share from then on, not the turns it missed', async () => {
    const keys = fakeKeys(2);
    const { pool, clock } = await make(0, { keys, strategy: 'weighted' });
    const first = await pool.acquire();
    const rested = first.key;
    // No hint: a 1 s rest (the first of the escalation), and nothing learned of the key's pace.
    first.rateLimited();
    for (let i = 0; i < 20; i++) {
      const lease = await pool.acquire();
      expect(lease.key).not.toBe(rested);
      lease.release();
    }
    await clock.advance(1_000);
    const picks: string[] = [];
    for (let i = 0; i < 10; i++) {
      const lease = await pool.acquire();
      picks.push(lease.key);
      lease.release();
    }
    expect(count(picks, rested)).toBe(5);
    expect(longestRun(picks)).toBe(1);
  });

  it('always chooses a begun turn that ends first, as a schedule looking at every turn would', async () => {
    const weight = fc.oneof(fc.integer({ min: 1, max: 6 }), fc.constantFrom(0.5, 1.5, 2.5, 0.25));
    await fc.assert(
      fc.asyncProperty(fc.array(weight, { minLength: 2, maxLength: 12 }), async (weights) => {
        const keys = fakeKeys(weights.length);
        const { pool } = await make(0, {
          keys: keys.map((key, i) => ({ key, weight: weights[i] as number })),
          strategy: 'weighted',
        });
        const picks: number[] = [];
        for (let i = 0; i < 240; i++) {
          const lease = await pool.acquire();
          picks.push(keys.indexOf(lease.key));
          lease.release();
        }
        await pool.close();
        expect(firstWrongPick(weights, picks)).toBe(-1);
      }),
      { numRuns: 60 },
    );
  });

  it('holds the proportions at 1 000 keys, one of them as heavy as all the others', async () => {
    const keys = fakeKeys(1_000);
    const { pool } = await make(0, {
      keys: keys.map((key, i) => ({ key, weight: i === 0 ? 999 : 1 })),
      strategy: 'weighted',
    });
    const picks: string[] = [];
    for (let i = 0; i < 1_998; i++) {
      const lease = await pool.acquire();
      picks.push(lease.key);
      lease.release();
    }
    expect(count(picks, keys[0])).toBe(999);
    expect(new Set(picks).size).toBe(1_000);
    // The heavy key alternates with the light ones rather than taking its half in one block.
    expect(longestRun(picks)).toBeLessThanOrEqual(2);
  });
});
