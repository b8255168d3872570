import { visibleLength } from './ansi.js';

/** A column of {@link renderTable}: its title and which side its cells hug. */
export interface Column {
  readonly title: string;
  readonly align?: 'left' | 'right';
}

function pad(text: string, width: number, align: 'left' | 'right'): string {
  const gap = ' '.repeat(Math.max(0, width - visibleLength(text)));
  return align === 'right' ? `${gap}${text}` : `${text}${gap}`;
}

/**
 * A plain-text table: a header line and one line per row, columns separated by two spaces and
 * padded to their widest cell (colour codes do not count). Trailing spaces are trimmed.
 */
export function renderTable(
  columns: readonly Column[],
  rows: ReadonlyArray<readonly string[]>,
  header: (text: string) => string = (text) => text,
): string[] {
  const widths = columns.map((column, i) =>
    Math.max(visibleLength(column.title), ...rows.map((row) => visibleLength(row[i] ?? ''))),
  );
  const line = (cells: readonly string[]) =>
    columns
      .map((column, i) => pad(cells[i] ?? '', widths[i] ?? 0, column.align ?? 'left'))
      .join('  ')
      .trimEnd();
  return [header(line(columns.map((c) => c.title))), ...rows.map((row) => line(row))];
}
