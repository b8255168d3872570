import { InvalidConfigError } from '../errors.js';
import { KEY_REASONS, type KeyStateName } from '../machines/key.types.js';
import type { PoolSnapshot } from '../pool/KeyPool.js';
import type { KeySnapshot } from '../pool/strategies/types.js';

/** Attribute values as OpenTelemetry accepts them (a subset of `@opentelemetry/api`'s `Attributes`). */
export type OpenTelemetryAttributes = Record<string, string | number | boolean>;

/**
 * The part of an `@opentelemetry/api` `Meter` that {@link bindOpenTelemetry} uses. Declared here,
 * structurally, so that KeyMesh never imports `@opentelemetry/api` (an optional peer dependency):
 * pass `metrics.getMeter('keymesh')` and the type checker confirms it fits.
 */
export interface OpenTelemetryMeter {
  createObservableGauge(name: string, options?: { description?: string; unit?: string }): object;
  createObservableCounter(name: string, options?: { description?: string; unit?: string }): object;
  addBatchObservableCallback(
    callback: (result: OpenTelemetryBatchResult) => void,
    observables: object[],
  ): void;
  removeBatchObservableCallback(
    callback: (result: OpenTelemetryBatchResult) => void,
    observables: object[],
  ): void;
}

/** What a batch observable callback reports to (the `BatchObservableResult` of `@opentelemetry/api`). */
export interface OpenTelemetryBatchResult {
  observe(metric: object, value: number, attributes?: OpenTelemetryAttributes): void;
}

/** Options of {@link bindOpenTelemetry}. */
export interface OpenTelemetryOptions {
  /** Prefix of every instrument name. Default `'keymesh'` (`keymesh.key.in_flight`, …). */
  readonly prefix?: string;
  /** Attributes added to every observation, e.g. `{ 'keymesh.pool': 'openai' }`. Default none. */
  readonly attributes?: Readonly<OpenTelemetryAttributes>;
}

/** What {@link bindOpenTelemetry} reads: anything with a KeyMesh `snapshot()`. */
export interface SnapshotSource {
  snapshot(): PoolSnapshot;
}

const STATES: readonly KeyStateName[] = ['available', 'busy', 'cooling', 'exhausted', 'draining'];
const REASONS = KEY_REASONS;

type Kind = 'gauge' | 'counter';
interface InstrumentSpec {
  readonly name: string;
  readonly kind: Kind;
  readonly unit: string;
  readonly description: string;
}

/** Every instrument {@link bindOpenTelemetry} creates, by name without the prefix. */
export const OPEN_TELEMETRY_INSTRUMENTS = [
  {
    name: 'keys',
    kind: 'gauge',
    unit: '{key}',
    description: 'Keys in each state (attribute keymesh.key.state).',
  },
  { name: 'acquires', kind: 'counter', unit: '{lease}', description: 'Leases granted.' },
  { name: 'releases', kind: 'counter', unit: '{lease}', description: 'Leases settled as a success.' },
  { name: 'failures', kind: 'counter', unit: '{lease}', description: 'Leases settled as a failure.' },
  { name: 'rate_limits', kind: 'counter', unit: '{lease}', description: 'Leases settled as rate limited.' },
  {
    name: 'acquire.timeouts',
    kind: 'counter',
    unit: '{acquire}',
    description: 'Acquires that gave up at their deadline.',
  },
  {
    name: 'acquire.aborts',
    kind: 'counter',
    unit: '{acquire}',
    description: 'Acquires aborted by their signal.',
  },
  {
    name: 'acquire.queue_full',
    kind: 'counter',
    unit: '{acquire}',
    description: 'Acquires rejected by maxWaiters.',
  },
  { name: 'waiters', kind: 'gauge', unit: '{caller}', description: 'Callers waiting for a key now.' },
  {
    name: 'ignored_hints',
    kind: 'counter',
    unit: '{hint}',
    description: 'Provider hints ignored as non-finite or beyond maxRetryAfterMs / maxQuotaResetMs.',
  },
  {
    name: 'outage',
    kind: 'gauge',
    unit: '1',
    description: '1 while the pool backs off from a provider-wide outage.',
  },
  {
    name: 'acquire.wait',
    kind: 'gauge',
    unit: 's',
    description: 'Time from acquire() to the grant, by quantile (attribute quantile: 0.5, 0.9, 0.99, 1).',
  },
  {
    name: 'key.state',
    kind: 'gauge',
    unit: '1',
    description: "1 for the key's current state, 0 for the others.",
  },
  {
    name: 'key.reason',
    kind: 'gauge',
    unit: '1',
    description: "1 for the reason of the key's state, 0 for the others.",
  },
  { name: 'key.in_flight', kind: 'gauge', unit: '{lease}', description: 'Unsettled leases of the key.' },
  { name: 'key.successes', kind: 'counter', unit: '{call}', description: 'Calls settled as a success.' },
  { name: 'key.failures', kind: 'counter', unit: '{call}', description: 'Calls settled as a failure.' },
  { name: 'key.rate_limits', kind: 'counter', unit: '{call}', description: 'Calls settled as rate limited.' },
  { name: 'key.consecutive_failures', kind: 'gauge', unit: '{call}', description: 'Failures in a row.' },
  { name: 'key.latency', kind: 'gauge', unit: 's', description: 'EWMA of successful call latency.' },
  { name: 'key.cooldown_remaining', kind: 'gauge', unit: 's', description: 'Time until the cooldown ends.' },
  {
    name: 'key.budget.limit',
    kind: 'gauge',
    unit: '1',
    description: 'Configured budget of the key per window (attribute keymesh.budget: rpm, tpm, rpd).',
  },
  {
    name: 'key.budget.remaining',
    kind: 'gauge',
    unit: '1',
    description: 'What the budget holds unspent now (attribute keymesh.budget: rpm, tpm, rpd).',
  },
  {
    name: 'key.budget.ready_in',
    kind: 'gauge',
    unit: 's',
    description: 'Time until a new lease fits every budget of the key.',
  },
] as const satisfies readonly InstrumentSpec[];

type InstrumentName = (typeof OPEN_TELEMETRY_INSTRUMENTS)[number]['name'];

/**
 * Publishes a pool's metrics as OpenTelemetry observable instruments on `meter` (from
 * `@opentelemetry/api`, an optional peer dependency that KeyMesh never imports itself). One batch
 * callback takes one `snapshot()` per collection and reports every instrument of
 * {@link OPEN_TELEMETRY_INSTRUMENTS}: pool counters and gauges, and per-key instruments with the
 * attributes `keymesh.key.id` (fingerprint) and `keymesh.key.label` (when the key has one). Never a
 * secret.
 *
 * @returns a function that removes the callback (the instruments stay registered with the meter,
 *   as OpenTelemetry has no way to delete them; they simply stop reporting).
 * @example
 * import { metrics } from '@opentelemetry/api';
 * const unbind = bindOpenTelemetry(pool, metrics.getMeter('keymesh'));
 */
export function bindOpenTelemetry(
  pool: SnapshotSource,
  meter: OpenTelemetryMeter,
  options: OpenTelemetryOptions = {},
): () => void {
  const prefix = options.prefix ?? 'keymesh';
  if (!/^[a-zA-Z][a-zA-Z0-9_.-]*$/.test(prefix)) {
    throw new InvalidConfigError('prefix', 'expected an instrument name prefix ([a-zA-Z][a-zA-Z0-9_.-]*)');
  }
  const constant = { ...options.attributes };
  const instruments = new Map<InstrumentName, object>();
  for (const spec of OPEN_TELEMETRY_INSTRUMENTS) {
    const config = { description: spec.description, unit: spec.unit };
    const name = `${prefix}.${spec.name}`;
    instruments.set(
      spec.name,
      spec.kind === 'gauge'
        ? meter.createObservableGauge(name, config)
        : meter.createObservableCounter(name, config),
    );
  }

  const callback = (result: OpenTelemetryBatchResult): void => {
    const snapshot = pool.snapshot();
    const observe = (name: InstrumentName, value: number, attributes: OpenTelemetryAttributes = {}) => {
      const instrument = instruments.get(name);
      if (instrument !== undefined) result.observe(instrument, value, { ...constant, ...attributes });
    };
    const { metrics, keys, at } = snapshot;
    for (const state of STATES) {
      observe('keys', keys.filter((k) => k.state === state).length, { 'keymesh.key.state': state });
    }
    observe('acquires', metrics.acquires);
    observe('releases', metrics.releases);
    observe('failures', metrics.failures);
    observe('rate_limits', metrics.rateLimits);
    observe('acquire.timeouts', metrics.timeouts);
    observe('acquire.aborts', metrics.aborts);
    observe('acquire.queue_full', metrics.queueFull);
    observe('waiters', metrics.waiting);
    observe('ignored_hints', metrics.ignoredHints);
    observe('outage', snapshot.outage === null ? 0 : 1);
    const waits = [
      ['0.5', metrics.waitMs.p50],
      ['0.9', metrics.waitMs.p90],
      ['0.99', metrics.waitMs.p99],
      ['1', metrics.waitMs.max],
    ] as const;
    for (const [quantile, ms] of waits) observe('acquire.wait', ms / 1_000, { quantile });
    for (const key of keys) observeKey(observe, key, at);
  };
  const observables = [...instruments.values()];
  meter.addBatchObservableCallback(callback, observables);
  let bound = true;
  return () => {
    if (!bound) return;
    bound = false;
    meter.removeBatchObservableCallback(callback, observables);
  };
}

function observeKey(
  observe: (name: InstrumentName, value: number, attributes?: OpenTelemetryAttributes) => void,
  key: KeySnapshot,
  at: number,
): void {
  const id: OpenTelemetryAttributes =
    key.label === null
      ? { 'keymesh.key.id': key.keyId }
      : { 'keymesh.key.id': key.keyId, 'keymesh.key.label': key.label };
  for (const state of STATES)
    observe('key.state', key.state === state ? 1 : 0, { ...id, 'keymesh.key.state': state });
  for (const reason of REASONS) {
    observe('key.reason', key.reason === reason ? 1 : 0, { ...id, 'keymesh.key.reason': reason });
  }
  observe('key.in_flight', key.inFlight, id);
  observe('key.successes', key.successes, id);
  observe('key.failures', key.failures, id);
  observe('key.rate_limits', key.rateLimits, id);
  observe('key.consecutive_failures', key.consecutiveFailures, id);
  if (key.latencyEwma !== null) observe('key.latency', key.latencyEwma / 1_000, id);
  observe('key.cooldown_remaining', Math.max(0, key.cooldownUntil - at) / 1_000, id);
  const budget = key.budget;
  if (budget === null) return;
  for (const name of ['rpm', 'tpm', 'rpd'] as const) {
    const level = budget[name];
    if (level === null) continue;
    observe('key.budget.limit', level.limit, { ...id, 'keymesh.budget': name });
    observe('key.budget.remaining', level.remaining, { ...id, 'keymesh.budget': name });
  }
  observe('key.budget.ready_in', Math.max(0, budget.readyAt - at) / 1_000, id);
}
