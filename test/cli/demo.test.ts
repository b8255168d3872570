import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ANSI, runKeymesh, tempFolder } from './support.js';

const temp = tempFolder('demo');

/** A short, fast demo: tiny request count, high speed, frequent plain lines. */
const quick = (store: string, ...extra: string[]) => [
  'demo',
  '--requests',
  '60',
  '--concurrency',
  '8',
  '--speed',
  '25',
  '--interval',
  '50',
  '--store',
  store,
  ...extra,
];

const LABELS = ['alpha', 'bravo', 'charlie', 'delta', 'echo'];

/** The summary's per-key rows: label → [state, reason, ok, 429, fail]. */
function summaryRows(stdout: string): Map<string, readonly [string, string, number, number, number]> {
  const summary = stdout.slice(stdout.indexOf('Done in'));
  const rows = new Map<string, readonly [string, string, number, number, number]>();
  for (const match of summary.matchAll(
    /^ {2}(\w+)\s+(available|busy|cooling|exhausted|draining)\s+(\S+)\s+(\d+)\s+(\d+)\s+(\d+)/gm,
  )) {
    const [ok, limited, failed] = [match[4], match[5], match[6]].map(Number);
    rows.set(match[1] ?? '', [match[2] ?? '', match[3] ?? '', ok ?? 0, limited ?? 0, failed ?? 0]);
  }
  return rows;
}

// Each test runs the demo in child processes: allow for a busy machine running the whole suite.
describe('keymesh demo', { timeout: 60_000 }, () => {
  it('serves every request over real HTTP and ends with the summary, in plain lines off a terminal', async () => {
    const store = join(await temp(), 'demo.db');
    const run = await runKeymesh(quick(store));
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const out = run.stdout;
    expect(out).not.toMatch(ANSI);
    expect(out).toMatch(
      /^KeyMesh demo: 60 requests, 8 at a time, through keymeshFetch and one KeyPool \(least-busy/,
    );
    expect(out).toMatch(/^mock provider http:\/\/127\.0\.0\.1:\d+ /m);
    expect(out).toContain(`state kept in sqlite:${store}`);
    expect(out).not.toContain('restored');

    const progress = out.split('\n').filter((line) => /^\[\s*\d+\.\ds\] \d+\/60 done · /.test(line));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.at(-1)).toMatch(/ 60\/60 done · [\d.]+ req\/s · \d+ × 429 · \d+ retried · alpha=\S+/);

    expect(out).toMatch(/^Done in [\d.]+ m?s: 60 of 60 requests served, 0 failed$/m);
    expect(out).toMatch(/^ {2}goodput {3}[\d.]+ req\/s of [\d.]+ req\/s capacity \([\d.]+ %\)$/m);
    expect(out).toMatch(/^ {2}429s {6}\d+ of \d+ calls \([\d.]+ %\); \d+ attempts retried on another key$/m);
    expect(out).toMatch(/^ {2}wait {6}p50 [\d.]+ m?s · p90 [\d.]+ m?s · p99 [\d.]+ m?s · max [\d.]+ m?s/m);
    expect(out).toMatch(/^ {2}key\s+state\s+reason\s+ok\s+429\s+fail\s+latency$/m);
    expect([...summaryRows(out).keys()]).toEqual(LABELS);
    expect(out).toMatch(new RegExp(`^  state saved to sqlite:${store}$`, 'm'));
    expect(out).toContain(`  run \`npx keymesh demo --store ${store}\` again`);
    expect(out).toContain(`  read it with \`npx keymesh status --store ${store}\``);
    expect(out).not.toMatch(/sk-demo-fake/);
  });

  it('restores the keys on a second run from the same store, as the first left them', async () => {
    const store = join(await temp(), 'demo.db');
    const first = await runKeymesh(quick(store, '--requests', '120', '--speed', '10'));
    expect(first.code).toBe(0);
    const second = await runKeymesh(quick(store));
    expect(second.code).toBe(0);
    const restored = second.stdout.slice(second.stdout.indexOf('restored '), second.stdout.indexOf('\n\n'));
    expect(restored).toMatch(new RegExp(`^restored \\d keys? from sqlite:${store}:$`, 'm'));
    for (const [label, [state, reason]] of summaryRows(first.stdout)) {
      if (state === 'exhausted' && reason === 'revoked') {
        expect(restored).toMatch(
          new RegExp(`^ {2}${label}\\s+exhausted \\(revoked\\): stays out until reset`, 'm'),
        );
      } else if (state === 'cooling') {
        expect(restored).toMatch(
          new RegExp(
            `^ {2}${label}\\s+(still cooling \\(${reason}\\): (\\d+ m )?[\\d.]+ m?s left|available, \\d+ ok so far)`,
            'm',
          ),
        );
      } else {
        expect(restored).toMatch(new RegExp(`^ {2}${label}\\s+available, \\d+ ok so far$`, 'm'));
      }
    }
    const status = await runKeymesh(['status', '--store', store, '--json']);
    expect(status.code).toBe(0);
    const saved = JSON.parse(status.stdout) as { keys: Array<{ label: string; successes: number }> };
    expect(saved.keys.map((k) => k.label)).toEqual(LABELS);
    expect(saved.keys.reduce((sum, k) => sum + k.successes, 0)).toBeGreaterThanOrEqual(180);
  });

  it('starts over with --fresh, and saves nothing with --store memory', async () => {
    const store = join(await temp(), 'demo.json');
    expect((await runKeymesh(quick(`json:${store}`, '--requests', '20'))).code).toBe(0);
    const fresh = await runKeymesh(quick(`json:${store}`, '--requests', '20', '--fresh'));
    expect(fresh.code).toBe(0);
    expect(fresh.stdout).not.toContain('restored');
    expect(fresh.stdout).toContain(`state saved to json:${store}`);

    const memory = await runKeymesh(quick('memory', '--requests', '20', '--keys', '2'));
    expect(memory.code).toBe(0);
    expect(memory.stdout).toContain('state kept in memory only (--store memory): nothing saved');
    expect([...summaryRows(memory.stdout).keys()]).toEqual(['alpha', 'bravo']);
  });

  it('keeps the promises of its banner and the README, run after run', { timeout: 180_000 }, async () => {
    // At full speed (the README's run) and ten times faster, side by side (jitter included).
    const runs = await Promise.all(
      ['1', '10', '10'].map((speed) =>
        runKeymesh(['demo', '--speed', speed, '--store', 'memory', '--plain'], { timeoutMs: 120_000 }),
      ),
    );
    for (const [index, demo] of runs.entries()) {
      expect(demo.code).toBe(0);
      expect(demo.stdout).toMatch(/^Done in [\d.]+ m?s: 400 of 400 requests served, 0 failed$/m);
      const rows = summaryRows(demo.stdout);
      // Paced by an rpm budget: no 429 at the default speed, at most two when ten times faster on a
      // loaded machine (calls bunch in transit). charlie is flaky as well.
      for (const label of ['alpha', 'bravo', 'charlie']) {
        expect(rows.get(label)?.[3], label).toBeLessThanOrEqual(index === 0 ? 0 : 2);
      }
      expect(rows.get('charlie')?.[4]).toBeGreaterThan(0);
      // Revoked by the provider part-way.
      expect(rows.get('delta')?.slice(0, 2)).toEqual(['exhausted', 'revoked']);
      expect(demo.stdout).toMatch(/^\[ *[\d.]+s\] delta revoked by the provider/m);
      // Runs out of its 30 a minute and cools for what is left of that minute (about a minute when it
      // ran out early; less on a loaded machine, where a 429 can slow it down first); the live line
      // and the summary agree.
      const echo = rows.get('echo');
      expect(echo?.[0], demo.stdout).toBe('cooling');
      expect(echo?.[2]).toBeLessThanOrEqual(30);
      const live = [
        ...demo.stdout.matchAll(
          /^\[ *[\d.]+s\] echo cooling for (?:1 m 0\d s|\d{1,2}(?:\.\d)? s) \(([\w-]+)\)$/gm,
        ),
      ];
      expect(live.at(-1)?.[1], demo.stdout).toBe(echo?.[1]);
    }
  });

  it('exits 3, the documented code, when the store is corrupt', async () => {
    const dir = await temp();
    await writeFile(join(dir, 'corrupt.json'), '{ not json');
    await writeFile(join(dir, 'corrupt.db'), 'not an SQLite database, not at all');
    for (const store of [`json:${join(dir, 'corrupt.json')}`, join(dir, 'corrupt.db')]) {
      const run = await runKeymesh(quick(store, '--requests', '5'));
      expect(run.code, store).toBe(3);
      expect(run.stderr, store).toMatch(/^keymesh: Cannot use the store .*corrupt/);
    }
  });

  it('stops on Ctrl-C, saves the state and exits 130 with the summary so far', async () => {
    const store = join(await temp(), 'demo.db');
    let sent = false;
    const run = await runKeymesh(['demo', '--requests', '100000', '--interval', '50', '--store', store], {
      onStdout(stdout, child) {
        if (!sent && /\] [1-9]\d*\/100000 done/.test(stdout)) {
          sent = true;
          child.kill('SIGINT');
        }
      },
    });
    expect(run.code).toBe(130);
    expect(run.stdout).toMatch(
      /^Interrupted after [\d.]+ m?s: \d+ of 100000 requests served, \d+ failed, \d+ not started$/m,
    );
    expect(run.stdout).toContain(`state saved to sqlite:${store}`);
    const status = await runKeymesh(['status', '--store', store]);
    expect(status.code).toBe(0);
  });
});
