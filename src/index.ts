export { type Clock, systemClock } from './clock.js';
export {
  AcquireAbortedError,
  ClockError,
  InvalidConfigError,
  KeyMeshError,
  type KeyMeshErrorCode,
  type KeyStateCounts,
  LeaseNotFoundError,
  LeaseSettledError,
  NoAvailableKeyError,
  PoolClosedError,
  QueueFullError,
  StorageCorruptError,
  StorageError,
  StrategyError,
  UnknownKeyError,
} from './errors.js';
export {
  type FetchAcquireOptions,
  type KeyInjection,
  type KeymeshFetchAttempt,
  type KeymeshFetchOptions,
  type KeymeshFetchTiming,
  keymeshFetch,
} from './fetch.js';
export { fingerprint, type KeyId, maskKey } from './fingerprint.js';
export type { BudgetLevel, BudgetLimits, KeyBudgetSnapshot } from './limits/budget.js';
export {
  type ClassifyOptions,
  classifyOutcome,
  type HeadersInput,
  type LimitScope,
  type Outcome,
  type OutcomeKind,
  parseRateLimitHeaders,
  parseRetryAfter,
  type RateLimitInfo,
} from './limits/index.js';
export { createKeyMachine, type KeyMachine, keyMachine } from './machines/key.machine.js';
export type {
  FailureKind,
  KeyAllowance,
  KeyContext,
  KeyCounts,
  KeyEvent,
  KeyHealth,
  KeyInput,
  KeyReason,
  KeySettings,
  KeyStateName,
} from './machines/key.types.js';
export {
  createPoolMachine,
  type PoolContext,
  type PoolMachine,
  type PoolMachineDeps,
  poolMachine,
} from './machines/pool.machine.js';
export type { LeaseGranted, PoolEmitted, PoolEvent, PoolInput, RejectReason } from './machines/pool.types.js';
export {
  bindOpenTelemetry,
  type KeyPoolMetrics,
  OPEN_TELEMETRY_INSTRUMENTS,
  type OpenTelemetryAttributes,
  type OpenTelemetryBatchResult,
  type OpenTelemetryMeter,
  type OpenTelemetryOptions,
  PROMETHEUS_CONTENT_TYPE,
  type PrometheusOptions,
  type SnapshotSource,
  toPrometheus,
} from './metrics/index.js';
export type { KeyPoolEventMap, KeyPoolEventName, KeyPoolListener, KeyRefInfo } from './pool/events.js';
export { type AcquireOptions, KeyPool, type PoolSnapshot } from './pool/KeyPool.js';
export type { TokenUsage } from './pool/lease.js';
export {
  type FailOptions,
  Lease,
  type LeaseOutcome,
  type RateLimitOptions,
  type ReleaseOptions,
} from './pool/lease.js';
export type { PoolMetricsSnapshot } from './pool/metrics.js';
export type { KeyConfig, KeyPoolOptions } from './pool/options.js';
export type { CustomStrategy, KeySnapshot, StrategyName } from './pool/strategies/types.js';
export { VirtualClock } from './sim/virtual-clock.js';
export {
  JSON_FILE_FORMAT,
  JSON_FILE_VERSION,
  type JsonFileStorageOptions,
  jsonFileStorage,
  type StorageQuarantineEvent,
} from './storage/json-file.js';
export { memoryStorage } from './storage/memory.js';
export type { StorageRecordEvent, StorageRecordListener } from './storage/problems.js';
export { MAX_STORED_TIME } from './storage/record-shape.js';
export { SQLITE_SCHEMA_VERSION, type SqliteStorageOptions, sqliteStorage } from './storage/sqlite.js';
export { KEY_RECORD_VERSION, type KeyRecord, type StorageAdapter } from './storage/types.js';
