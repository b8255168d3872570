import parsePrometheusTextFormat, { type ParsedFamily } from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { InvalidConfigError, KeyPool, type PoolSnapshot, VirtualClock } from '../../src/index.js';
import { PROMETHEUS_CONTENT_TYPE, toPrometheus } from '../../src/metrics/index.js';
import { fakeKeys, pools } from '../helpers.js';

const make = pools();

/** A pool that has seen every kind of outcome: successes, a 429 with a hint, a revoked key. */
async function busyPool() {
  const keys = fakeKeys(3, 'sk-test-prom-secret');
  const clock = new VirtualClock(1_700_000_000_000);
  const pool = await KeyPool.create({
    keys: [
      { key: keys[0] as string, label: 'alpha', maxConcurrent: 4 },
      { key: keys[1] as string, label: 'say "hi"\\\nnow' },
      keys[2] as string,
    ],
    clock,
    seed: 1,
  });
  make.track(pool);
  for (let i = 0; i < 3; i++) {
    const lease = await pool.acquire();
    clock.advance(40);
    lease.release({ latencyMs: 40 });
  }
  const held = pool.tryAcquire();
  const limited = await pool.acquire();
  limited.rateLimited({ retryAfterMs: 30_000 });
  const revoked = await pool.acquire();
  revoked.fail(new Error('401'), { kind: 'revoked' });
  clock.advance(1_000);
  return { pool, keys, clock, held };
}

function family(families: readonly ParsedFamily[], name: string): ParsedFamily {
  const found = families.find((f) => f.name === name);
  if (!found) throw new Error(`no family ${name}`);
  return found;
}

function sampleOf(f: ParsedFamily, labels: Readonly<Record<string, string>> = {}): string | undefined {
  return f.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value;
}

function keyEntry(snapshot: PoolSnapshot, label: string | null) {
  const key = snapshot.keys.find((k) => k.label === label);
  if (!key) throw new Error(`no key labelled ${String(label)}`);
  return key;
}

describe('toPrometheus', () => {
  it('parses back with an independent parser into the snapshot’s figures', async () => {
    const { pool } = await busyPool();
    const snapshot = pool.snapshot();
    const families = parsePrometheusTextFormat(toPrometheus(snapshot));

    expect(family(families, 'keymesh_acquires_total')).toMatchObject({
      type: 'COUNTER',
      metrics: [{ value: String(snapshot.metrics.acquires) }],
    });
    expect(sampleOf(family(families, 'keymesh_releases_total'))).toBe('3');
    expect(sampleOf(family(families, 'keymesh_rate_limits_total'))).toBe('1');
    expect(sampleOf(family(families, 'keymesh_failures_total'))).toBe('1');
    expect(sampleOf(family(families, 'keymesh_pool_info'), { strategy: 'least-busy' })).toBe('1');

    const keysByState = family(families, 'keymesh_keys');
    expect(keysByState.type).toBe('GAUGE');
    const total = keysByState.metrics.reduce((sum, m) => sum + Number(m.value), 0);
    expect(total).toBe(3);

    const wait = family(families, 'keymesh_acquire_wait_seconds');
    expect(wait.type).toBe('SUMMARY');
    expect(wait.metrics[0]?.quantiles).toEqual({
      '0.5': String(snapshot.metrics.waitMs.p50 / 1000),
      '0.9': String(snapshot.metrics.waitMs.p90 / 1000),
      '0.99': String(snapshot.metrics.waitMs.p99 / 1000),
    });
    expect(wait.metrics[0]?.count).toBe(String(snapshot.metrics.acquires));
  });

  it('reports each key’s state, reason, counters, cooldown and latency under its fingerprint and label', async () => {
    const { pool } = await busyPool();
    const snapshot = pool.snapshot();
    const families = parsePrometheusTextFormat(toPrometheus(snapshot));
    const alpha = keyEntry(snapshot, 'alpha');
    const byAlpha = { key: alpha.keyId, label: 'alpha' };

    expect(sampleOf(family(families, 'keymesh_key_successes_total'), byAlpha)).toBe(String(alpha.successes));
    expect(sampleOf(family(families, 'keymesh_key_max_concurrent'), byAlpha)).toBe('4');
    expect(sampleOf(family(families, 'keymesh_key_latency_seconds'), byAlpha)).toBe('0.04');

    const stateSamples = family(families, 'keymesh_key_state').metrics.filter(
      (m) => m.labels?.key === alpha.keyId,
    );
    expect(stateSamples).toHaveLength(5);
    expect(stateSamples.filter((m) => m.value === '1').map((m) => m.labels?.state)).toEqual([alpha.state]);

    const cooling = snapshot.keys.find((k) => k.state === 'cooling');
    expect(cooling?.reason).toBe('rate-limited');
    if (!cooling) return;
    const remaining = Number(
      sampleOf(family(families, 'keymesh_key_cooldown_remaining_seconds'), { key: cooling.keyId }),
    );
    expect(remaining).toBeCloseTo((cooling.cooldownUntil - snapshot.at) / 1000, 6);
    expect(
      sampleOf(family(families, 'keymesh_key_reason'), { key: cooling.keyId, reason: 'rate-limited' }),
    ).toBe('1');

    const revoked = snapshot.keys.find((k) => k.reason === 'revoked');
    expect(revoked?.state).toBe('exhausted');
    const unlabelled = snapshot.keys.find((k) => k.label === null);
    const uncapped = family(families, 'keymesh_key_max_concurrent').metrics.find(
      (m) => m.labels?.key === unlabelled?.keyId,
    );
    expect(uncapped?.value).toBe('+Inf');
    expect(uncapped?.labels).not.toHaveProperty('label');
  });

  it('escapes label values so that they read back exactly', async () => {
    const { pool } = await busyPool();
    const families = parsePrometheusTextFormat(toPrometheus(pool.snapshot()));
    const labels = family(families, 'keymesh_key_in_flight').metrics.map((m) => m.labels?.label);
    expect(labels).toContain('say "hi"\\\nnow');
  });

  it('never writes a secret or its mask', async () => {
    const { pool, keys } = await busyPool();
    const snapshot = pool.snapshot();
    const text = toPrometheus(snapshot);
    for (const key of keys) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(key.slice(-8));
    }
    for (const key of snapshot.keys) expect(text).not.toContain(key.mask);
  });

  it('is well-formed line by line: HELP and TYPE once before each family, unique series', async () => {
    const { pool } = await busyPool();
    const text = toPrometheus(pool.snapshot(), { labels: { pool: 'main' } });
    expect(text.endsWith('\n')).toBe(true);
    const series = new Set<string>();
    const typed = new Set<string>();
    let current = '';
    for (const line of text.trimEnd().split('\n')) {
      const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$/.exec(line);
      const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|summary)$/.exec(line);
      if (help) {
        current = help[1] ?? '';
        continue;
      }
      if (type) {
        expect(type[1]).toBe(current);
        expect(typed.has(current)).toBe(false);
        typed.add(current);
        continue;
      }
      const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
      expect(sample, line).not.toBeNull();
      const [, name = '', labels = ''] = sample ?? [];
      expect(name === current || name === `${current}_count`, line).toBe(true);
      expect(labels).toContain('pool="main"');
      expect(series.has(`${name}${labels}`), line).toBe(false);
      series.add(`${name}${labels}`);
      expect(Number.isNaN(Number((sample ?? [])[3]?.replace('+Inf', 'Infinity')))).toBe(false);
    }
    expect(typed.size).toBeGreaterThan(20);
  });

  it('names keys by label only, or by fingerprint only, when asked', async () => {
    const { pool } = await busyPool();
    const snapshot = pool.snapshot();
    const byLabel = parsePrometheusTextFormat(toPrometheus(snapshot, { keyLabels: 'label' }));
    const names = family(byLabel, 'keymesh_key_in_flight').metrics.map((m) => m.labels?.key);
    const unlabelled = snapshot.keys.find((k) => k.label === null);
    expect(names).toEqual(['alpha', 'say "hi"\\\nnow', unlabelled?.keyId]);

    const byFingerprint = parsePrometheusTextFormat(toPrometheus(snapshot, { keyLabels: 'fingerprint' }));
    for (const m of family(byFingerprint, 'keymesh_key_in_flight').metrics) {
      expect(Object.keys(m.labels ?? {})).toEqual(['key']);
      expect(m.labels?.key).toMatch(/^k_[0-9a-f]{16}$/);
    }
  });

  it('uses the prefix and constant labels given, and rejects malformed ones', async () => {
    const { pool } = await busyPool();
    const text = toPrometheus(pool.snapshot(), { prefix: 'llm_keys', labels: { pool: 'openai' } });
    const families = parsePrometheusTextFormat(text);
    expect(families.every((f) => f.name.startsWith('llm_keys_'))).toBe(true);
    expect(sampleOf(family(families, 'llm_keys_waiters'), { pool: 'openai' })).toBe('0');

    expect(() => toPrometheus(pool.snapshot(), { prefix: '1bad' })).toThrow(InvalidConfigError);
    expect(() => toPrometheus(pool.snapshot(), { labels: { 'bad-name': 'x' } })).toThrow(InvalidConfigError);
    expect(() => toPrometheus(pool.snapshot(), { labels: { key: 'x' } })).toThrow(/labels\.key/);
  });

  it('is a pure function of the snapshot', async () => {
    const { pool, clock } = await busyPool();
    const snapshot = pool.snapshot();
    const first = toPrometheus(snapshot);
    clock.advance(5_000);
    expect(toPrometheus(snapshot)).toBe(first);
    expect(toPrometheus(pool.snapshot())).not.toBe(first);
    expect(PROMETHEUS_CONTENT_TYPE).toBe('text/plain; version=0.0.4; charset=utf-8');
  });
});
