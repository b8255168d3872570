/**
 * BENCH.md B4g on the virtual clock: KeyMesh on every member of the seeded family sample, beside the
 * header-reading reference in the same run, each member asserted on its own (the test's name carries
 * its seed and description). Steady state only: the first 10 s (or the first window) are left out.
 *
 * Members listed in `B4G_SHORTFALLS` still miss a target (issue 11 is open until that list is empty):
 * each is held to no worse than the figures it reached when it was listed, and the test fails as soon
 * as one meets every target, so that its entry is removed and the list only shrinks. Every other
 * member must meet every target.
 *
 * The same runs print as a table: `node --import tsx bench/b4g-table.ts` (add `--seeds 3,17` for some);
 * one member alone: `npx vitest run test/bench/b4g-family.test.ts -t "#24 "`.
 */
import { describe, expect, it } from 'vitest';
import {
  B4G_FLOAT_TOLERANCE,
  B4G_SEEDS,
  b4gMemberLine,
  b4gMisses,
  runB4gPair,
} from '../../bench/scenarios/b4g-family.js';
import * as keymesh from '../../src/index.js';
import { describeMember, sampleFamilyMember } from '../../src/sim/index.js';
import { B4G_SHORTFALLS } from './b4g-shortfalls.js';

const members = B4G_SEEDS.map((seed) => sampleFamilyMember(seed));

describe('B4g: every member of the provider family, KeyMesh against its targets and the reference', () => {
  it.each(members.map((member) => [describeMember(member), member] as const))(
    '%s',
    async (_name, member) => {
      const result = await runB4gPair(member, keymesh, 'test');
      const line = b4gMemberLine(result);
      const known = B4G_SHORTFALLS.get(member.seed);
      if (known === undefined) {
        expect(b4gMisses(result), line).toEqual([]);
        return;
      }
      expect(
        b4gMisses(result),
        `#${member.seed} now meets every target: remove it from B4G_SHORTFALLS`,
      ).not.toEqual([]);
      expect(result.keymesh.goodputRatio, line).toBeGreaterThanOrEqual(known.ratio - B4G_FLOAT_TOLERANCE);
      expect(result.keymesh.rateLimitedPer1000, line).toBeLessThanOrEqual(
        known.per1000 + B4G_FLOAT_TOLERANCE,
      );
    },
    120_000,
  );
});
