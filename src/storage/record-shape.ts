import { StorageError } from '../errors.js';
import type { KeyStateName } from '../machines/key.types.js';
import { restoredFromRecord } from './record.js';
import { KEY_RECORD_VERSION, type KeyRecord } from './types.js';

// An object keyed by the union makes the compiler insist that every state is listed.
const STATE_NAMES: Readonly<Record<KeyStateName, true>> = {
  available: true,
  busy: true,
  cooling: true,
  exhausted: true,
  draining: true,
};

/** What {@link checkStoredRecord} found: the record, or what is wrong with it. */
export type StoredRecordCheck =
  | { readonly ok: true; readonly record: KeyRecord }
  | { readonly ok: false; readonly problem: string };

/**
 * Checks that a value read from a store is a well-formed {@link KeyRecord} of key `keyId`.
 * Records of another format version pass through untouched, so that `KeyPool.create` can name the
 * version mismatch instead of the adapter calling a newer writer's data corrupt.
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
  return { ok: true, record: value as KeyRecord };
}
