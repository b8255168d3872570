import { systemClock } from '../../clock.js';
import type { KeyRecord } from '../../storage/types.js';
import { colorEnabled, palette } from '../ansi.js';
import { EXIT, type ExitCode } from '../exit-codes.js';
import { formatAgo, formatDuration, formatLeft } from '../format.js';
import { type CliIO, writeLine } from '../io.js';
import { describeStore, readStoredRecords, type StoreSpec } from '../store.js';
import { renderTable } from '../table.js';
import { paintState } from '../theme.js';

/** Options of `keymesh status`. */
export interface StatusOptions {
  readonly store: StoreSpec;
  readonly json: boolean;
}

/** One key as `keymesh status` reports it: the stored record, read as of now. */
export interface KeyStatus {
  readonly keyId: string;
  readonly label: string | null;
  /** The mask, when the store keeps one (records of this version do not: `null`). */
  readonly mask: string | null;
  /** The state now: a stored cooldown that has ended reads `available`. */
  readonly state: string;
  readonly reason: string | null;
  /** The state as written. */
  readonly storedState: string;
  readonly cooldownUntil: number;
  /** Ms until the cooldown ends (0 when none). */
  readonly cooldownLeftMs: number;
  readonly recoveryAt: number;
  readonly successes: number;
  readonly failures: number;
  readonly rateLimits: number;
  readonly consecutiveFailures: number;
  readonly latencyEwma: number | null;
  readonly lastUsedAt: number;
  readonly updatedAt: number;
}

/** A record read as of `now`: a cooldown that has ended no longer holds the key. */
export function keyStatus(record: KeyRecord, now: number): KeyStatus {
  const cooledDown = record.state === 'cooling' && record.cooldownUntil <= now;
  const mask = (record as KeyRecord & { readonly mask?: unknown }).mask;
  return {
    keyId: record.keyId,
    label: record.label,
    mask: typeof mask === 'string' ? mask : null,
    state: cooledDown ? 'available' : record.state === 'busy' ? 'available' : record.state,
    reason: cooledDown ? null : record.reason,
    storedState: record.state,
    cooldownUntil: record.cooldownUntil,
    cooldownLeftMs: Math.max(0, record.cooldownUntil - now),
    recoveryAt: record.recoveryAt,
    successes: record.successes,
    failures: record.failures,
    rateLimits: record.rateLimits,
    consecutiveFailures: record.consecutiveFailures,
    latencyEwma: record.latencyEwma,
    lastUsedAt: record.lastUsedAt,
    updatedAt: record.updatedAt,
  };
}

function cooldownCell(k: KeyStatus, now: number): string {
  if (k.state === 'cooling') return formatLeft(k.cooldownUntil, now);
  if (k.reason !== 'failures') return '-';
  return k.recoveryAt > now ? `probe in ${formatDuration(k.recoveryAt - now)}` : 'probe due';
}

/** `keymesh status`: every key's persisted state, as a table or JSON. */
export async function runStatus(options: StatusOptions, io: CliIO): Promise<ExitCode> {
  // One key's bad record costs that key alone: said on stderr, the other keys are shown.
  const records = await readStoredRecords(options.store, (event) =>
    writeLine(io.stderr, `keymesh: warning: ${event.problem}`),
  );
  const now = systemClock.now();
  const keys = records
    .map((record) => keyStatus(record, now))
    .sort((a, b) => (a.label ?? a.keyId).localeCompare(b.label ?? b.keyId));
  const where = describeStore(options.store);
  if (options.json) {
    writeLine(io.stdout, JSON.stringify({ store: where, at: now, keys }, null, 2));
    return EXIT.ok;
  }
  if (keys.length === 0) {
    writeLine(io.stdout, `${where}: no key state saved yet`);
    return EXIT.ok;
  }
  const colors = palette(colorEnabled(io.stdout.isTTY === true, io.env));
  // Records of this format keep no mask; the column shows when a store has them.
  const withMask = keys.some((k) => k.mask !== null);
  const rows = keys.map((k) => [
    k.keyId,
    k.label ?? '-',
    ...(withMask ? [k.mask ?? '-'] : []),
    paintState(colors, k.state),
    k.reason ?? '-',
    cooldownCell(k, now),
    String(k.successes),
    String(k.rateLimits),
    String(k.failures),
    String(k.consecutiveFailures),
    k.latencyEwma === null ? '-' : formatDuration(k.latencyEwma),
    formatAgo(k.lastUsedAt, now),
  ]);
  const table = renderTable(
    [
      { title: 'key' },
      { title: 'label' },
      ...(withMask ? [{ title: 'mask' }] : []),
      { title: 'state' },
      { title: 'reason' },
      { title: 'cooldown left' },
      { title: 'ok', align: 'right' },
      { title: '429', align: 'right' },
      { title: 'fail', align: 'right' },
      { title: 'in a row', align: 'right' },
      { title: 'latency', align: 'right' },
      { title: 'last used' },
    ],
    rows,
    colors.bold,
  );
  const updated = Math.max(...keys.map((k) => k.updatedAt));
  writeLine(
    io.stdout,
    `${where}: ${keys.length} key${keys.length === 1 ? '' : 's'}, last written ${formatAgo(updated, now)}`,
  );
  writeLine(io.stdout);
  for (const line of table) writeLine(io.stdout, line);
  return EXIT.ok;
}
