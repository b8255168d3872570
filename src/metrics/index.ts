import {
  bindOpenTelemetry,
  type OpenTelemetryMeter,
  type OpenTelemetryOptions,
  type SnapshotSource,
} from './otel.js';
import { type PrometheusOptions, toPrometheus } from './prometheus.js';

export {
  bindOpenTelemetry,
  OPEN_TELEMETRY_INSTRUMENTS,
  type OpenTelemetryAttributes,
  type OpenTelemetryBatchResult,
  type OpenTelemetryMeter,
  type OpenTelemetryOptions,
  type SnapshotSource,
} from './otel.js';
export { PROMETHEUS_CONTENT_TYPE, type PrometheusOptions, toPrometheus } from './prometheus.js';

/** `pool.metrics`: the pool's metrics in the formats monitoring systems read. */
export interface KeyPoolMetrics {
  /** The pool's current metrics in the Prometheus text format; see {@link toPrometheus}. */
  toPrometheus(options?: PrometheusOptions): string;
  /**
   * Publishes the pool's metrics as OpenTelemetry observable instruments; see
   * {@link bindOpenTelemetry}. Returns the function that unbinds them.
   */
  bindOpenTelemetry(meter: OpenTelemetryMeter, options?: OpenTelemetryOptions): () => void;
}

/** Builds the `metrics` view of a pool (or of anything with a KeyMesh `snapshot()`). */
export function keyPoolMetrics(pool: SnapshotSource): KeyPoolMetrics {
  return {
    toPrometheus: (options) => toPrometheus(pool.snapshot(), options),
    bindOpenTelemetry: (meter, options) => bindOpenTelemetry(pool, meter, options),
  };
}
