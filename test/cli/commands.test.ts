import { describe, expect, it } from 'vitest';
import packageJson from '../../package.json' with { type: 'json' };
import { keyMachine } from '../../src/index.js';
import { toMermaid } from '../../src/machines/statechart.js';
import { generated, runKeymesh } from './support.js';

describe('keymesh (command line)', () => {
  it('lists its commands and the meaning of its exit codes in --help', async () => {
    const run = await runKeymesh(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: keymesh \[options\] \[command\]/);
    for (const command of ['demo', 'status', 'statechart'])
      expect(run.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    expect(run.stdout).toContain('Exit codes:');
    expect(run.stdout).toMatch(/^ {2}3 +the store could not be read/m);
  });

  it('has --help on every command, naming its options', async () => {
    const [demo, status, statechart] = await Promise.all([
      runKeymesh(['demo', '--help']),
      runKeymesh(['status', '--help']),
      runKeymesh(['help', 'statechart']),
    ]);
    expect(demo.code).toBe(0);
    for (const option of [
      '--keys',
      '--requests',
      '--concurrency',
      '--strategy',
      '--store',
      '--speed',
      '--fresh',
      '--plain',
    ]) {
      expect(demo.stdout).toContain(option);
    }
    expect(demo.stdout).toMatch(
      /\(default: \.keymesh\/demo\.db, or \.keymesh\/demo\.json when\s+better-sqlite3 is not installed\)/,
    );
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/--store <store>/);
    expect(status.stdout).toMatch(/--json/);
    expect(statechart.code).toBe(0);
    expect(statechart.stdout.replace(/\s+/g, ' ')).toMatch(/choices: "mermaid", "json", "dot"/);
  });

  it('prints the package version', async () => {
    const run = await runKeymesh(['--version']);
    expect(run).toMatchObject({ code: 0, stdout: `${packageJson.version}\n` });
  });

  it('exits 2 with usage on stderr when no command is given', async () => {
    const run = await runKeymesh([]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Usage: keymesh');
    expect(run.stdout).toBe('');
  });

  it('exits 2 and suggests the command meant for an unknown one', async () => {
    const run = await runKeymesh(['stauts']);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain("unknown command 'stauts'");
    expect(run.stderr).toContain('(Did you mean status?)');
  });

  it('exits 2 naming the option for a bad value, before doing anything', async () => {
    const [requests, strategy, speed, unknown] = await Promise.all([
      runKeymesh(['demo', '--requests', '0']),
      runKeymesh(['demo', '--strategy', 'fastest']),
      runKeymesh(['demo', '--speed', 'warp']),
      runKeymesh(['status', '--stroe', 'x.db']),
    ]);
    expect(requests.code).toBe(2);
    expect(requests.stderr).toContain("option '-n, --requests <n>' argument '0' is invalid");
    expect(strategy.code).toBe(2);
    expect(strategy.stderr).toContain('Allowed choices are least-busy, round-robin, weighted, latency');
    expect(speed.code).toBe(2);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('(Did you mean --store?)');
    for (const run of [requests, strategy, speed, unknown]) expect(run.stdout).toBe('');
  });
});

describe('keymesh statechart', () => {
  it('draws the key machine in Mermaid by default', async () => {
    const run = await runKeymesh(['statechart']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(`${toMermaid(keyMachine)}\n`);
    expect(run.stdout).toMatch(/^stateDiagram-v2/);
  });

  it('writes the same dot and JSON as docs/statecharts, generated from the machines', async () => {
    const [dot, json] = await Promise.all([
      runKeymesh(['statechart', 'pool', '--format', 'dot']),
      runKeymesh(['statechart', 'key', '-f', 'json']),
    ]);
    expect(dot.code).toBe(0);
    expect(dot.stdout).toBe(generated('pool.dot'));
    expect(json.code).toBe(0);
    expect(json.stdout).toBe(generated('key.stately.json'));
    expect(JSON.parse(json.stdout)).toHaveProperty('states.available');
  });

  it('exits 2 for an unknown machine or format', async () => {
    const [machine, format] = await Promise.all([
      runKeymesh(['statechart', 'lease']),
      runKeymesh(['statechart', '--format', 'png']),
    ]);
    expect(machine.code).toBe(2);
    expect(machine.stderr).toContain('Allowed choices are key, pool');
    expect(format.code).toBe(2);
  });
});
