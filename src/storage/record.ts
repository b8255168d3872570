import { StorageError } from '../errors.js';
import {
  KEY_REASONS,
  type KeyContext,
  type KeyInput,
  type KeyReason,
  type KeyStateName,
} from '../machines/key.types.js';
import { KEY_RECORD_VERSION, type KeyRecord } from './types.js';

/** The reasons a stored record may give: every reason a key can hold (one list, so a new one is never refused on load). */
export const REASONS: ReadonlySet<string> = new Set<string>(KEY_REASONS);

/** The record to persist for a key's current context. `busy` is stored as `available`. */
export function toRecord(context: KeyContext, state: KeyStateName, writer: string, now: number): KeyRecord {
  const health = context.health;
  return {
    v: KEY_RECORD_VERSION,
    keyId: context.keyId,
    label: context.settings.label,
    state: state === 'busy' ? 'available' : state,
    reason: health.reason,
    cooldownUntil: health.cooldownUntil,
    recoveryAt: health.recoveryAt,
    recoveryDelayMs: health.recoveryDelayMs,
    consecutiveFailures: health.consecutiveFailures,
    rateLimitStreak: health.rateLimitStreak,
    successes: context.counts.successes,
    failures: context.counts.failures,
    rateLimits: context.counts.rateLimits,
    latencyEwma: context.latencyEwma,
    lastUsedAt: context.lastUsedAt,
    lastPenaltyAt: health.lastPenaltyAt,
    budget: context.budget,
    updatedAt: now,
    writer,
  };
}

function count(record: KeyRecord, field: keyof KeyRecord, storageName: string): number {
  const value = record[field];
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new StorageError(
      `Stored record of key ${record.keyId} in ${storageName} has an invalid \`${field}\`; refusing to guess`,
    );
  }
  return value;
}

function checkedBudget(record: KeyRecord, storageName: string): NonNullable<KeyRecord['budget']> {
  const budget = record.budget;
  const ok =
    budget &&
    [budget.requestsAt, budget.tokensAt, budget.dayAt].every(
      (v) => typeof v === 'number' && Number.isFinite(v) && v >= 0,
    );
  if (!budget || !ok) {
    throw new StorageError(
      `Stored record of key ${record.keyId} in ${storageName} has an invalid \`budget\``,
    );
  }
  return { requestsAt: budget.requestsAt, tokensAt: budget.tokensAt, dayAt: budget.dayAt };
}

/**
 * The fields a key actor restores from a stored record. In-flight counts are not restored: leases
 * do not survive a restart. A record in another format version is an error, never silently dropped.
 */
export function restoredFromRecord(
  record: KeyRecord,
  storageName: string,
): NonNullable<KeyInput['restored']> {
  if (record.v !== KEY_RECORD_VERSION) {
    throw new StorageError(
      `Stored record of key ${record.keyId} in ${storageName} has format version ${String(record.v)}; this KeyMesh reads version ${KEY_RECORD_VERSION}`,
    );
  }
  const reason = record.reason;
  if (reason !== null && !REASONS.has(reason)) {
    throw new StorageError(`Stored record of key ${record.keyId} in ${storageName} has an unknown reason`);
  }
  const latency = record.latencyEwma;
  if (latency !== null && (typeof latency !== 'number' || !Number.isFinite(latency) || latency < 0)) {
    throw new StorageError(
      `Stored record of key ${record.keyId} in ${storageName} has an invalid \`latencyEwma\``,
    );
  }
  return {
    counts: {
      successes: count(record, 'successes', storageName),
      failures: count(record, 'failures', storageName),
      rateLimits: count(record, 'rateLimits', storageName),
    },
    latencyEwma: latency,
    lastUsedAt: count(record, 'lastUsedAt', storageName),
    health: {
      consecutiveFailures: count(record, 'consecutiveFailures', storageName),
      rateLimitStreak: count(record, 'rateLimitStreak', storageName),
      cooldownUntil: count(record, 'cooldownUntil', storageName),
      reason: reason as KeyReason | null,
      recoveryAt: count(record, 'recoveryAt', storageName),
      recoveryDelayMs: count(record, 'recoveryDelayMs', storageName),
      lastPenaltyAt: count(record, 'lastPenaltyAt', storageName),
    },
    ...(record.budget ? { budget: checkedBudget(record, storageName) } : {}),
  };
}
