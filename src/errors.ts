/** Stable machine-readable codes carried by every KeyMesh error. */
export type KeyMeshErrorCode =
  | 'INVALID_CONFIG'
  | 'NO_AVAILABLE_KEY'
  | 'ACQUIRE_ABORTED'
  | 'QUEUE_FULL'
  | 'UNKNOWN_KEY'
  | 'LEASE_NOT_FOUND'
  | 'LEASE_SETTLED'
  | 'POOL_CLOSED'
  | 'STORAGE'
  | 'STORAGE_CORRUPT'
  | 'STRATEGY_FAILED'
  | 'INVALID_CALL'
  | 'CLOCK';

/** Base class of every error KeyMesh throws. Messages never contain a raw key. */
export class KeyMeshError extends Error {
  readonly code: KeyMeshErrorCode;
  constructor(code: KeyMeshErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An option given to `KeyPool.create` (or a runtime call) is invalid. `field` names it. */
export class InvalidConfigError extends KeyMeshError {
  readonly field: string;
  constructor(field: string, message: string, options?: { cause?: unknown }) {
    super('INVALID_CONFIG', `Invalid KeyMesh option \`${field}\`: ${message}`, options);
    this.field = field;
  }
}

/** Number of keys in each state, and in each state/reason pair (`'cooling:rate-limited'`). */
export type KeyStateCounts = Readonly<Record<string, number>>;

/** No key became eligible before the deadline (or none can before it: fail fast). */
export class NoAvailableKeyError extends KeyMeshError {
  /** When the earliest key is expected back, in ms from the rejection; `undefined` if none will return on its own. */
  readonly retryAfterMs: number | undefined;
  /** Keys per state and per `state:reason`. */
  readonly counts: KeyStateCounts;
  constructor(message: string, retryAfterMs: number | undefined, counts: KeyStateCounts) {
    super('NO_AVAILABLE_KEY', message);
    this.retryAfterMs = retryAfterMs;
    this.counts = counts;
  }
}

/** The `signal` given to `acquire` was aborted while waiting. `cause` is the signal's reason. */
export class AcquireAbortedError extends KeyMeshError {
  constructor(cause: unknown) {
    super('ACQUIRE_ABORTED', 'acquire() was aborted by its signal', { cause });
  }
}

/** More callers are waiting than `maxWaiters` allows. */
export class QueueFullError extends KeyMeshError {
  readonly maxWaiters: number;
  constructor(maxWaiters: number) {
    super('QUEUE_FULL', `acquire() rejected: ${maxWaiters} callers are already waiting (maxWaiters)`);
    this.maxWaiters = maxWaiters;
  }
}

/** The key (or fingerprint) is not in this pool. */
export class UnknownKeyError extends KeyMeshError {
  /** The fingerprint asked for (never the raw key). */
  readonly keyId: string;
  constructor(keyId: string) {
    super('UNKNOWN_KEY', `Key ${keyId} is not in this pool`);
    this.keyId = keyId;
  }
}

/** A raw key was given to a settle call, but no lease on that key is outstanding. */
export class LeaseNotFoundError extends KeyMeshError {
  readonly keyId: string;
  constructor(keyId: string) {
    super('LEASE_NOT_FOUND', `No outstanding lease on key ${keyId} to settle`);
    this.keyId = keyId;
  }
}

/** A lease was settled twice. The second call changed nothing. */
export class LeaseSettledError extends KeyMeshError {
  readonly keyId: string;
  readonly leaseId: number;
  constructor(keyId: string, leaseId: number, settledAs: string) {
    super('LEASE_SETTLED', `Lease #${leaseId} on key ${keyId} was already settled (${settledAs})`);
    this.keyId = keyId;
    this.leaseId = leaseId;
  }
}

/** The pool is closed (or closing) and takes no more acquires. */
export class PoolClosedError extends KeyMeshError {
  constructor() {
    super('POOL_CLOSED', 'The key pool is closed');
  }
}

/** A storage adapter failed; `cause` holds the adapter's error. */
export class StorageError extends KeyMeshError {
  constructor(message: string, cause?: unknown) {
    super('STORAGE', message, { cause });
  }
}

/** A stored file or record could not be parsed. `path` names it. */
export class StorageCorruptError extends KeyMeshError {
  readonly path: string;
  constructor(path: string, detail: string, cause?: unknown) {
    super('STORAGE_CORRUPT', `Stored KeyMesh state at ${path} is corrupt: ${detail}`, { cause });
    this.path = path;
  }
}

/** A custom strategy threw or returned a key that was not offered to it. */
export class StrategyError extends KeyMeshError {
  constructor(message: string, cause?: unknown) {
    super('STRATEGY_FAILED', message, { cause });
  }
}

/**
 * The pool's clock gave an unusable reading at run time (`now()` or `monotonic()` threw, or was not
 * a finite number). The pool went on with the last good reading: time stood still for it, so no
 * deadline passed, until the clock read well again. `cause` holds what the clock threw, if it threw.
 */
export class ClockError extends KeyMeshError {
  constructor(message: string, cause?: unknown) {
    super('CLOCK', `The pool's clock failed: ${message}; time stands still until it reads well again`, {
      cause,
    });
  }
}
