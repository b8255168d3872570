import { describeMachines, toDot, toMermaid, toStatelyConfig } from '../../machines/statechart.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import type { CliIO } from '../io.js';

/** Machines `keymesh statechart` can draw. */
export const STATECHART_MACHINES = ['key', 'pool'] as const;
/** Formats `keymesh statechart` can write. */
export const STATECHART_FORMATS = ['mermaid', 'json', 'dot'] as const;

/** Options of `keymesh statechart`. */
export interface StatechartOptions {
  readonly machine: (typeof STATECHART_MACHINES)[number];
  readonly format: (typeof STATECHART_FORMATS)[number];
}

/**
 * `keymesh statechart`: the key or pool machine drawn from the machine itself, as Mermaid, as the
 * machine config in JSON (Stately's editor imports it), or as Graphviz dot. The same text as the
 * files in `docs/statecharts/`.
 */
export function runStatechart(options: StatechartOptions, io: CliIO): ExitCode {
  const machine = describeMachines()[options.machine];
  const text =
    options.format === 'json'
      ? toStatelyConfig(machine)
      : `${options.format === 'dot' ? toDot(machine) : toMermaid(machine)}\n`;
  io.stdout.write(text);
  return EXIT.ok;
}
