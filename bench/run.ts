/**
 * Every scenario of BENCH.md in one command, against the production build, in one table.
 *
 *   npm run bench                      # build, then B1 … B7 (≈ 2 minutes on 2 cores)
 *   npm run bench -- --quick           # shorter real-time runs (≈ 1 minute)
 *   npm run bench -- --only B1,B4c     # some scenarios (B4a … B4g select B4's sub-scenarios)
 *
 * The table goes to stdout, progress to stderr, every figure to bench/results/latest.json.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { PRODUCTION_BUILD } from './lib/keymesh.js';
import { commitOf, machine } from './lib/machine.js';
import { failedResult, formatMs, type Row, type ScenarioResult } from './lib/report.js';
import { renderTable } from './lib/table.js';
import { type MeasuredScenario, PART_IDS, SCENARIOS, type Scenario } from './scenarios/index.js';

const HELP = `Usage: npm run bench -- [--quick] [--only B1,B4c,…] [--help]

Runs the scenarios of BENCH.md against the production build (dist/, built by \`npm run bench\`),
each in its own node process, and prints one table: scenario, figure, value, target, the Python
seed's figure, and a verdict (✓ met, ✗ missed, — no target). Writes bench/results/latest.json.

  --quick        shorter real-time runs and fewer repeats (B1, B2, B5, B6), B4g's members for about
                 a simulated minute instead of five; B3, B4a … B4f, B7 unchanged
  --only <ids>   comma-separated: ${SCENARIOS.map((s) => s.id).join(', ')}, or ${PART_IDS.join(', ')} for parts of B4
  --help         this text
`;

const RESULTS = fileURLToPath(new URL('./results/', import.meta.url));
const SCENARIO_PROCESS = fileURLToPath(new URL('./scenario-process.ts', import.meta.url));

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${HELP}`);
  process.exit(2);
}

function parseOptions() {
  try {
    return parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string', multiple: true, default: [] },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    return fail(error instanceof Error ? error.message : String(error));
  }
}
const parsed = parseOptions();
if (parsed.values.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const quick = parsed.values.quick;
const wanted = parsed.values.only
  .flatMap((list) => list.split(','))
  .map((id) => id.trim())
  .filter(Boolean);

/** Scenario → the parts asked for (empty: all of it). */
const selection = new Map<Scenario, string[]>();
for (const id of wanted) {
  const scenario =
    SCENARIOS.find((s) => s.id.toLowerCase() === id.toLowerCase()) ??
    (PART_IDS.some((p) => p.toLowerCase() === id.toLowerCase())
      ? SCENARIOS.find((s) => id.toLowerCase().startsWith(s.id.toLowerCase()))
      : undefined);
  if (scenario === undefined) fail(`unknown scenario "${id}"`);
  const parts = selection.get(scenario) ?? [];
  const part = PART_IDS.find((p) => p.toLowerCase() === id.toLowerCase());
  selection.set(scenario, part === undefined ? parts : [...parts, part]);
}
if (selection.size === 0) for (const scenario of SCENARIOS) selection.set(scenario, []);
// A scenario asked for whole and in parts runs whole.
for (const id of wanted) {
  const whole = SCENARIOS.find((s) => s.id.toLowerCase() === id.toLowerCase());
  if (whole !== undefined) selection.set(whole, []);
}

if (!existsSync(PRODUCTION_BUILD))
  fail('dist/index.js is missing: `npm run bench` builds it first (npm run build)');
mkdirSync(RESULTS, { recursive: true });

/** Runs one scenario in a fresh node process; its progress lines and stdout go to our stderr. */
function runInProcess(scenario: MeasuredScenario, parts: readonly string[]): Promise<ScenarioResult> {
  const out = `${RESULTS}${scenario.id}.tmp`;
  rmSync(out, { force: true });
  const args = [
    '--expose-gc',
    '--import',
    'tsx',
    SCENARIO_PROCESS,
    scenario.id,
    '--out',
    out,
    ...(quick ? ['--quick'] : []),
    ...parts.flatMap((part) => ['--part', part]),
  ];
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 2, 2] });
    child.on('error', (error) => resolve(failedResult(scenario.id, scenario.title, error)));
    child.on('exit', (code, signal) => {
      const seconds = (performance.now() - started) / 1_000;
      if (existsSync(out)) {
        const result = JSON.parse(readFileSync(out, 'utf8')) as ScenarioResult;
        rmSync(out, { force: true });
        resolve({ ...result, seconds });
      } else {
        const why = signal === null ? `exit code ${code}` : `signal ${signal}`;
        resolve(
          failedResult(
            scenario.id,
            scenario.title,
            new Error(`the scenario process ended (${why}) without a result`),
            seconds,
          ),
        );
      }
    });
  });
}

const runStarted = performance.now();
const results: ScenarioResult[] = [];
for (const scenario of SCENARIOS.filter((s) => selection.has(s))) {
  const parts = selection.get(scenario) ?? [];
  const label = parts.length > 0 ? `${scenario.id} (${parts.join(', ')})` : scenario.id;
  let result: ScenarioResult;
  if (scenario.kind === 'measured') {
    const [full, short] = scenario.expectedSeconds;
    process.stderr.write(`▶ ${label} ${scenario.title} (≈ ${quick ? short : full} s)\n`);
    result = await runInProcess(scenario, parts);
    if (result.error !== undefined) process.stderr.write(`  ${scenario.id} failed: ${result.error}\n`);
    process.stderr.write(`  ${scenario.id} done in ${formatMs(result.seconds * 1_000)}\n`);
  } else {
    process.stderr.write(`▶ ${label} ${scenario.title}: not available yet\n`);
    result = { ...scenario.result(), seconds: 0 };
  }
  results.push(result);
}
const totalSeconds = (performance.now() - runStarted) / 1_000;

const rows: Row[] = results.flatMap((r) => r.rows);
process.stdout.write(`${renderTable(rows)}\n`);
const missed = rows.filter((r) => r.verdict === '✗').length;
const met = rows.filter((r) => r.verdict === '✓').length;
process.stdout.write(
  `\n${met} targets met, ${missed} missed; ${results.length} scenarios in ${formatMs(totalSeconds * 1_000)}${quick ? ' (--quick)' : ''}\n`,
);

const latest = {
  ...commitOf(),
  machine: machine(),
  date: new Date().toISOString(),
  quick,
  only: wanted,
  seconds: totalSeconds,
  scenarios: results,
};
writeFileSync(`${RESULTS}latest.json`, `${JSON.stringify(latest, null, 2)}\n`);
process.stderr.write(`results: bench/results/latest.json\n`);
