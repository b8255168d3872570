import type { AnyStateMachine, AnyStateNode, AnyTransitionDefinition } from 'xstate';
import { keyMachine } from './key.machine.js';
import { poolMachine } from './pool.machine.js';

/** One transition exactly as the machine declares it, in plain data (node ids, names). */
export interface StatechartTransition {
  /** Id of the declaring state node, e.g. `key.exhausted.probing`; the machine id for the root. */
  readonly source: string;
  /** What fires it: the event type, `after <delay>` for a timer, `always` for an eventless one. */
  readonly trigger: string;
  /** Guard name, or `null` when unguarded. */
  readonly guard: string | null;
  /** Target state node ids; empty for a targetless transition (context only, or ignored). */
  readonly targets: readonly string[];
  /** Action names in order; inline functions appear by their function name or as `inline`. */
  readonly actions: readonly string[];
}

/** A transition as drawn: resolved state nodes and one label. */
interface Edge {
  readonly from: AnyStateNode;
  readonly to: AnyStateNode;
  readonly label: string;
}

interface Declared {
  readonly node: AnyStateNode;
  readonly definition: AnyTransitionDefinition;
  /** The event the transition is selected on (`''` for `always`); decides shadowing. */
  readonly eventType: string;
  readonly trigger: string;
  readonly guard: string | null;
  /** False when an earlier unguarded candidate for the same event always wins. */
  readonly reachable: boolean;
}

/** Name of a guard, action or delay reference: a string, `{ type }`, or a function. */
function referenceName(reference: unknown): string {
  if (typeof reference === 'string') return reference;
  if ((typeof reference === 'object' || typeof reference === 'function') && reference !== null) {
    // XState's built-in action creators carry a `type` such as `xstate.assign`.
    if ('type' in reference && typeof reference.type === 'string') return reference.type;
    if (typeof reference === 'function' && reference.name !== '') return reference.name;
  }
  if (typeof reference === 'number') return `${reference}ms`;
  return 'inline';
}

function childNodes(node: AnyStateNode): AnyStateNode[] {
  return Object.values<AnyStateNode>(node.states).filter((child) => child.type !== 'history');
}

function allNodes(node: AnyStateNode): AnyStateNode[] {
  return [node, ...childNodes(node).flatMap(allNodes)];
}

function isWithin(node: AnyStateNode, ancestor: AnyStateNode): boolean {
  for (let current: AnyStateNode | undefined = node; current; current = current.parent) {
    if (current === ancestor) return true;
  }
  return false;
}

/** A history target is drawn as its parent: the chart has no history pseudo-states. */
function drawnTarget(node: AnyStateNode): AnyStateNode {
  return node.type === 'history' && node.parent ? node.parent : node;
}

function statePath(node: AnyStateNode): string {
  return node.path.join('.');
}

/**
 * Every transition of every node, in declaration order. XState's `transitions` map holds `on`
 * followed by the delayed (`after`) transitions; `always` is appended last.
 */
function declaredTransitions(machine: AnyStateMachine): Declared[] {
  const declared: Declared[] = [];
  for (const node of allNodes(machine.root)) {
    const delays = new Map<string, string>(node.after.map((t) => [t.eventType, referenceName(t.delay)]));
    const lists: Array<[string, readonly AnyTransitionDefinition[]]> = [...node.transitions.entries()];
    if (node.always) lists.push(['', node.always]);
    for (const [eventType, candidates] of lists) {
      let shadowed = false;
      for (const definition of candidates) {
        const delay = delays.get(eventType);
        const trigger = eventType === '' ? 'always' : delay === undefined ? eventType : `after ${delay}`;
        const guard = definition.guard === undefined ? null : referenceName(definition.guard);
        declared.push({ node, definition, eventType, trigger, guard, reachable: !shadowed });
        if (guard === null) shadowed = true;
      }
    }
  }
  return declared;
}

/**
 * Lists every transition the machine declares, in declaration order, targetless ones included.
 * A transition declared on a parent (or the root) is listed once, on the parent.
 */
export function listTransitions(machine: AnyStateMachine): StatechartTransition[] {
  return declaredTransitions(machine).map(({ node, definition, trigger, guard }) => ({
    source: node.id,
    trigger,
    guard,
    targets: (definition.target ?? []).map((target) => drawnTarget(target).id),
    actions: definition.actions.map(referenceName),
  }));
}

/**
 * The state changes to draw. A transition declared on a parent is inherited by every descendant
 * that does not handle the event unconditionally itself, so it is drawn from the parent's box
 * when it holds for the whole box, otherwise from each inheriting child. States that never see an
 * event (transient ones with an unguarded `always`, top-level final states) inherit nothing.
 * Targetless transitions are not drawn: they change context only, never the state.
 */
function drawnEdges(machine: AnyStateMachine): Edge[] {
  const root = machine.root;
  // Wildcard descriptors (`*`, `lease.*`) take the event too, as in XState's own selection.
  const handlesUnconditionally = (node: AnyStateNode, eventType: string): boolean =>
    eventType !== '' &&
    [...node.transitions].some(
      ([descriptor, candidates]) =>
        (descriptor === eventType ||
          descriptor === '*' ||
          (descriptor.endsWith('.*') && eventType.startsWith(descriptor.slice(0, -1)))) &&
        candidates.some((t) => t.guard === undefined),
    );
  const shadowedBelow = (node: AnyStateNode, eventType: string): boolean =>
    childNodes(node).some(
      (child) => handlesUnconditionally(child, eventType) || shadowedBelow(child, eventType),
    );
  const seesEvents = (node: AnyStateNode): boolean =>
    !(node.always ?? []).some((t) => t.guard === undefined) &&
    !(node.type === 'final' && node.parent === root);

  const drawFrom = (
    node: AnyStateNode,
    eventType: string,
    targets: readonly AnyStateNode[],
    declaring: boolean,
  ): AnyStateNode[] => {
    if (!declaring && (!seesEvents(node) || handlesUnconditionally(node, eventType))) return [];
    const children = childNodes(node);
    if (children.length === 0) return [node];
    // Mermaid cannot draw an edge from a box into its own contents; draw it from the children.
    const boxFits =
      node !== root && !shadowedBelow(node, eventType) && !targets.some((target) => isWithin(target, node));
    return boxFits ? [node] : children.flatMap((child) => drawFrom(child, eventType, targets, false));
  };

  const edges: Edge[] = [];
  const seen = new Set<string>();
  for (const { node, definition, eventType, trigger, guard, reachable } of declaredTransitions(machine)) {
    if (!reachable || !definition.target || definition.target.length === 0) continue;
    // Re-entering the whole machine has no box to point at; the table lists it.
    const targets = definition.target.map(drawnTarget).filter((target) => target !== root);
    const label = guard === null ? trigger : `${trigger} [${guard}]`;
    for (const from of drawFrom(node, eventType, targets, true)) {
      for (const to of targets) {
        const identity = `${from.id}\u0000${to.id}\u0000${label}`;
        if (seen.has(identity)) continue;
        seen.add(identity);
        edges.push({ from, to, label });
      }
    }
  }
  return edges;
}

/** Edges between the same two states become one, labels joined in first-seen order. */
function mergedEdges(machine: AnyStateMachine): Edge[] {
  const merged = new Map<string, { from: AnyStateNode; to: AnyStateNode; labels: string[] }>();
  for (const { from, to, label } of drawnEdges(machine)) {
    const pair = `${from.id}\u0000${to.id}`;
    const existing = merged.get(pair);
    if (existing) existing.labels.push(label);
    else merged.set(pair, { from, to, labels: [label] });
  }
  return [...merged.values()].map(({ from, to, labels }) => ({ from, to, label: labels.join(', ') }));
}

/** Mermaid ids: the state key where it is unique in the machine, the path otherwise. */
function mermaidIds(machine: AnyStateMachine): Map<AnyStateNode, string> {
  const nodes = allNodes(machine.root).filter((node) => node !== machine.root);
  const keyCounts = new Map<string, number>();
  for (const node of nodes) keyCounts.set(node.key, (keyCounts.get(node.key) ?? 0) + 1);
  const ids = new Map<AnyStateNode, string>();
  for (const node of nodes) {
    const name = keyCounts.get(node.key) === 1 ? node.key : node.path.join('_');
    ids.set(node, name.replace(/[^A-Za-z0-9_]/g, '_'));
  }
  return ids;
}

/** The deepest node that strictly contains both ends; the edge is written in its block. */
function enclosingNode(a: AnyStateNode, b: AnyStateNode, root: AnyStateNode): AnyStateNode {
  const ancestors = new Set<AnyStateNode>();
  for (let node = a.parent; node; node = node.parent) ancestors.add(node);
  for (let node = b.parent; node; node = node.parent) if (ancestors.has(node)) return node;
  return root;
}

function mermaidLabel(text: string): string {
  // `;` ends a statement and `#` starts an entity code in Mermaid labels.
  return text.replace(/;/g, ',').replace(/#/g, '');
}

/**
 * Renders the machine as a Mermaid `stateDiagram-v2` that GitHub renders in a ```mermaid block.
 *
 * - Compound states are `state exhausted { … }` blocks with their own `[*] -->` initial arrow;
 *   final states get `--> [*]`; parallel regions are separated by `--`.
 * - A label is the event type, plus `[guard]` when guarded; timers read `after <delayName>`
 *   (not `xstate.after.…`), eventless transitions `always [guard]`.
 * - A transition declared on a parent is drawn from the parent's box when every child inherits
 *   it, otherwise from each child that does (children that handle the event unconditionally, and
 *   transient states, do not). Root-level transitions are drawn from each top-level state.
 * - Targetless transitions are omitted: they only update context, which a diagram cannot show
 *   ({@link listTransitions} has them). Identical edges are drawn once, and edges between the same
 *   two states are merged into one with comma-separated labels.
 * - Output is deterministic: states in declaration order, edges in declaration order, each edge
 *   written inside the innermost block that contains both ends (after that block's states).
 */
export function toMermaid(machine: AnyStateMachine): string {
  const root = machine.root;
  const ids = mermaidIds(machine);
  const idOf = (node: AnyStateNode): string => ids.get(node) ?? '[*]';
  const edgesByScope = new Map<AnyStateNode, Edge[]>();
  for (const edge of mergedEdges(machine)) {
    const scope = enclosingNode(edge.from, edge.to, root);
    edgesByScope.set(scope, [...(edgesByScope.get(scope) ?? []), edge]);
  }

  const block = (node: AnyStateNode, depth: number): string[] => {
    const pad = '  '.repeat(depth);
    const lines: string[] = [];
    const initial = node.type === 'compound' ? node.initial.target[0] : undefined;
    if (initial) lines.push(`${pad}[*] --> ${idOf(initial)}`);
    childNodes(node).forEach((child, i) => {
      if (node.type === 'parallel' && i > 0) lines.push(`${pad}--`);
      const id = idOf(child);
      if (id !== child.key) lines.push(`${pad}state "${mermaidLabel(child.key)}" as ${id}`);
      if (childNodes(child).length > 0)
        lines.push(`${pad}state ${id} {`, ...block(child, depth + 1), `${pad}}`);
      else if (id === child.key) lines.push(`${pad}${id}`);
      if (child.type === 'final') lines.push(`${pad}${id} --> [*]`);
    });
    for (const edge of edgesByScope.get(node) ?? []) {
      lines.push(`${pad}${idOf(edge.from)} --> ${idOf(edge.to)} : ${mermaidLabel(edge.label)}`);
    }
    return lines;
  };

  return ['stateDiagram-v2', ...block(root, 1)].join('\n');
}

function dotString(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * Renders the machine as a Graphviz DOT digraph with the same edges as {@link toMermaid}.
 * Compound states are clusters (`cluster_<id>`) holding a point that marks the initial arrow;
 * an edge from or to a compound state attaches to that point and is clipped at the cluster
 * (`compound=true`, `ltail` / `lhead`). Final states have a double border. Node ids are the
 * XState state ids, so they are unique. Render with `dot -Tsvg key.dot`.
 */
export function toDot(machine: AnyStateMachine): string {
  const root = machine.root;
  const anchor = (node: AnyStateNode): string => dotString(`${node.id}:initial`);
  const cluster = (node: AnyStateNode): string => dotString(`cluster_${node.id}`);
  const isBox = (node: AnyStateNode): boolean => childNodes(node).length > 0;

  const block = (node: AnyStateNode, depth: number): string[] => {
    const pad = '  '.repeat(depth);
    const initial = node.type === 'compound' ? node.initial.target[0] : undefined;
    // Every box has the point: edges from or to the box attach to it.
    const lines = [
      `${pad}${anchor(node)} [shape=point, width=0.12, label=""${initial ? '' : ', style=invis'}];`,
    ];
    if (initial) {
      const head = isBox(initial) ? `${anchor(initial)} [lhead=${cluster(initial)}]` : dotString(initial.id);
      lines.push(`${pad}${anchor(node)} -> ${head};`);
    }
    for (const child of childNodes(node)) {
      if (isBox(child)) {
        lines.push(
          `${pad}subgraph ${cluster(child)} {`,
          `${pad}  label=${dotString(child.key)};`,
          `${pad}  style=rounded;`,
          ...block(child, depth + 1),
          `${pad}}`,
        );
      } else {
        const final = child.type === 'final' ? ', peripheries=2' : '';
        lines.push(`${pad}${dotString(child.id)} [label=${dotString(child.key)}${final}];`);
      }
    }
    return lines;
  };

  const edgeLines = mergedEdges(machine).map(({ from, to, label }) => {
    const attributes = [`label=${dotString(label)}`];
    if (isBox(from)) attributes.push(`ltail=${cluster(from)}`);
    if (isBox(to)) attributes.push(`lhead=${cluster(to)}`);
    const tail = isBox(from) ? anchor(from) : dotString(from.id);
    const head = isBox(to) ? anchor(to) : dotString(to.id);
    return `  ${tail} -> ${head} [${attributes.join(', ')}];`;
  });

  return [
    `digraph ${dotString(root.id)} {`,
    '  compound=true;',
    '  node [shape=box, style=rounded, fontname="Helvetica"];',
    '  edge [fontname="Helvetica", fontsize=10];',
    ...block(root, 1),
    ...edgeLines,
    '}',
  ].join('\n');
}

/**
 * Returns the machine's config (`machine.config`) as pretty-printed JSON with a final newline:
 * the state tree with `on`, `after`, `always`, descriptions and the guard, action and delay
 * *names*. Functions (the context factory, any inline action or guard) are dropped by JSON, so
 * the file is faithful only because every behaviour is named in `setup`. Stately's editor imports
 * it as `createMachine(<this JSON>)`.
 */
export function toStatelyConfig(machine: AnyStateMachine): string {
  return `${JSON.stringify(machine.config, null, 2)}\n`;
}

/** The machines documented in `docs/statecharts/`, by file name. */
export function describeMachines(): { readonly key: AnyStateMachine; readonly pool: AnyStateMachine } {
  return { key: keyMachine, pool: poolMachine };
}

/** A generated file: path relative to `docs/statecharts/`, and its full content. */
export interface StatechartFile {
  readonly path: string;
  readonly content: string;
}

function markdownCell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function code(text: string): string {
  return `\`${markdownCell(text)}\``;
}

/** A table padded to column width, as Biome's Markdown formatter writes it (so `biome check` passes). */
function markdownTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = header.map((title, column) =>
    Math.max(3, title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  const line = (cells: readonly string[]): string =>
    `| ${widths.map((width, column) => (cells[column] ?? '').padEnd(width)).join(' | ')} |`;
  return [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)];
}

function statechartMarkdown(name: string, machine: AnyStateMachine): string {
  const root = machine.root;
  const path = (id: string): string => (id === root.id ? '(any)' : id.slice(root.id.length + 1));
  const states = allNodes(root)
    .filter((node) => node !== root)
    .map((node) => [code(statePath(node)), markdownCell(node.description ?? '')]);
  const transitions = listTransitions(machine).map((t) => [
    code(path(t.source)),
    code(t.trigger),
    t.guard === null ? '' : code(t.guard),
    t.targets.length === 0 ? '—' : t.targets.map((id) => code(path(id))).join(', '),
    t.actions.length === 0 ? '—' : t.actions.map(code).join(', '),
  ]);
  return [
    `# The \`${root.id}\` machine`,
    '',
    `<!-- Generated from the ${name} machine in src/machines by \`npm run statecharts\`. Do not edit. -->`,
    '',
    ...(root.description ? [root.description, ''] : []),
    'The chart shows every state and every transition that changes the state. A label is the event,',
    'with its guard in brackets; `after <delay>` is a timer (a named delay in `setup`), `always` an',
    'eventless transition, taken as soon as its guard holds. A transition declared on a parent state',
    'applies in each child without an unguarded transition of its own for that event: it is drawn from',
    'the parent box, or from each child that inherits it. Edges between the same two states are merged,',
    'labels separated by commas. Transitions without a target only update context and are not drawn;',
    'the table of declared transitions below has them all.',
    '',
    '```mermaid',
    toMermaid(machine),
    '```',
    '',
    '## States',
    '',
    ...markdownTable(['State', 'What it means'], states),
    '',
    '## Transitions as declared',
    '',
    'In declaration order, which is also priority order: for an event, the first candidate whose guard',
    'holds is taken, and a state’s own candidates come before its parent’s. `(any)` is the machine',
    'itself. A target `—` means the transition stays in the state (with no actions: the event is ignored).',
    '',
    `<details><summary>${transitions.length} transitions</summary>`,
    '',
    ...markdownTable(['From', 'Event', 'Guard', 'To', 'Actions'], transitions),
    '',
    '</details>',
    '',
    '## Open it in Stately',
    '',
    `\`${name}.stately.json\` is the machine’s config (\`machine.config\`) as JSON. Guards, actions and`,
    'delays are kept by name; functions such as the context factory are dropped. To edit the chart',
    'visually, open a machine in the Stately editor, choose **Import**, and paste',
    `\`createMachine(\` + the content of \`${name}.stately.json\` + \`)\`. Import replaces the machine that`,
    `is open. \`${name}.dot\` is the same chart for Graphviz: \`dot -Tsvg ${name}.dot > ${name}.svg\`.`,
    '',
  ].join('\n');
}

/**
 * Renders every file of `docs/statecharts/` for the given machines (by default
 * {@link describeMachines}): `<name>.md`, `<name>.stately.json` and `<name>.dot` per machine.
 * The script writes them and the test compares them with the committed copies.
 */
export function statechartFiles(
  machines: Readonly<Record<string, AnyStateMachine>> = describeMachines(),
): StatechartFile[] {
  return Object.entries(machines).flatMap(([name, machine]) => [
    { path: `${name}.md`, content: statechartMarkdown(name, machine) },
    { path: `${name}.stately.json`, content: toStatelyConfig(machine) },
    { path: `${name}.dot`, content: `${toDot(machine)}\n` },
  ]);
}
