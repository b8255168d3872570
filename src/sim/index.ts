export {
  per1000,
  runWorkload,
  successesBetween,
  type WorkloadHeaders,
  type WorkloadKeyFigures,
  type WorkloadLease,
  type WorkloadLoad,
  type WorkloadOptions,
  type WorkloadPool,
  type WorkloadReport,
  type WorkloadRequestFigures,
  type WorkloadSteadyFigures,
  type WorkloadUsage,
} from './driver.js';
export {
  describeMember,
  FAMILY_CALLERS,
  FAMILY_MAX_RATE_PER_SECOND,
  FAMILY_REJECTION_LATENCY_MS,
  FAMILY_RESETS,
  FAMILY_SHAPES,
  FAMILY_TOKENS_PER_CALL,
  FAMILY_WINDOWS_MS,
  type FamilyLatency,
  type FamilyMember,
  type FamilyProviderOptions,
  type FamilyRetryAfter,
  type FamilySuccessHeaders,
  familyKey,
  familyLatency,
  familyProvider,
  gcraBurst,
  hasHints,
  sampleFamilyMember,
} from './family.js';
export { quantile, type SampleSummary, summarize } from './figures.js';
export {
  type MockProviderOptions,
  type MockProviderServer,
  startMockProvider,
} from './http-provider.js';
export type {
  LimitBreach,
  RequestWindowName,
  SimulatedKeyLimits,
} from './key-limiter.js';
export { type LocalProvider, type LocalProviderOptions, startLocalProvider } from './local-provider.js';
export {
  type OutageWindow,
  type RateLimitHintStyle,
  type SimulatedCallOptions,
  type SimulatedKey,
  type SimulatedKeyStats,
  type SimulatedOutcome,
  SimulatedProvider,
  type SimulatedProviderOptions,
  type SimulatedResponse,
  type SimulatedTotals,
} from './provider.js';
export {
  createRandom,
  fixedLatency,
  type LatencySampler,
  type LogNormalLatencyOptions,
  logNormalLatency,
  type Random,
} from './random.js';
export {
  createShapedLimit,
  type ResetMeaning,
  type ShapedLimit,
  type ShapedLimitSpec,
  type WindowShape,
} from './shaped-limit.js';
export { VirtualClock } from './virtual-clock.js';
export {
  formatGoDuration,
  formatProtoDuration,
  formatRfc3339,
} from './wire-shapes.js';
