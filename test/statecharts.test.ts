import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMachine } from 'xstate';
import { keyMachine } from '../src/machines/key.machine.js';
import {
  listTransitions,
  statechartFiles,
  toDot,
  toMermaid,
  toStatelyConfig,
} from '../src/machines/statechart.js';

const docsDir = resolve(import.meta.dirname, '..', 'docs', 'statecharts');

/** Every string under a `guard`, `actions`, `entry` or `exit` key, and every `after` key. */
function referencedNames(config: unknown): {
  guards: Set<string>;
  actions: Set<string>;
  delays: Set<string>;
} {
  const names = { guards: new Set<string>(), actions: new Set<string>(), delays: new Set<string>() };
  const collect = (into: Set<string>, value: unknown): void => {
    for (const item of Array.isArray(value) ? value : [value]) if (typeof item === 'string') into.add(item);
  };
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) for (const item of value) visit(item);
    if (typeof value !== 'object' || value === null) return;
    for (const [field, child] of Object.entries(value)) {
      if (field === 'guard') collect(names.guards, child);
      if (field === 'actions' || field === 'entry' || field === 'exit') collect(names.actions, child);
      if (field === 'after' && typeof child === 'object' && child !== null) {
        for (const delay of Object.keys(child)) names.delays.add(delay);
      }
      visit(child);
    }
  };
  visit(config);
  return names;
}

describe('committed statecharts', () => {
  const files = statechartFiles().map(({ path, content }) => [path, content] as const);
  it.each(files)('docs/statecharts/%s matches the machines', (path, content) => {
    const file = join(docsDir, path);
    const committed = existsSync(file) ? readFileSync(file, 'utf8') : '(missing)';
    expect(
      committed,
      `docs/statecharts/${path} is stale: run \`npm run statecharts\` and commit the result`,
    ).toBe(content);
  });
});

describe('key machine Mermaid', () => {
  const mermaid = toMermaid(keyMachine);

  it('is a stateDiagram-v2 that starts in routing', () => {
    expect(mermaid.split('\n').slice(0, 2)).toEqual(['stateDiagram-v2', '  [*] --> routing']);
  });

  it('shows every top-level state, and the exhausted sub-states inside its block', () => {
    for (const state of ['routing', 'available', 'busy', 'cooling', 'draining', 'drained']) {
      expect(mermaid).toMatch(new RegExp(`^  ${state}$`, 'm'));
    }
    const exhausted = /^ {2}state exhausted \{\n([\s\S]*?)\n {2}\}$/m.exec(mermaid)?.[1] ?? '';
    expect(exhausted).toContain('[*] --> failing');
    for (const sub of ['failing', 'probeReady', 'probing', 'dead']) {
      expect(exhausted).toMatch(new RegExp(`^ {4}${sub}$`, 'm'));
    }
  });

  it('labels timers by their named delay, not by the internal xstate.after event', () => {
    expect(mermaid).toMatch(/^ {2}cooling --> routing : .*after cooldownElapsed/m);
    expect(mermaid).toMatch(/^ {4}failing --> probeReady : after recoveryDue$/m);
    expect(mermaid).not.toContain('xstate.after');
  });

  it('labels guarded and eventless transitions with the guard name', () => {
    expect(mermaid).toMatch(/^ {2}available --> busy : lease\.grant \[grantFillsCapacity\]$/m);
    expect(mermaid).toMatch(/^ {2}routing --> cooling : always \[isCoolingDue\]$/m);
    expect(mermaid).toMatch(/^ {2}routing --> available : always$/m);
  });

  it('marks the final state and draws no edge twice', () => {
    expect(mermaid).toContain('drained --> [*]');
    const edges = mermaid.split('\n').filter((line) => line.includes(' --> '));
    expect(new Set(edges).size).toBe(edges.length);
  });

  it('omits targetless transitions, which the declared-transition list keeps', () => {
    // A targetless transition (counting a success while cooling) is not drawn as a self-loop …
    expect(mermaid).not.toMatch(/^\s*cooling --> cooling /m);
    // … while a targeted re-entry is (a spent quota re-arms the recovery timer).
    expect(mermaid).toMatch(/^\s*failing --> failing : lease\.fail \[isQuotaSpent\]/m);
    expect(listTransitions(keyMachine)).toContainEqual({
      source: 'key.cooling',
      trigger: 'lease.release',
      guard: null,
      targets: [],
      actions: ['recordSuccess'],
    });
  });

  it('is deterministic, and DOT draws the same number of edges', () => {
    expect(toMermaid(keyMachine)).toBe(mermaid);
    const mermaidEdges = mermaid.split('\n').filter((line) => / --> \w+ : /.test(line)).length;
    const dotEdges = toDot(keyMachine)
      .split('\n')
      .filter((line) => line.includes(' -> ') && line.includes('label=')).length;
    expect(dotEdges).toBe(mermaidEdges);
  });
});

describe('key machine Stately config', () => {
  const json = toStatelyConfig(keyMachine);
  const parsed: unknown = JSON.parse(json);

  it('round-trips through JSON.parse unchanged', () => {
    expect(JSON.stringify(parsed, null, 2)).toBe(json.trimEnd());
  });

  it('names the guards, actions and delays, each one implemented in setup', () => {
    const { guards, actions, delays } = referencedNames(parsed);
    expect([...guards]).toEqual(
      expect.arrayContaining(['noLeaseOut', 'grantFillsCapacity', 'isRevocation', 'isCoolingDue']),
    );
    expect([...actions]).toEqual(expect.arrayContaining(['recordGrant', 'applyRateLimit', 'notifyReady']));
    expect([...delays].sort()).toEqual(['cooldownElapsed', 'recoveryDue']);
    const implemented = keyMachine.implementations;
    for (const guard of guards) expect(implemented.guards, `guard ${guard}`).toHaveProperty([guard]);
    for (const action of actions) expect(implemented.actions, `action ${action}`).toHaveProperty([action]);
    for (const delay of delays) expect(implemented.delays, `delay ${delay}`).toHaveProperty([delay]);
  });

  it('rebuilds, via createMachine, a machine with the same chart', () => {
    const rebuilt = createMachine(parsed as Parameters<typeof createMachine>[0]);
    expect(toMermaid(rebuilt)).toBe(toMermaid(keyMachine));
  });
});
