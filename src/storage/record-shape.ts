import { StorageError } from '../errors.js';
import type { KeyStateName } from '../machines/key.types.js';
import { REASONS, restoredFromRecord } from './record.js';
import { KEY_RECORD_VERSION, type KeyRecord } from './types.js';

// An object keyed by the union makes the compiler insist that every state is listed.
const STATE_NAMES: Readonly<Record<KeyStateName, true>> = {
  available: true,
  busy: true,
  cooling: true,
  exhausted: true,
  draining: true,
};

/**
 * The latest instant KeyMesh stores (epoch ms): the last one a `Date` can hold. A deadline that is
 * infinite in memory ("cooling for ever") is stored as this, because JSON has no `Infinity`.
 */
export const MAX_STORED_TIME = 8.64e15;

// The numeric fields of a record, each a finite number ≥ 0 (times, durations and counters).
const NUMBER_FIELDS = [
  'cooldownUntil',
  'recoveryAt',
  'recoveryDelayMs',
  'consecutiveFailures',
  'rateLimitStreak',
  'successes',
  'failures',
  'rateLimits',
  'lastUsedAt',
  'lastPenaltyAt',
  'updatedAt',
] as const satisfies readonly (keyof KeyRecord)[];

/** What {@link checkStoredRecord} found: the record, or what is wrong with it. */
export type StoredRecordCheck =
  | { readonly ok: true; readonly record: KeyRecord }
  | { readonly ok: false; readonly problem: string };

/**
 * Checks that a value read from a store is a well-formed {@link KeyRecord} of key `keyId`.
 * Records of another format version pass through untouched, so that `KeyPool.create` can name the
 * version mismatch instead of the adapter calling a newer writer's data corrupt. A record of this
 * version comes back with exactly the fields of a {@link KeyRecord} (anything else is left behind).
 */
export function checkStoredRecord(value: unknown, keyId: string, storageName: string): StoredRecordCheck {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problem: `the record of key ${keyId} is not an object` };
  }
  const record = value as Record<string, unknown>;
  if (record.keyId !== keyId) {
    return { ok: false, problem: `the record stored under key ${keyId} names another key` };
  }
  const version = record.v;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) {
    return { ok: false, problem: `the record of key ${keyId} has no valid format version` };
  }
  if (version !== KEY_RECORD_VERSION) return { ok: true, record: value as KeyRecord };
  const label = record.label;
  const state = record.state;
  if (label !== null && typeof label !== 'string') {
    return { ok: false, problem: `the record of key ${keyId} has an invalid \`label\`` };
  }
  if (typeof state !== 'string' || !Object.hasOwn(STATE_NAMES, state)) {
    return { ok: false, problem: `the record of key ${keyId} has an unknown \`state\`` };
  }
  if (typeof record.writer !== 'string') {
    return { ok: false, problem: `the record of key ${keyId} has an invalid \`writer\`` };
  }
  if (typeof record.updatedAt !== 'number' || !Number.isFinite(record.updatedAt)) {
    return { ok: false, problem: `the record of key ${keyId} has an invalid \`updatedAt\`` };
  }
  try {
    // The restore path owns the rules for reasons, counters and deadlines; reuse them.
    restoredFromRecord(value as KeyRecord, storageName);
  } catch (error) {
    if (error instanceof StorageError) return { ok: false, problem: error.message };
    throw error;
  }
  return { ok: true, record: knownFields(value as KeyRecord) };
}

/** What {@link repairRecord} made of a record. */
export type RecordRepair =
  | {
      readonly record: KeyRecord;
      /** The fields that were out of range and what was stored instead; empty when none was. */
      readonly repaired: readonly string[];
    }
  | { readonly record: undefined; readonly problem: string };

/**
 * Makes a record of this format version loadable, field by field: a number that is not finite and
 * ≥ 0 is stored as 0 (`+Infinity` as {@link MAX_STORED_TIME}, so a deadline "for ever" stays one), a
 * bad `latencyEwma` as `null`, a bad `budget` as none, a bad `label` as `null`. What identifies
 * the record (`keyId`, `v`, `state`, `reason`) cannot be guessed: a record with one of those wrong is
 * not repairable. A revocation is never lost to a repair: the reason is kept as written.
 */
export function repairRecord(value: unknown, keyId: string): RecordRepair {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { record: undefined, problem: `the record of key ${keyId} is not an object` };
  }
  const raw = value as Record<string, unknown>;
  if (raw.keyId !== keyId) {
    return { record: undefined, problem: `the record stored under key ${keyId} names another key` };
  }
  if (raw.v !== KEY_RECORD_VERSION) {
    return {
      record: undefined,
      problem: `the record of key ${keyId} is not of format version ${KEY_RECORD_VERSION}`,
    };
  }
  const state = raw.state;
  if (typeof state !== 'string' || !Object.hasOwn(STATE_NAMES, state)) {
    return { record: undefined, problem: `the record of key ${keyId} has an unknown \`state\`` };
  }
  const reason = raw.reason;
  if (reason !== null && (typeof reason !== 'string' || !REASONS.has(reason))) {
    return { record: undefined, problem: `the record of key ${keyId} has an unknown \`reason\`` };
  }
  const repaired: string[] = [];
  const numbers = {} as Record<(typeof NUMBER_FIELDS)[number], number>;
  for (const field of NUMBER_FIELDS) {
    const stored = storableNumber(raw[field]);
    numbers[field] = stored ?? 0;
    if (stored !== raw[field]) repaired.push(`\`${field}\` ${describeValue(raw[field])} → ${numbers[field]}`);
  }
  let latencyEwma: number | null = null;
  if (raw.latencyEwma !== null) {
    const stored = storableNumber(raw.latencyEwma);
    latencyEwma = stored !== undefined && stored < MAX_STORED_TIME ? stored : null;
    if (latencyEwma !== raw.latencyEwma)
      repaired.push(`\`latencyEwma\` ${describeValue(raw.latencyEwma)} → null`);
  }
  const label = typeof raw.label === 'string' ? raw.label : null;
  if (label !== raw.label) repaired.push('`label` → null');
  const writer = typeof raw.writer === 'string' ? raw.writer : '';
  if (writer !== raw.writer) repaired.push('`writer` → ""');
  const budget = repairedBudget(raw.budget, repaired);
  return {
    record: {
      v: KEY_RECORD_VERSION,
      keyId,
      label,
      state: state as KeyStateName,
      reason: reason as KeyRecord['reason'],
      cooldownUntil: numbers.cooldownUntil,
      recoveryAt: numbers.recoveryAt,
      recoveryDelayMs: numbers.recoveryDelayMs,
      consecutiveFailures: numbers.consecutiveFailures,
      rateLimitStreak: numbers.rateLimitStreak,
      successes: numbers.successes,
      failures: numbers.failures,
      rateLimits: numbers.rateLimits,
      latencyEwma,
      lastUsedAt: numbers.lastUsedAt,
      lastPenaltyAt: numbers.lastPenaltyAt,
      ...(budget === undefined ? {} : { budget }),
      updatedAt: numbers.updatedAt,
      writer,
    },
    repaired,
  };
}

/**
 * Checks a record on its way *into* a store as strictly as {@link checkStoredRecord} checks it on
 * the way out: a record that would not load is never written. Returns the record with exactly the
 * fields of a {@link KeyRecord}.
 *
 * @throws StorageError naming the key and what is wrong.
 */
export function recordToStore(value: unknown, storageName: string): KeyRecord {
  const keyId =
    typeof value === 'object' && value !== null ? (value as { keyId?: unknown }).keyId : undefined;
  if (typeof keyId !== 'string' || keyId.length === 0) {
    throw new StorageError(`Refusing to write a record without a key id to ${storageName}`);
  }
  const version = (value as { v?: unknown }).v;
  const checked =
    version === KEY_RECORD_VERSION
      ? checkStoredRecord(value, keyId, storageName)
      : ({
          ok: false,
          problem: `the record of key ${keyId} is not of format version ${KEY_RECORD_VERSION}`,
        } as const);
  if (!checked.ok) {
    throw new StorageError(
      `Refusing to write a record that would not load to ${storageName}: ${checked.problem}`,
    );
  }
  return checked.record;
}

function storableNumber(value: unknown): number | undefined {
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) return undefined;
  return value === Number.POSITIVE_INFINITY ? MAX_STORED_TIME : value;
}

function repairedBudget(value: unknown, repaired: string[]): KeyRecord['budget'] | undefined {
  if (value === undefined || value === null) return value;
  const budget = value as Record<string, unknown>;
  const parts = [budget.requestsAt, budget.tokensAt, budget.dayAt].map(storableNumber);
  const [requestsAt, tokensAt, dayAt] = parts;
  if (
    typeof value !== 'object' ||
    requestsAt === undefined ||
    tokensAt === undefined ||
    dayAt === undefined
  ) {
    repaired.push('`budget` → none');
    return null;
  }
  if (requestsAt !== budget.requestsAt || tokensAt !== budget.tokensAt || dayAt !== budget.dayAt) {
    repaired.push('`budget` infinite → latest storable time');
  }
  return { requestsAt, tokensAt, dayAt };
}

function describeValue(value: unknown): string {
  if (typeof value === 'number' || value === null || value === undefined) return String(value);
  return `(${typeof value})`;
}

function knownFields(record: KeyRecord): KeyRecord {
  return {
    v: record.v,
    keyId: record.keyId,
    label: record.label,
    state: record.state,
    reason: record.reason,
    cooldownUntil: plain(record.cooldownUntil),
    recoveryAt: plain(record.recoveryAt),
    recoveryDelayMs: plain(record.recoveryDelayMs),
    consecutiveFailures: plain(record.consecutiveFailures),
    rateLimitStreak: plain(record.rateLimitStreak),
    successes: plain(record.successes),
    failures: plain(record.failures),
    rateLimits: plain(record.rateLimits),
    latencyEwma: record.latencyEwma === null ? null : plain(record.latencyEwma),
    lastUsedAt: plain(record.lastUsedAt),
    lastPenaltyAt: plain(record.lastPenaltyAt),
    // `restoredFromRecord` reads any falsy budget as none.
    ...(record.budget === undefined
      ? {}
      : {
          budget: record.budget
            ? {
                requestsAt: plain(record.budget.requestsAt),
                tokensAt: plain(record.budget.tokensAt),
                dayAt: plain(record.budget.dayAt),
              }
            : null,
        }),
    updatedAt: plain(record.updatedAt),
    writer: record.writer,
  };
}

/** `-0` as `0`: JSON writes both as `0`, so a store keeps what it was given only if it is given `0`. */
function plain(value: number): number {
  return value === 0 ? 0 : value;
}
