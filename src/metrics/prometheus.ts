import { InvalidConfigError } from '../errors.js';
import type { BudgetLevel } from '../limits/budget.js';
import { KEY_REASONS, type KeyStateName } from '../machines/key.types.js';
import type { PoolSnapshot } from '../pool/KeyPool.js';
import type { KeySnapshot } from '../pool/strategies/types.js';

/** Options of {@link toPrometheus}. */
export interface PrometheusOptions {
  /**
   * Prefix of every metric name, without the trailing underscore. Default `'keymesh'`; must match
   * `[a-zA-Z_:][a-zA-Z0-9_:]*`.
   */
  readonly prefix?: string;
  /**
   * Labels added to every sample, e.g. `{ pool: 'openai' }` to tell several pools apart in one
   * scrape. Default none. Names must match `[a-zA-Z_][a-zA-Z0-9_]*`, must not start with `__`, and
   * must not be one of the labels KeyMesh sets (`key`, `label`, `state`, `reason`, `strategy`,
   * `quantile`, `budget`).
   */
  readonly labels?: Readonly<Record<string, string>>;
  /**
   * How a key is named in its samples. Default `'both'`.
   * - `'both'`: `key` is the fingerprint (`k_…`) and `label` the configured label (absent when none);
   * - `'fingerprint'`: only `key`;
   * - `'label'`: only `key`, set to the label, or to the fingerprint for keys without one.
   *
   * Never the secret, nor its mask.
   */
  readonly keyLabels?: 'both' | 'fingerprint' | 'label';
}

/** The `Content-Type` of {@link toPrometheus}'s output (Prometheus text exposition format 0.0.4). */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const STATES: readonly KeyStateName[] = ['available', 'busy', 'cooling', 'exhausted', 'draining'];
const REASONS = KEY_REASONS;
const QUANTILES = [
  ['0.5', 'p50'],
  ['0.9', 'p90'],
  ['0.99', 'p99'],
] as const;
const RESERVED_LABELS: ReadonlySet<string> = new Set([
  'key',
  'label',
  'state',
  'reason',
  'strategy',
  'quantile',
  'budget',
]);
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

type MetricType = 'counter' | 'gauge' | 'summary';
type Labels = ReadonlyArray<readonly [string, string]>;

/** One metric family under construction: `# HELP`, `# TYPE`, then its samples. */
class Family {
  readonly #lines: string[];

  constructor(
    readonly name: string,
    type: MetricType,
    help: string,
    readonly constant: Labels,
  ) {
    this.#lines = [`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`];
  }

  sample(value: number, labels: Labels = [], suffix = ''): this {
    const all = [...this.constant, ...labels];
    const rendered =
      all.length === 0 ? '' : `{${all.map(([name, v]) => `${name}="${escapeLabelValue(v)}"`).join(',')}}`;
    this.#lines.push(`${this.name}${suffix}${rendered} ${formatValue(value)}`);
    return this;
  }

  render(): string {
    return this.#lines.join('\n');
  }
}

/**
 * Renders a pool snapshot in the Prometheus text exposition format (0.0.4), ready to serve from a
 * `/metrics` endpoint with {@link PROMETHEUS_CONTENT_TYPE}. A pure function of the snapshot: call it
 * on every scrape (`toPrometheus(pool.snapshot())`, or `pool.metrics.toPrometheus()`).
 *
 * Pool-wide families: `keymesh_pool_info{strategy}`, `keymesh_keys{state}`, the counters
 * `keymesh_acquires_total`, `_releases_total`, `_failures_total`, `_rate_limits_total`,
 * `_acquire_timeouts_total`, `_acquire_aborts_total`, `_queue_full_total`, `_ignored_hints_total`, the gauges
 * `keymesh_waiters`, `keymesh_outage`, `keymesh_outage_remaining_seconds`,
 * `keymesh_acquire_wait_max_seconds` and the summary `keymesh_acquire_wait_seconds{quantile}`.
 *
 * Per-key families (labelled per {@link PrometheusOptions.keyLabels}): `keymesh_key_state{state}`
 * and `keymesh_key_reason{reason}` (1 for the current one, 0 for the others), `keymesh_key_in_flight`,
 * `keymesh_key_max_concurrent`, `keymesh_key_consecutive_failures`, `keymesh_key_latency_seconds`
 * (EWMA of successful calls; absent before the first), `keymesh_key_cooldown_remaining_seconds`,
 * `keymesh_key_recovery_remaining_seconds`, `keymesh_key_last_used_timestamp_seconds` (absent when
 * never used), the budget gauges `keymesh_key_budget_limit{budget}` and `keymesh_key_budget_remaining{budget}`
 * (`budget`: `rpm`, `tpm`, `rpd`; only for budgets the key has) and `keymesh_key_budget_ready_in_seconds`,
 * and the counters `keymesh_key_successes_total`, `_failures_total`, `_rate_limits_total`.
 *
 * Labels carry fingerprints or configured labels only: never a secret.
 *
 * @throws InvalidConfigError for a malformed prefix or constant label.
 * @example
 * http.createServer((req, res) => {
 *   res.setHeader('content-type', PROMETHEUS_CONTENT_TYPE);
 *   res.end(toPrometheus(pool.snapshot(), { labels: { pool: 'openai' } }));
 * });
 */
export function toPrometheus(snapshot: PoolSnapshot, options: PrometheusOptions = {}): string {
  const prefix = options.prefix ?? 'keymesh';
  if (!METRIC_NAME.test(prefix)) {
    throw new InvalidConfigError(
      'prefix',
      'expected a Prometheus metric name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)',
    );
  }
  const constant = constantLabels(options.labels ?? {});
  const keyLabels = options.keyLabels ?? 'both';
  if (keyLabels !== 'both' && keyLabels !== 'fingerprint' && keyLabels !== 'label') {
    throw new InvalidConfigError('keyLabels', "expected 'both', 'fingerprint' or 'label'");
  }
  const family = (name: string, type: MetricType, help: string) =>
    new Family(`${prefix}_${name}`, type, help, constant);
  const { metrics, keys, at } = snapshot;
  const seconds = (ms: number) => ms / 1_000;
  const remaining = (until: number) => seconds(Math.max(0, until - at));

  const families: Family[] = [
    family('pool_info', 'gauge', 'Always 1; the strategy in use is a label.').sample(1, [
      ['strategy', snapshot.strategy],
    ]),
    perState(family('keys', 'gauge', 'Keys in each state.'), keys),
    family('acquires_total', 'counter', 'Leases granted.').sample(metrics.acquires),
    family('releases_total', 'counter', 'Leases settled as a success.').sample(metrics.releases),
    family('failures_total', 'counter', 'Leases settled as a failure.').sample(metrics.failures),
    family('rate_limits_total', 'counter', 'Leases settled as rate limited.').sample(metrics.rateLimits),
    family('acquire_timeouts_total', 'counter', 'Acquires that gave up at their deadline.').sample(
      metrics.timeouts,
    ),
    family('acquire_aborts_total', 'counter', 'Acquires aborted by their signal.').sample(metrics.aborts),
    family(
      'queue_full_total',
      'counter',
      'Acquires rejected because maxWaiters callers were waiting.',
    ).sample(metrics.queueFull),
    family('waiters', 'gauge', 'Callers waiting for a key now.').sample(metrics.waiting),
    family(
      'ignored_hints_total',
      'counter',
      'Provider hints ignored as non-finite or beyond maxRetryAfterMs / maxQuotaResetMs.',
    ).sample(metrics.ignoredHints),
    family('outage', 'gauge', '1 while the pool backs off from a provider-wide outage.').sample(
      snapshot.outage === null ? 0 : 1,
    ),
    family(
      'outage_remaining_seconds',
      'gauge',
      'Seconds until the outage backoff ends (0 when none).',
    ).sample(snapshot.outage === null ? 0 : remaining(snapshot.outage.until)),
    waitSummary(family('acquire_wait_seconds', 'summary', 'Time from acquire() to the grant.'), metrics),
    family('acquire_wait_max_seconds', 'gauge', 'Longest time from acquire() to the grant.').sample(
      seconds(metrics.waitMs.max),
    ),
  ];

  const keyId = (key: KeySnapshot): Labels => {
    if (keyLabels === 'fingerprint') return [['key', key.keyId]];
    if (keyLabels === 'label') return [['key', key.label ?? key.keyId]];
    return key.label === null
      ? [['key', key.keyId]]
      : [
          ['key', key.keyId],
          ['label', key.label],
        ];
  };
  const perKey = (
    name: string,
    type: MetricType,
    help: string,
    value: (key: KeySnapshot) => number | undefined,
  ): Family => {
    const f = family(name, type, help);
    for (const key of keys) {
      const v = value(key);
      if (v !== undefined) f.sample(v, keyId(key));
    }
    return f;
  };

  const stateFamily = family('key_state', 'gauge', "1 for the key's current state, 0 for the others.");
  const reasonFamily = family(
    'key_reason',
    'gauge',
    "1 for the reason of the key's state (cooling or exhausted), 0 for the others.",
  );
  for (const key of keys) {
    for (const state of STATES)
      stateFamily.sample(key.state === state ? 1 : 0, [...keyId(key), ['state', state]]);
    for (const reason of REASONS) {
      reasonFamily.sample(key.reason === reason ? 1 : 0, [...keyId(key), ['reason', reason]]);
    }
  }
  families.push(
    stateFamily,
    reasonFamily,
    perKey('key_in_flight', 'gauge', 'Unsettled leases of the key.', (k) => k.inFlight),
    perKey(
      'key_max_concurrent',
      'gauge',
      'Concurrency cap of the key (+Inf when uncapped).',
      (k) => k.maxConcurrent,
    ),
    perKey('key_successes_total', 'counter', 'Calls with the key settled as a success.', (k) => k.successes),
    perKey('key_failures_total', 'counter', 'Calls with the key settled as a failure.', (k) => k.failures),
    perKey(
      'key_rate_limits_total',
      'counter',
      'Calls with the key settled as rate limited.',
      (k) => k.rateLimits,
    ),
    perKey(
      'key_consecutive_failures',
      'gauge',
      'Failures in a row (reset by a success or a rate limit).',
      (k) => k.consecutiveFailures,
    ),
    perKey('key_latency_seconds', 'gauge', 'EWMA of successful call latency.', (k) =>
      k.latencyEwma === null ? undefined : seconds(k.latencyEwma),
    ),
    perKey('key_cooldown_remaining_seconds', 'gauge', 'Seconds until the cooldown ends (0 when none).', (k) =>
      remaining(k.cooldownUntil),
    ),
    perKey(
      'key_recovery_remaining_seconds',
      'gauge',
      'Seconds until the next recovery probe (0 when none).',
      (k) => remaining(k.recoveryAt),
    ),
    perKey('key_last_used_timestamp_seconds', 'gauge', 'When the key was last leased (Unix time).', (k) =>
      k.lastUsedAt > 0 ? seconds(k.lastUsedAt) : undefined,
    ),
    perBudget(
      family('key_budget_limit', 'gauge', 'Configured budget of the key per window (budget: rpm, tpm, rpd).'),
      keys,
      keyId,
      (level) => level.limit,
    ),
    perBudget(
      family(
        'key_budget_remaining',
        'gauge',
        'What the budget holds unspent now: the limit less what leases committed that has not refilled yet.',
      ),
      keys,
      keyId,
      (level) => level.remaining,
    ),
    perKey(
      'key_budget_ready_in_seconds',
      'gauge',
      'Seconds until a new lease fits every budget of the key (0 when one fits now).',
      (k) => (k.budget === null ? undefined : remaining(k.budget.readyAt)),
    ),
  );
  return `${families.map((f) => f.render()).join('\n')}\n`;
}

const BUDGETS = ['rpm', 'tpm', 'rpd'] as const;

function perBudget(
  f: Family,
  keys: readonly KeySnapshot[],
  keyId: (key: KeySnapshot) => Labels,
  value: (level: BudgetLevel) => number,
): Family {
  for (const key of keys) {
    for (const budget of BUDGETS) {
      const level = key.budget?.[budget];
      if (level) f.sample(value(level), [...keyId(key), ['budget', budget]]);
    }
  }
  return f;
}

function perState(f: Family, keys: readonly KeySnapshot[]): Family {
  for (const state of STATES) f.sample(keys.filter((k) => k.state === state).length, [['state', state]]);
  return f;
}

function waitSummary(f: Family, metrics: PoolSnapshot['metrics']): Family {
  for (const [quantile, field] of QUANTILES)
    f.sample(metrics.waitMs[field] / 1_000, [['quantile', quantile]]);
  return f.sample(metrics.acquires, [], '_count');
}

function constantLabels(labels: Readonly<Record<string, string>>): Labels {
  return Object.entries(labels).map(([name, value]) => {
    if (!LABEL_NAME.test(name) || name.startsWith('__') || RESERVED_LABELS.has(name)) {
      throw new InvalidConfigError(
        `labels.${name}`,
        'expected a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __) that KeyMesh does not set itself',
      );
    }
    if (typeof value !== 'string') throw new InvalidConfigError(`labels.${name}`, 'expected a string value');
    return [name, value] as const;
  });
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/** Label values escape `\`, `"` and line feeds. */
function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes `\` and line feeds. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
