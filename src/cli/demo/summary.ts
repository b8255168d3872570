import type { PoolSnapshot } from '../../pool/KeyPool.js';
import type { Palette } from '../ansi.js';
import { formatDuration, formatPercent, formatRate } from '../format.js';
import { renderTable } from '../table.js';
import { paintState } from '../theme.js';

/** Everything the summary reports about one run. */
export interface DemoResult {
  readonly requests: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Requests never started because the run was interrupted. */
  readonly skipped: number;
  /** Attempts sent to the provider. */
  readonly calls: number;
  readonly rateLimited: number;
  readonly retries: number;
  readonly durationMs: number;
  /** Most successes the keys' limits allowed in that time. */
  readonly capacity: number;
  /** The pool as it ended. */
  readonly snapshot: PoolSnapshot;
  /** Where state was saved, e.g. `sqlite:.keymesh/demo.db`, or `null` for memory. */
  readonly savedTo: string | null;
  /** How to look at it again (`npm run demo`, or `keymesh demo …`). */
  readonly rerun: string;
  readonly statusCommand: string | null;
  readonly interrupted: boolean;
}

/** The final screen: goodput against capacity, 429s, wait percentiles, per-key counts, where state went. */
export function renderSummary(result: DemoResult, colors: Palette): string[] {
  const { snapshot } = result;
  const seconds = result.durationMs / 1_000;
  const goodput = seconds > 0 ? result.succeeded / seconds : 0;
  const capacityRate = seconds > 0 ? result.capacity / seconds : 0;
  const waits = snapshot.metrics.waitMs;
  const head = result.interrupted
    ? `Interrupted after ${formatDuration(result.durationMs)}: ${result.succeeded} of ${result.requests} requests served, ${result.failed} failed, ${result.skipped} not started`
    : `Done in ${formatDuration(result.durationMs)}: ${result.succeeded} of ${result.requests} requests served, ${result.failed} failed`;
  const keyRows = snapshot.keys.map((k) => [
    k.label ?? k.keyId,
    paintState(colors, k.state),
    k.reason ?? '-',
    String(k.successes),
    String(k.rateLimits),
    String(k.failures),
    k.latencyEwma === null ? '-' : formatDuration(k.latencyEwma),
  ]);
  const lines = [
    colors.bold(head),
    '',
    `  goodput   ${formatRate(goodput)} req/s of ${formatRate(capacityRate)} req/s capacity (${formatPercent(result.succeeded, result.capacity)})`,
    `  429s      ${result.rateLimited} of ${result.calls} calls (${formatPercent(result.rateLimited, result.calls)}); ${result.retries} attempts retried on another key`,
    `  wait      p50 ${formatDuration(waits.p50)} · p90 ${formatDuration(waits.p90)} · p99 ${formatDuration(waits.p99)} · max ${formatDuration(waits.max)} (acquire → key)`,
    '',
    ...renderTable(
      [
        { title: 'key' },
        { title: 'state' },
        { title: 'reason' },
        { title: 'ok', align: 'right' },
        { title: '429', align: 'right' },
        { title: 'fail', align: 'right' },
        { title: 'latency', align: 'right' },
      ],
      keyRows,
      colors.bold,
    ).map((line) => `  ${line}`),
    '',
  ];
  if (result.savedTo === null) {
    lines.push('  state kept in memory only (--store memory): nothing saved');
  } else {
    lines.push(`  state saved to ${result.savedTo}`);
    lines.push(
      colors.dim(
        `  run \`${result.rerun}\` again: the keys start where they are now (cooling keys still cool)`,
      ),
    );
    if (result.statusCommand !== null) lines.push(colors.dim(`  read it with \`${result.statusCommand}\``));
  }
  return lines;
}
