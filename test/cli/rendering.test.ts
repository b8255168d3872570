import { describe, expect, it } from 'vitest';
import { palette, rewind, stripAnsi, truncate } from '../../src/cli/ansi.js';
import {
  type DemoFrame,
  plainView,
  progressBar,
  renderFrame,
  terminalView,
} from '../../src/cli/demo/live-view.js';
import { capacity, demoKeys } from '../../src/cli/demo/scenario.js';
import type { CliOutput } from '../../src/cli/io.js';
import { parseStoreSpec } from '../../src/cli/store.js';
import type { KeySnapshot } from '../../src/index.js';

const key = (label: string, overrides: Partial<KeySnapshot> = {}): KeySnapshot => ({
  keyId: `k_${'0'.repeat(15)}${label.length}`,
  label,
  mask: '****abcd',
  order: 0,
  state: 'available',
  reason: null,
  probe: false,
  inFlight: 0,
  maxConcurrent: 3,
  weight: 1,
  successes: 0,
  failures: 0,
  rateLimits: 0,
  consecutiveFailures: 0,
  latencyEwma: null,
  cooldownUntil: 0,
  recoveryAt: 0,
  lastUsedAt: 0,
  lastPenaltyAt: 0,
  budget: null,
  ...overrides,
});

const frame = (overrides: Partial<DemoFrame> = {}): DemoFrame => ({
  elapsedMs: 2_500,
  requests: 400,
  done: 100,
  succeeded: 98,
  failed: 2,
  rateLimited: 7,
  retries: 9,
  throughput: 41.25,
  keys: [
    key('alpha', { inFlight: 2, successes: 60 }),
    key('echo', {
      state: 'cooling',
      reason: 'quota',
      cooldownUntil: 1_000_000 + 42_000,
      successes: 30,
      rateLimits: 3,
    }),
  ],
  now: 1_000_000,
  events: [],
  ...overrides,
});

function recorder(isTTY: boolean): CliOutput & { text: string } {
  return {
    isTTY,
    columns: 120,
    text: '',
    write(chunk: string) {
      this.text += chunk;
    },
  };
}

describe('the demo’s live view', () => {
  it('draws a progress bar, the figures and a per-key table with cooldowns left', () => {
    const lines = renderFrame(frame(), palette(false));
    expect(lines[0]).toBe(
      `${progressBar(100, 400)}   100/400    25 %     41.3 req/s   7 × 429   9 retried   2.5 s`,
    );
    expect(progressBar(100, 400, 8)).toBe('[██░░░░░░]');
    expect(lines[2]).toMatch(/^key\s+state\s+reason\s+in flight\s+cooldown left\s+ok\s+429\s+fail$/);
    expect(lines[3]).toMatch(/^alpha\s+available\s+-\s+2\s+-\s+60\s+0\s+0$/);
    expect(lines[4]).toMatch(/^echo\s+cooling\s+quota\s+0\s+42\.0 s\s+30\s+3\s+0$/);
  });

  it('redraws in place on a terminal, at the same height, and gives the cursor back', () => {
    const out = recorder(true);
    const view = terminalView(out, palette(true));
    view.update(frame());
    const height = out.text.split('\n').length - 1;
    expect(out.text.startsWith('\u001b[?25l')).toBe(true);
    out.text = '';
    view.event(1_200, 'delta revoked by the provider (revoked): out of rotation');
    view.update(frame({ done: 200 }));
    expect(out.text.startsWith(rewind(height))).toBe(true);
    expect(out.text.split('\n').length - 1).toBe(height);
    expect(stripAnsi(out.text)).toContain('[  1.2s] delta revoked by the provider');
    out.text = '';
    view.stop(frame({ done: 400 }));
    expect(out.text.endsWith('\u001b[?25h')).toBe(true);
  });

  it('prints plain lines without escape codes off a terminal', () => {
    const out = recorder(false);
    const view = plainView(out, 1_000);
    view.update(frame());
    view.event(3_000, 'echo cooling for 57.5 s (quota)');
    view.stop(frame({ done: 400 }));
    expect(out.text).toBe(
      [
        '[  2.5s] 100/400 done · 41.3 req/s · 7 × 429 · 9 retried · alpha=available echo=cooling 42.0 s',
        '[  3.0s] echo cooling for 57.5 s (quota)',
        '[  2.5s] 400/400 done · 41.3 req/s · 7 × 429 · 9 retried · alpha=available echo=cooling 42.0 s',
        '',
      ].join('\n'),
    );
  });

  it('cuts lines to the terminal width without breaking colours', () => {
    const colors = palette(true);
    const cut = truncate(`${colors.green('available')} and a long tail`, 12);
    expect(stripAnsi(cut)).toBe('available a…');
    expect(cut.endsWith('\u001b[0m')).toBe(true);
  });
});

describe('demo scenario and stores', () => {
  it('makes obviously fake keys, one per role', () => {
    const keys = demoKeys(7);
    expect(keys.map((k) => k.label)).toEqual([
      'alpha',
      'bravo',
      'charlie',
      'delta',
      'echo',
      'foxtrot',
      'golf',
    ]);
    for (const k of keys) expect(k.key).toMatch(/^sk-demo-fake-[a-z]+-\d{4}-not-a-real-key$/);
    expect(keys.filter((k) => k.revokeAfterMs !== undefined).map((k) => k.label)).toEqual(['delta']);
    expect(keys.filter((k) => k.errorRate > 0).map((k) => k.label)).toEqual(['charlie']);
  });

  it('measures capacity from the limits, the revocation and keys restored out of service', () => {
    const keys = demoKeys(5);
    // 10 s: alpha 200, bravo 100, charlie 80 × 0.85, delta 2 s × 15, echo 30 (its minute quota).
    expect(capacity(keys, 10_000, 1)).toBeCloseTo(200 + 100 + 68 + 30 + 30, 6);
    const withoutDelta = capacity(keys, 10_000, 1, (label) =>
      label === 'delta' ? Number.POSITIVE_INFINITY : 0,
    );
    expect(withoutDelta).toBeCloseTo(200 + 100 + 68 + 30, 6);
  });

  it('reads --store forms', () => {
    expect(parseStoreSpec('.keymesh/demo.db')).toEqual({ kind: 'sqlite', path: '.keymesh/demo.db' });
    expect(parseStoreSpec('state.JSON')).toEqual({ kind: 'json', path: 'state.JSON' });
    expect(parseStoreSpec('json:/tmp/a.db')).toEqual({ kind: 'json', path: '/tmp/a.db' });
    expect(parseStoreSpec('sqlite:keys')).toEqual({ kind: 'sqlite', path: 'keys' });
    expect(parseStoreSpec('memory')).toEqual({ kind: 'memory' });
    expect(() => parseStoreSpec('sqlite:')).toThrow(/the path is empty/);
  });
});
