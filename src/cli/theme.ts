import type { Palette } from './ansi.js';

/** Colours a key state by how usable the key is: green available, yellow resting, red out. */
export function paintState(colors: Palette, state: string): string {
  if (state === 'available') return colors.green(state);
  if (state === 'busy' || state === 'cooling' || state === 'draining') return colors.yellow(state);
  return colors.red(state);
}
