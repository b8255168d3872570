/** The few ANSI escape sequences the CLI uses: colours and in-place redraw. No TUI library needed. */

const ESC = '\u001b[';

/** Colour functions; the identity when colour is off. */
export interface Palette {
  readonly bold: (text: string) => string;
  readonly dim: (text: string) => string;
  readonly green: (text: string) => string;
  readonly yellow: (text: string) => string;
  readonly red: (text: string) => string;
  readonly cyan: (text: string) => string;
}

const paint =
  (open: number, close: number) =>
  (text: string): string =>
    `${ESC}${open}m${text}${ESC}${close}m`;

const identity = (text: string): string => text;

/** A palette that colours, or one that does not. */
export function palette(enabled: boolean): Palette {
  if (!enabled)
    return {
      bold: identity,
      dim: identity,
      green: identity,
      yellow: identity,
      red: identity,
      cyan: identity,
    };
  return {
    bold: paint(1, 22),
    dim: paint(2, 22),
    green: paint(32, 39),
    yellow: paint(33, 39),
    red: paint(31, 39),
    cyan: paint(36, 39),
  };
}

/**
 * Whether to colour output: on a terminal unless `NO_COLOR` is set (https://no-color.org), or
 * anywhere when `FORCE_COLOR` is set to something other than `0`.
 */
export function colorEnabled(isTTY: boolean, env: Readonly<Record<string, string | undefined>>): boolean {
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return isTTY;
}

const ANSI_PATTERN = new RegExp(`${ESC.replace('[', '\\[')}[0-9;?]*[A-Za-z]`, 'g');

/** The text without ANSI escape sequences (for measuring and for tests). */
export function stripAnsi(text: string): string {
  return text.replace(ANSI_PATTERN, '');
}

/** Visible width of a line (escape sequences excluded). */
export function visibleLength(text: string): number {
  return [...stripAnsi(text)].length;
}

/** Cuts a line to `width` visible characters, keeping escape sequences (colours still close). */
export function truncate(text: string, width: number): string {
  if (visibleLength(text) <= width) return text;
  let out = '';
  let shown = 0;
  let i = 0;
  while (i < text.length && shown < width - 1) {
    ANSI_PATTERN.lastIndex = i;
    const match = text.startsWith(ESC, i) ? ANSI_PATTERN.exec(text) : null;
    if (match && match.index === i) {
      out += match[0];
      i += match[0].length;
      continue;
    }
    const char = String.fromCodePoint(text.codePointAt(i) ?? 32);
    out += char;
    i += char.length;
    shown++;
  }
  return `${out}…${ESC}0m`;
}

/** Moves the cursor to the start of the line `lines` above and clears everything below it. */
export function rewind(lines: number): string {
  return lines > 0 ? `${ESC}${lines}F${ESC}J` : `\r${ESC}J`;
}

export const HIDE_CURSOR = `${ESC}?25l`;
export const SHOW_CURSOR = `${ESC}?25h`;
