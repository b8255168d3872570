import {
  type BatchObservableCallback,
  createNoopMeter,
  type Meter,
  type MetricAttributes,
  type MetricOptions,
  metrics,
  type Observable,
} from '@opentelemetry/api';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyPool, VirtualClock } from '../../src/index.js';
import { bindOpenTelemetry, OPEN_TELEMETRY_INSTRUMENTS } from '../../src/metrics/index.js';
import { fakeKeys, pools } from '../helpers.js';

const make = pools();

interface Instrument extends Observable {
  readonly name: string;
  readonly kind: 'gauge' | 'counter';
  readonly options: MetricOptions | undefined;
}

interface Observation {
  readonly name: string;
  readonly value: number;
  readonly attributes: MetricAttributes;
}

/**
 * A `Meter` of `@opentelemetry/api` that records what batch callbacks observe when `collect()` is
 * called, as an SDK's metric reader would. Synchronous instruments are the API's no-ops.
 */
class RecordingMeter implements Meter {
  readonly #noop = createNoopMeter();
  readonly instruments: Instrument[] = [];
  readonly #callbacks = new Map<BatchObservableCallback, readonly Observable[]>();

  createGauge = this.#noop.createGauge.bind(this.#noop);
  createHistogram = this.#noop.createHistogram.bind(this.#noop);
  createCounter = this.#noop.createCounter.bind(this.#noop);
  createUpDownCounter = this.#noop.createUpDownCounter.bind(this.#noop);
  createObservableUpDownCounter = this.#noop.createObservableUpDownCounter.bind(this.#noop);

  createObservableGauge(name: string, options?: MetricOptions): Observable {
    return this.#instrument(name, 'gauge', options);
  }

  createObservableCounter(name: string, options?: MetricOptions): Observable {
    return this.#instrument(name, 'counter', options);
  }

  addBatchObservableCallback(callback: BatchObservableCallback, observables: Observable[]): void {
    this.#callbacks.set(callback, observables);
  }

  removeBatchObservableCallback(callback: BatchObservableCallback): void {
    this.#callbacks.delete(callback);
  }

  async collect(): Promise<Observation[]> {
    const seen: Observation[] = [];
    for (const [callback, observables] of this.#callbacks) {
      await callback({
        observe: (metric, value, attributes = {}) => {
          expect(observables).toContain(metric);
          const instrument = this.instruments.find((i) => i === metric);
          seen.push({ name: instrument?.name ?? '?', value, attributes });
        },
      });
    }
    return seen;
  }

  #instrument(name: string, kind: 'gauge' | 'counter', options: MetricOptions | undefined): Instrument {
    const instrument: Instrument = { name, kind, options, addCallback() {}, removeCallback() {} };
    this.instruments.push(instrument);
    return instrument;
  }
}

async function activePool() {
  const keys = fakeKeys(2, 'sk-test-otel-secret');
  const clock = new VirtualClock();
  const pool = await KeyPool.create({
    keys: [{ key: keys[0] as string, label: 'alpha' }, keys[1] as string],
    clock,
    seed: 3,
  });
  make.track(pool);
  const first = await pool.acquire();
  clock.advance(25);
  first.release({ latencyMs: 25 });
  const second = await pool.acquire();
  second.rateLimited({ retryAfterMs: 10_000 });
  clock.advance(2_000);
  return { pool, keys };
}

afterEach(() => {
  metrics.disable();
});

describe('bindOpenTelemetry', () => {
  it('creates every documented instrument with its kind, unit and description', async () => {
    const { pool } = await activePool();
    const meter = new RecordingMeter();
    bindOpenTelemetry(pool, meter);
    expect(meter.instruments.map((i) => [i.name, i.kind])).toEqual(
      OPEN_TELEMETRY_INSTRUMENTS.map((spec) => [`keymesh.${spec.name}`, spec.kind]),
    );
    for (const instrument of meter.instruments) {
      expect(instrument.options?.unit).toBeTruthy();
      expect(instrument.options?.description).toBeTruthy();
    }
  });

  it('observes the snapshot’s figures, per key under its fingerprint and label', async () => {
    const { pool } = await activePool();
    const meter = new RecordingMeter();
    bindOpenTelemetry(pool, meter, { attributes: { 'keymesh.pool': 'main' } });
    const seen = await meter.collect();
    const snapshot = pool.snapshot();
    const value = (name: string, attributes: MetricAttributes = {}) =>
      seen.find((o) => o.name === name && Object.entries(attributes).every(([k, v]) => o.attributes[k] === v))
        ?.value;

    expect(value('keymesh.acquires')).toBe(2);
    expect(value('keymesh.releases')).toBe(1);
    expect(value('keymesh.rate_limits')).toBe(1);
    expect(value('keymesh.keys', { 'keymesh.key.state': 'cooling' })).toBe(1);
    expect(seen.every((o) => o.attributes['keymesh.pool'] === 'main')).toBe(true);

    const alpha = snapshot.keys.find((k) => k.label === 'alpha');
    const other = snapshot.keys.find((k) => k.label === null);
    expect(
      value('keymesh.key.successes', { 'keymesh.key.id': alpha?.keyId, 'keymesh.key.label': 'alpha' }),
    ).toBe(alpha?.successes);
    const cooling = snapshot.keys.find((k) => k.state === 'cooling');
    expect(value('keymesh.key.cooldown_remaining', { 'keymesh.key.id': cooling?.keyId })).toBeCloseTo(8, 3);
    expect(
      value('keymesh.key.state', { 'keymesh.key.id': cooling?.keyId, 'keymesh.key.state': 'cooling' }),
    ).toBe(1);
    const otherIds = seen.filter((o) => o.attributes['keymesh.key.id'] === other?.keyId);
    expect(otherIds.length).toBeGreaterThan(0);
    expect(otherIds.every((o) => !('keymesh.key.label' in o.attributes))).toBe(true);
  });

  it('observes each key’s budget levels under the budget’s name', async () => {
    const clock = new VirtualClock();
    const [key] = fakeKeys(1, 'sk-test-otel-budget');
    const pool = make.track(
      await KeyPool.create({ keys: [{ key: key as string, rpm: 120, tpm: 1_000 }], clock, seed: 3 }),
    );
    (await pool.acquire({ tokens: 250 })).release({ usage: { totalTokens: 250 } });
    const meter = new RecordingMeter();
    bindOpenTelemetry(pool, meter);
    const budgets = (await meter.collect())
      .filter((o) => o.name.startsWith('keymesh.key.budget.'))
      .map((o) => [o.name, o.attributes['keymesh.budget'], o.value]);
    expect(budgets).toEqual([
      ['keymesh.key.budget.limit', 'rpm', 120],
      ['keymesh.key.budget.remaining', 'rpm', 119],
      ['keymesh.key.budget.limit', 'tpm', 1_000],
      ['keymesh.key.budget.remaining', 'tpm', 750],
      ['keymesh.key.budget.ready_in', undefined, 15],
    ]);
  });

  it('reads a fresh snapshot at each collection and stops after unbinding', async () => {
    const { pool } = await activePool();
    const meter = new RecordingMeter();
    const unbind = bindOpenTelemetry(pool, meter);
    const before = (await meter.collect()).find((o) => o.name === 'keymesh.acquires')?.value;
    (await pool.acquire()).release();
    const after = (await meter.collect()).find((o) => o.name === 'keymesh.acquires')?.value;
    expect([before, after]).toEqual([2, 3]);
    unbind();
    unbind();
    expect(await meter.collect()).toEqual([]);
  });

  it('works through the global @opentelemetry/api, and never reports a secret', async () => {
    const { pool, keys } = await activePool();
    const recording = new RecordingMeter();
    metrics.setGlobalMeterProvider({ getMeter: () => recording });
    bindOpenTelemetry(pool, metrics.getMeter('keymesh'));
    const seen = await recording.collect();
    expect(seen.length).toBeGreaterThan(40);
    const text = JSON.stringify(seen);
    for (const key of keys) expect(text).not.toContain(key.slice(-6));
    for (const key of pool.snapshot().keys) expect(text).not.toContain(key.mask);
  });

  it('binds to the API’s no-op meter without doing anything', async () => {
    const { pool } = await activePool();
    const unbind = bindOpenTelemetry(pool, metrics.getMeter('keymesh'));
    expect(typeof unbind).toBe('function');
    unbind();
  });
});
