import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import packageJson from '../../package.json' with { type: 'json' };
import { KeyMeshError, StorageCorruptError, StorageError } from '../errors.js';
import type { StrategyName } from '../pool/strategies/types.js';
import {
  runStatechart,
  STATECHART_FORMATS,
  STATECHART_MACHINES,
  type StatechartOptions,
} from './commands/statechart.js';
import { runStatus } from './commands/status.js';
import { runDemo } from './demo/run-demo.js';
import { MAX_DEMO_KEYS } from './demo/scenario.js';
import { CliError, EXIT, EXIT_CODES_HELP, type ExitCode } from './exit-codes.js';
import type { CliIO } from './io.js';
import { DEFAULT_STORE_HELP, resolveStore, STORE_FORMS } from './store.js';

const STRATEGIES: readonly StrategyName[] = ['least-busy', 'round-robin', 'weighted', 'latency'];

/** Where the user started the CLI from, so that hints name a command that works there. */
export interface CliContext {
  /**
   * `'npm'` when run through the KeyMesh repository's own `npm run demo` / `npm run keymesh`:
   * hints then say `npm run …`. Otherwise (`'bin'`, the default: the installed package) they say
   * `npx keymesh …`, which works wherever the package is installed, locally or globally.
   */
  readonly launcher?: 'npm' | 'bin';
}

/** The launcher of a process with environment `env`: `'npm'` only for the repository's own scripts. */
export function launcherOf(env: Readonly<Record<string, string | undefined>>): 'npm' | 'bin' {
  const script = env.npm_lifecycle_event;
  return env.npm_package_name === packageJson.name && (script === 'demo' || script === 'keymesh')
    ? 'npm'
    : 'bin';
}

/** A parser for an integer option within `[min, max]`. */
function integer(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a whole number from ${min} to ${max}`);
    }
    return n;
  };
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 1_000) {
    throw new InvalidArgumentError('expected a number above 0 and at most 1000');
  }
  return n;
}

interface DemoFlags {
  readonly keys: number;
  readonly requests: number;
  readonly concurrency: number;
  readonly strategy: StrategyName;
  readonly store?: string;
  readonly speed: number;
  readonly fresh?: boolean;
  readonly plain?: boolean;
  readonly interval: number;
}

interface StatusFlags {
  readonly store?: string;
  readonly json?: boolean;
}

interface StatechartFlags {
  readonly format: StatechartOptions['format'];
}

/**
 * Builds the `keymesh` command line. Every command writes through `io`; `run` receives each
 * command's exit code.
 */
export function createProgram(
  io: CliIO,
  context: CliContext,
  run: (code: Promise<ExitCode> | ExitCode) => void,
): Command {
  const viaNpm = context.launcher === 'npm';
  const program = new Command('keymesh')
    .description(
      'KeyMesh: many rate-limited API keys as one self-healing pool. The CLI runs the demo, reads saved key state and draws the statecharts.',
    )
    .version(packageJson.version, '-v, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
    })
    .showSuggestionAfterError()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', `\n${EXIT_CODES_HELP}\n`);

  program
    .command('demo')
    .description(
      'Run a KeyPool against a local mock provider (127.0.0.1, fake keys) and watch it: keys with different limits, one revoked part-way, one flaky, one with a small per-minute quota. State is saved, so a second run starts where the first ended.',
    )
    .addOption(
      new Option('-k, --keys <n>', `keys in the pool (1–${MAX_DEMO_KEYS})`)
        .default(5)
        .argParser(integer(1, MAX_DEMO_KEYS)),
    )
    .addOption(
      new Option('-n, --requests <n>', 'requests to make').default(400).argParser(integer(1, 1_000_000)),
    )
    .addOption(
      new Option('-c, --concurrency <n>', 'requests in flight at once')
        .default(16)
        .argParser(integer(1, 10_000)),
    )
    .addOption(
      new Option('-s, --strategy <name>', 'how the pool picks a key')
        .choices(STRATEGIES)
        .default('least-busy'),
    )
    .addOption(
      new Option(
        '--store <store>',
        `where key state is saved: ${STORE_FORMS} (default: ${DEFAULT_STORE_HELP})`,
      ),
    )
    .addOption(
      new Option('--speed <x>', 'time compression: rate limits × x, latencies and the revocation delay ÷ x')
        .default(1)
        .argParser(positiveNumber),
    )
    .option('--fresh', 'forget the saved state first')
    .option(
      '--plain',
      'print progress lines instead of redrawing in place (always so when stdout is not a terminal)',
    )
    .addOption(
      new Option('--interval <ms>', 'how often progress lines are printed')
        .default(1_000)
        .argParser(integer(10, 600_000)),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  keymesh demo\n  keymesh demo --requests 1000 --concurrency 32 --strategy latency\n  keymesh demo --store json:.keymesh/demo.json --fresh\n  keymesh demo --requests 50 --speed 20 --plain',
    )
    .action((_options: unknown, command: Command) => {
      const flags = command.opts<DemoFlags>();
      // The store is named again only when the user chose one: without --store, both find the default.
      const store = flags.store === undefined ? '' : ` --store ${flags.store}`;
      run(
        resolveStore(flags.store).then((spec) =>
          runDemo(
            {
              keys: flags.keys,
              requests: flags.requests,
              concurrency: flags.concurrency,
              strategy: flags.strategy,
              store: spec,
              speed: flags.speed,
              fresh: flags.fresh === true,
              plain: flags.plain === true,
              intervalMs: flags.interval,
              rerun: viaNpm ? `npm run demo${store === '' ? '' : ` --${store}`}` : `npx keymesh demo${store}`,
              statusCommand: `${viaNpm ? 'npm run keymesh -- status' : 'npx keymesh status'}${store}`,
            },
            io,
          ),
        ),
      );
    });

  program
    .command('status')
    .description("Show every key's saved state: fingerprint, label, state, reason, cooldown left, counters.")
    .addOption(
      new Option('--store <store>', `the store to read: ${STORE_FORMS} (default: ${DEFAULT_STORE_HELP})`),
    )
    .option('--json', 'print JSON instead of a table')
    .addHelpText(
      'after',
      '\nThe store is only read, never created or changed. Keys are shown by fingerprint and label, never by secret.\n\nExamples:\n  keymesh status\n  keymesh status --store sqlite:/var/lib/app/keys.db --json\n  keymesh status --store json:.keymesh/keys.json',
    )
    .action((_options: unknown, command: Command) => {
      const flags = command.opts<StatusFlags>();
      run(resolveStore(flags.store).then((store) => runStatus({ store, json: flags.json === true }, io)));
    });

  program
    .command('statechart')
    .description('Print the key or pool machine, drawn from the machine itself.')
    .addArgument(new Argument('[machine]', 'which machine').choices(STATECHART_MACHINES).default('key'))
    .addOption(
      new Option(
        '-f, --format <format>',
        'mermaid (for Markdown), json (the machine config: wrap it in createMachine(…) to paste it into the Stately editor) or dot (Graphviz)',
      )
        .choices(STATECHART_FORMATS)
        .default('mermaid'),
    )
    .addHelpText(
      'after',
      '\nExamples:\n  keymesh statechart\n  keymesh statechart pool --format dot | dot -Tsvg > pool.svg\n  keymesh statechart key --format json > key.stately.json',
    )
    .action((machine: StatechartOptions['machine'], _options: unknown, command: Command) => {
      const flags = command.opts<StatechartFlags>();
      run(runStatechart({ machine, format: flags.format }, io));
    });

  return program;
}

/**
 * Runs `keymesh` with `argv` (the arguments after the program name) and resolves to the exit code.
 * Never rejects: errors are written to `io.stderr` and mapped to an {@link EXIT} code.
 */
export async function runCli(
  argv: readonly string[],
  io: CliIO,
  context: CliContext = {},
): Promise<ExitCode> {
  let result: Promise<ExitCode> | ExitCode = EXIT.ok;
  const program = createProgram(io, context, (code) => {
    result = code;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return await result;
  } catch (error) {
    return report(error, io);
  }
}

function report(error: unknown, io: CliIO): ExitCode {
  if (error instanceof CommanderError) {
    // Commander has already printed the help or the message.
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.ok;
    // `keymesh help <command>` exits 0; help shown because no command was given exits 1.
    if (error.code === 'commander.help' && error.exitCode === 0) return EXIT.ok;
    return EXIT.usage;
  }
  if (error instanceof CliError) {
    io.stderr.write(`keymesh: ${error.message}\n`);
    return error.exitCode;
  }
  if (error instanceof StorageError || error instanceof StorageCorruptError) {
    io.stderr.write(`keymesh: ${error.message}\n`);
    return EXIT.store;
  }
  if (error instanceof KeyMeshError) {
    io.stderr.write(`keymesh: ${error.message}\n`);
    return EXIT.failure;
  }
  const detail = error instanceof Error ? (error.stack ?? error.message) : String(error);
  io.stderr.write(`keymesh: unexpected error: ${detail}\n`);
  return EXIT.failure;
}
