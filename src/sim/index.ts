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
  type WorkloadUsage,
} from './driver.js';
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
export { VirtualClock } from './virtual-clock.js';
export {
  formatGoDuration,
  formatProtoDuration,
  formatRfc3339,
} from './wire-shapes.js';
