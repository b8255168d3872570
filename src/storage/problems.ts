import { checkStoredRecord, repairRecord } from './record-shape.js';
import type { KeyRecord } from './types.js';

/**
 * Told when a stored record could not be loaded as written. Only that key pays: it is loaded with
 * its bad fields repaired (`record-repaired`: a bad number reads as 0, an infinite deadline as the
 * latest storable time, and the key's state and reason, a revocation included, are kept), or, when
 * even its identity or state is unreadable, it starts fresh (`record-dropped`). Every other key's
 * record loads as usual.
 */
export interface StorageRecordEvent {
  readonly type: 'record-repaired' | 'record-dropped';
  /** The store, as the adapter's `name` names it. */
  readonly store: string;
  /** The key the record is stored under. */
  readonly keyId: string;
  /** What was wrong, and what was loaded instead. */
  readonly problem: string;
}

/** Listener of {@link StorageRecordEvent}s. */
export type StorageRecordListener = (event: StorageRecordEvent) => void;

/** Node's warning code of the process warning emitted when a store has no listener for a problem. */
export const STORAGE_WARNING_CODE = 'KEYMESH_STORAGE';

/**
 * Tells `listener`, or, when there is none, emits a process warning (printed on stderr by default):
 * a store problem is never silent. A listener that throws is re-thrown asynchronously, like a pool
 * listener's, so that it cannot break the read that found the problem.
 */
export function tell<E>(listener: ((event: E) => void) | undefined, event: E, warning: string): void {
  if (listener === undefined) {
    process.emitWarning(warning, { code: STORAGE_WARNING_CODE });
    return;
  }
  try {
    listener(event);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

/**
 * One stored value as a record to load: as written when it is valid; repaired, or `undefined`
 * (dropped), when not, and then `listener` is told. Records of another format version pass through.
 */
export function readStoredRecord(
  value: unknown,
  keyId: string,
  store: string,
  listener: StorageRecordListener | undefined,
): KeyRecord | undefined {
  const checked = checkStoredRecord(value, keyId, store);
  if (checked.ok) return checked.record;
  const repair = repairRecord(value, keyId);
  const event: StorageRecordEvent = repair.record
    ? {
        type: 'record-repaired',
        store,
        keyId,
        problem: `${checked.problem}; loaded with ${repair.repaired.join(', ')}`,
      }
    : { type: 'record-dropped', store, keyId, problem: `${repair.problem}; the key starts fresh` };
  tell(listener, event, `KeyMesh ${store}: ${event.problem}`);
  return repair.record;
}
