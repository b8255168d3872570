/** ✓ target met, ✗ missed, — no target (informational) or not measurable. */
export type Verdict = '✓' | '✗' | '—';

/** One line of the results table. */
export interface Row {
  /** Scenario id and, for a sub-run, its name: `B1 least-busy 10 keys`. */
  readonly scenario: string;
  readonly figure: string;
  readonly value: string;
  readonly target: string;
  /** What the Python seed measured, from BENCH.md. */
  readonly seed: string;
  readonly verdict: Verdict;
}

/** What one scenario reports: its rows, and its raw figures for `latest.json`. */
export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  readonly rows: readonly Row[];
  readonly figures: unknown;
  /** Wall-clock seconds the scenario took (its own process included). */
  readonly seconds: number;
  /** Set when the scenario could not run to the end. */
  readonly error?: string;
}

/** Options every scenario receives. */
export interface ScenarioOptions {
  /** Shorter runs (`--quick`): the same scenarios, fewer repeats or seconds where it is real time. */
  readonly quick: boolean;
  /** Progress lines go here (stderr), never into the table. */
  readonly progress: (line: string) => void;
}

/** `value ≥ bound` (or `≤`) as a verdict; a value that is not a number misses. */
export function atLeast(value: number, bound: number): Verdict {
  return Number.isFinite(value) && value >= bound ? '✓' : '✗';
}

export function atMost(value: number, bound: number): Verdict {
  return !Number.isNaN(value) && value <= bound ? '✓' : '✗';
}

/** A number with thousands separators and at most `digits` decimals: `102 345`, `0.98`. */
export function formatNumber(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return Number.isNaN(value) ? 'n/a' : value > 0 ? '∞' : '-∞';
  const fixed = value.toFixed(digits);
  const [whole = '', fraction] = fixed.split('.');
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ' ');
  return fraction === undefined ? grouped : `${grouped}.${fraction}`;
}

/** Milliseconds for people: `850 ms`, `4.2 s`, `0.35 ms`. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return formatNumber(ms);
  if (ms >= 10_000) return `${formatNumber(ms / 1_000, 1)} s`;
  if (ms >= 100) return `${formatNumber(ms, 0)} ms`;
  if (ms >= 1) return `${formatNumber(ms, 1)} ms`;
  return `${formatNumber(ms, 2)} ms`;
}

/** Nanoseconds for people: `850 ns`, `4.2 µs`. */
export function formatNs(ns: number): string {
  if (ns >= 1_000_000) return formatMs(ns / 1_000_000);
  if (ns >= 1_000) return `${formatNumber(ns / 1_000, 1)} µs`;
  return `${formatNumber(ns, 0)} ns`;
}

/** Bytes for people: `3.1 KB`, `1.2 MB`, `-40 KB` (1 KB = 1 024 bytes). */
export function formatBytes(bytes: number): string {
  const size = Math.abs(bytes);
  if (size >= 1_048_576) return `${formatNumber(bytes / 1_048_576, 2)} MB`;
  if (size >= 1_024) return `${formatNumber(bytes / 1_024, 1)} KB`;
  return `${formatNumber(bytes, 0)} B`;
}

/** A percentage of a share in [0, 1]: `19.6 %`. */
export function formatShare(share: number): string {
  return `${formatNumber(share * 100, 1)} %`;
}

/** A scenario that could not run to the end: one ✗ row with the reason, so that it does not vanish. */
export function failedResult(id: string, title: string, error: unknown, seconds = 0): ScenarioResult {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return {
    id,
    title,
    rows: [{ scenario: id, figure: title, value: `error: ${message}`, target: '', seed: '', verdict: '✗' }],
    figures: null,
    seconds,
    error: error instanceof Error && error.stack !== undefined ? error.stack : message,
  };
}
