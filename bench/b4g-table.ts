/**
 * BENCH.md B4g as a table, from the source, on the virtual clock: every member of the family sample,
 * KeyMesh beside the header-reading reference (steady-state ratio / 429s per 1 000 / max wait ÷ p50),
 * then the worst member and the median of each. The same runs as `test/bench/b4g-family.test.ts`.
 *
 *   node --import tsx bench/b4g-table.ts                 # the test's sample (50 members, ≈ 1 simulated min each)
 *   node --import tsx bench/b4g-table.ts --bench         # 5 simulated minutes per member, as `npm run bench`
 *   node --import tsx bench/b4g-table.ts --seeds 3,17    # some members only
 */
import { parseArgs } from 'node:util';
import * as keymesh from '../src/index.js';
import { B4G_SEEDS, b4gMemberLine, b4gSummary, runB4gFamily } from './scenarios/b4g-family.js';

const { values } = parseArgs({
  options: { bench: { type: 'boolean', default: false }, seeds: { type: 'string' } },
});
const seeds =
  values.seeds === undefined ? B4G_SEEDS : values.seeds.split(',').map((seed) => Number(seed.trim()));
const started = performance.now();
process.stdout.write('  KeyMesh and reference: steady-state ratio / 429s per 1 000 / max wait ÷ p50\n');
let cpu = process.cpuUsage();
const results = await runB4gFamily(keymesh, values.bench ? 'bench' : 'test', seeds, (result) => {
  const used = process.cpuUsage(cpu);
  cpu = process.cpuUsage();
  process.stdout.write(`${b4gMemberLine(result)} [${((used.user + used.system) / 1e6).toFixed(1)} s CPU]\n`);
});
process.stdout.write(`${b4gSummary(results).join('\n')}\n`);
const total = process.cpuUsage();
process.stderr.write(
  `${((performance.now() - started) / 1_000).toFixed(1)} s, ${((total.user + total.system) / 1e6).toFixed(1)} s CPU\n`,
);
