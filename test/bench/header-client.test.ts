/**
 * The reference of B4g: a client that reads nothing but headers. These pin down that it does what
 * BENCH.md says it does, so that "no worse than the reference" is measured against that client.
 */
import { describe, expect, it } from 'vitest';
import {
  type B4gFigures,
  b4gTiming,
  ISSUE_11_MEMBER,
  runB4gMember,
} from '../../bench/scenarios/b4g-family.js';
import * as keymesh from '../../src/index.js';
import type { FamilyMember } from '../../src/sim/index.js';

const reference = (member: FamilyMember): Promise<B4gFigures> =>
  runB4gMember(member, 'reference', keymesh, b4gTiming(member, 'test'));

describe('HeaderClient (bench/reference/header-client.ts)', () => {
  it('admits what the answers say remains: issue 11’s provider without a single 429 in steady state', async () => {
    const run = await reference(ISSUE_11_MEMBER);
    expect(run.goodputRatio).toBeGreaterThanOrEqual(0.95);
    expect(run.rateLimitedPer1000).toBe(0);
    // Callers wait their turn: FIFO.
    expect(run.maxWaitOverP50).toBeLessThan(1.1);
  });

  it('infers the window from an exact 429 and its own sends when successes carry no headers', async () => {
    const run = await reference({ ...ISSUE_11_MEMBER, successHeaders: 'none', retryAfter: 'ms' });
    expect(run.goodputRatio).toBeGreaterThanOrEqual(0.95);
    expect(run.rateLimitedPer1000).toBe(0);
    expect(run.cold.rateLimitedPer1000).toBeGreaterThan(0);
  });

  it('rests until the stated reset on a fixed window, and uses all of every window', async () => {
    const run = await reference({ ...ISSUE_11_MEMBER, shape: 'fixed-window', reset: 'window-end' });
    expect(run.goodputRatio).toBe(1);
    expect(run.rateLimitedPer1000).toBe(0);
  });

  it('backs off from bare 429s (1 s, doubling) rather than hammering', async () => {
    const run = await reference({ ...ISSUE_11_MEMBER, successHeaders: 'none', retryAfter: 'none' });
    expect(run.rateLimitedPer1000).toBeLessThan(300);
    expect(run.goodputRatio).toBeGreaterThan(0.5);
  });
});
