/**
 * The README's TypeScript snippets are files under examples/readme/, which the test suite
 * type-checks and runs. Each is included verbatim after a marker line:
 *
 *   <!-- snippet: examples/readme/use.ts -->
 *   ```ts
 *   …the file…
 *   ```
 *
 * `npm run readme` rewrites every marked block from its file; test/examples/readme.test.ts fails
 * when a block differs from its file (or a ts block has no marker).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** One fenced code block of the README. */
export interface ReadmeBlock {
  /** The fence's language (`ts`, `sh`, `text`, …). */
  readonly lang: string;
  /** The block's content, with its final newline. */
  readonly code: string;
  /** The file named by the marker line right before the fence, if any. */
  readonly snippet: string | undefined;
  /** Offsets of the content within the README. */
  readonly start: number;
  readonly end: number;
}

const FENCE = /^(?:<!-- snippet: (\S+) -->\n)?```(\w*)\n([\s\S]*?)^```$/gm;

/** Every fenced block of `readme`, in order. */
export function readmeBlocks(readme: string): ReadmeBlock[] {
  return [...readme.matchAll(FENCE)].map((match) => {
    const code = match[3] ?? '';
    const end = (match.index ?? 0) + match[0].length - '```'.length;
    return { lang: match[2] ?? '', code, snippet: match[1], start: end - code.length, end };
  });
}

/** `readme` with every marked block replaced by its file's content (read with `read`). */
export function renderReadme(readme: string, read: (path: string) => string): string {
  let out = '';
  let at = 0;
  for (const block of readmeBlocks(readme)) {
    if (block.snippet === undefined) continue;
    out += readme.slice(at, block.start) + read(block.snippet);
    at = block.end;
  }
  return out + readme.slice(at);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = resolve(import.meta.dirname, '..');
  const path = resolve(root, 'README.md');
  const before = readFileSync(path, 'utf8');
  const after = renderReadme(before, (file) => readFileSync(resolve(root, file), 'utf8'));
  writeFileSync(path, after);
  console.log(after === before ? 'README.md: snippets up to date' : 'README.md: snippets rewritten');
}
