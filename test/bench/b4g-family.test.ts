/**
 * BENCH.md B4g on the virtual clock: KeyMesh on every member of the seeded family sample, beside the
 * header-reading reference in the same run, each member asserted on its own (the test's name carries
 * its seed and description). Steady state only: the first 10 s (or the first window) are left out.
 *
 * The same runs print as a table: `node --import tsx bench/b4g-table.ts` (add `--seeds 3,17` for some);
 * one member alone: `npx vitest run test/bench/b4g-family.test.ts -t "#24 "`.
 */
import { describe, expect, it } from 'vitest';
import { B4G_SEEDS, b4gMemberLine, b4gMisses, runB4gPair } from '../../bench/scenarios/b4g-family.js';
import * as keymesh from '../../src/index.js';
import { describeMember, sampleFamilyMember } from '../../src/sim/index.js';

const members = B4G_SEEDS.map((seed) => sampleFamilyMember(seed));

describe('B4g: every member of the provider family, KeyMesh against its targets and the reference', () => {
  it.each(members.map((member) => [describeMember(member), member] as const))(
    '%s',
    async (_name, member) => {
      const result = await runB4gPair(member, keymesh, 'test');
      expect(b4gMisses(result), b4gMemberLine(result)).toEqual([]);
    },
    120_000,
  );
});
