import type { Row } from './report.js';

const COLUMNS: readonly { readonly title: string; readonly cell: (row: Row) => string }[] = [
  { title: 'scenario', cell: (r) => r.scenario },
  { title: 'figure', cell: (r) => r.figure },
  { title: 'value', cell: (r) => r.value },
  { title: 'target', cell: (r) => r.target },
  { title: 'seed (Python 0.1.2)', cell: (r) => r.seed },
  { title: '', cell: (r) => r.verdict },
];

/** The rows as a plain-text table; a scenario's name is printed once, on its first row. */
export function renderTable(rows: readonly Row[]): string {
  const cells = rows.map((row, i) =>
    COLUMNS.map((column, c) =>
      c === 0 && i > 0 && rows[i - 1]?.scenario === row.scenario ? '' : column.cell(row),
    ),
  );
  const widths = COLUMNS.map((column, c) =>
    Math.max(column.title.length, ...cells.map((line) => line[c]?.length ?? 0)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((value, c) => value.padEnd(widths[c] ?? 0))
      .join('  ')
      .trimEnd();
  const header = line(COLUMNS.map((c) => c.title));
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  return [header, rule, ...cells.map(line)].join('\n');
}
