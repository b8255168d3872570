import type { KeyMesh } from '../lib/keymesh.js';
import type { ScenarioOptions, ScenarioResult } from '../lib/report.js';
import { b1Scenario } from './b1-overhead.js';
import { b2Scenario } from './b2-handoff.js';
import { b3Scenario } from './b3-wakeup.js';
import { B4_IDS, type B4Id, b4Scenario } from './b4-limits.js';
import { b5Scenario } from './b5-http.js';
import { b6Scenario } from './b6-memory.js';
import { b7Scenario } from './b7-distributed.js';

/** A scenario of BENCH.md that measures something; it runs in its own process. */
export interface MeasuredScenario {
  readonly kind: 'measured';
  readonly id: string;
  readonly title: string;
  /** Rough wall-clock seconds (full run, `--quick`), for the progress lines. */
  readonly expectedSeconds: readonly [number, number];
  /** `parts`: the sub-scenarios asked for with `--only` (B4a …); empty for all. */
  run(
    keymesh: KeyMesh,
    options: ScenarioOptions,
    parts: readonly string[],
  ): Promise<Omit<ScenarioResult, 'seconds'>>;
}

/** A scenario that cannot run yet: its row says why, so that it does not vanish from the table. */
export interface UnavailableScenario {
  readonly kind: 'unavailable';
  readonly id: string;
  readonly title: string;
  result(): Omit<ScenarioResult, 'seconds'>;
}

export type Scenario = MeasuredScenario | UnavailableScenario;

/** `--only B4g`: the provider family (BENCH.md B4g). */
const B4G_PART = 'B4g';

const isB4Id = (part: string): part is B4Id => (B4_IDS as readonly string[]).includes(part);

export const SCENARIOS: readonly Scenario[] = [
  {
    kind: 'measured',
    id: 'B1',
    title: 'Overhead',
    expectedSeconds: [40, 20],
    run: (keymesh, options) => b1Scenario(keymesh, options),
  },
  {
    kind: 'measured',
    id: 'B2',
    title: 'Hand-off',
    expectedSeconds: [5, 2],
    run: (keymesh, options) => b2Scenario(keymesh, options),
  },
  {
    kind: 'measured',
    id: 'B3',
    title: 'Wake-up',
    expectedSeconds: [5, 5],
    run: (keymesh, options) => b3Scenario(keymesh, options),
  },
  {
    kind: 'measured',
    id: 'B4',
    title: 'Goodput under provider limits',
    expectedSeconds: [420, 90],
    run: (keymesh, options, parts) => {
      const only = parts.filter(isB4Id);
      const family = parts.length === 0 || parts.includes(B4G_PART);
      return b4Scenario(keymesh, options, parts.length === 0 ? B4_IDS : only, family);
    },
  },
  {
    kind: 'measured',
    id: 'B5',
    title: 'Real HTTP',
    expectedSeconds: [135, 60],
    run: (keymesh, options) => b5Scenario(keymesh, options),
  },
  {
    kind: 'measured',
    id: 'B6',
    title: 'Memory and lifecycle',
    expectedSeconds: [22, 6],
    run: (keymesh, options) => b6Scenario(keymesh, options),
  },
  {
    kind: 'unavailable',
    id: 'B7',
    title: 'Distributed (Redis)',
    result: b7Scenario,
  },
];

/** The sub-scenario ids `--only` accepts besides the scenario ids (B4a … B4g). */
export const PART_IDS: readonly string[] = [...B4_IDS, B4G_PART];
