/** Formatting of figures for people: durations, rates, percentages. */

/** `850 ms`, `4.2 s`, `3 m 05 s`, `2 h 10 m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '∞';
  const abs = Math.max(0, ms);
  if (abs < 1_000) return `${Math.round(abs)} ms`;
  if (abs < 60_000) return `${(abs / 1_000).toFixed(1)} s`;
  const seconds = Math.round(abs / 1_000);
  if (seconds < 3_600) return `${Math.floor(seconds / 60)} m ${String(seconds % 60).padStart(2, '0')} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 1_440) return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} m`;
  return `${Math.floor(minutes / 1_440)} d ${Math.floor((minutes % 1_440) / 60)} h`;
}

/** Time left until `until` (epoch ms) from `now`, or `-` when it has passed or was never set. */
export function formatLeft(until: number, now: number): string {
  return until > now ? formatDuration(until - now) : '-';
}

/** How long ago `at` (epoch ms) was, or `never` for 0. */
export function formatAgo(at: number, now: number): string {
  if (at <= 0) return 'never';
  return now - at < 1_000 ? 'just now' : `${formatDuration(now - at)} ago`;
}

/** `12.3` with one decimal; `0` stays `0`. */
export function formatRate(perSecond: number): string {
  return Number.isFinite(perSecond) ? perSecond.toFixed(1) : '-';
}

/** `87 %` of `part / whole` (`0.4 %` below 10 %), or `-` when `whole` is 0. */
export function formatPercent(part: number, whole: number): string {
  if (!(whole > 0)) return '-';
  const percent = (100 * part) / whole;
  return `${percent > 0 && percent < 10 ? percent.toFixed(1) : Math.round(percent)} %`;
}

/** Seconds since the start, as the demo's plain lines show them: `[  3.2s]`. */
export function formatElapsed(ms: number): string {
  return `[${(ms / 1_000).toFixed(1).padStart(5)}s]`;
}
