/**
 * Runs one scenario of BENCH.md in this process and writes its result as JSON to `--out`. The runner
 * (`bench/run.ts`) starts one such process per scenario, with `--expose-gc`, so that no scenario
 * measures the heap, the JIT state or the timers another one left behind.
 *
 *   node --expose-gc --import tsx bench/scenario-process.ts B4 --out bench/results/B4.tmp [--quick] [--part B4c]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadProductionBuild } from './lib/keymesh.js';
import { failedResult, type ScenarioResult } from './lib/report.js';
import { SCENARIOS } from './scenarios/index.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: 'string' },
    quick: { type: 'boolean', default: false },
    part: { type: 'string', multiple: true, default: [] },
  },
});
const id = positionals[0];
const scenario = SCENARIOS.find((s) => s.id === id);
if (scenario?.kind !== 'measured' || values.out === undefined) {
  process.stderr.write('usage: scenario-process.ts <B1…B6> --out <file> [--quick] [--part B4a]…\n');
  process.exit(2);
}

const started = performance.now();
let result: ScenarioResult;
try {
  const keymesh = await loadProductionBuild();
  const measured = await scenario.run(
    keymesh,
    { quick: values.quick, progress: (line) => process.stderr.write(`  ${line}\n`) },
    values.part,
  );
  result = { ...measured, seconds: (performance.now() - started) / 1_000 };
} catch (error) {
  result = failedResult(scenario.id, scenario.title, error, (performance.now() - started) / 1_000);
}
writeFileSync(values.out, JSON.stringify(result));
// Sockets in keep-alive or a pool left open by a failed scenario must not hold the runner up.
process.exit(0);
