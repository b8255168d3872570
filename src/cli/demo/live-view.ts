import type { KeySnapshot } from '../../pool/strategies/types.js';
import { HIDE_CURSOR, type Palette, rewind, SHOW_CURSOR, truncate } from '../ansi.js';
import { formatElapsed, formatLeft, formatRate } from '../format.js';
import type { CliOutput } from '../io.js';
import { renderTable } from '../table.js';
import { paintState } from '../theme.js';

/** What the live view shows at one instant. */
export interface DemoFrame {
  /** Since the first request (ms). */
  readonly elapsedMs: number;
  /** Requests the run will make. */
  readonly requests: number;
  /** Requests finished (served or given up). */
  readonly done: number;
  readonly succeeded: number;
  readonly failed: number;
  /** 429 answers the pool saw. */
  readonly rateLimited: number;
  /** Attempts made again with another key. */
  readonly retries: number;
  /** Successes per second over the last seconds. */
  readonly throughput: number;
  /** The pool's keys, from `pool.snapshot()`. */
  readonly keys: readonly KeySnapshot[];
  /** Epoch ms of the snapshot, for cooldowns. */
  readonly now: number;
  /** The latest notable events, oldest first. */
  readonly events: readonly string[];
}

/** Something that shows the demo while it runs. */
export interface LiveView {
  /** How often the runner should call {@link LiveView.update} (ms). */
  readonly intervalMs: number;
  update(frame: DemoFrame): void;
  /** A notable event (a key revoked, cooling, exhausted), already worded. */
  event(elapsedMs: number, text: string): void;
  /** Draws the final frame and gives the terminal back. */
  stop(frame: DemoFrame): void;
}

const BAR_WIDTH = 30;
/** Events kept on screen. */
export const EVENT_LINES = 5;

/** `[██████░░░░]` for `done` of `total`. */
export function progressBar(done: number, total: number, width = BAR_WIDTH): string {
  const filled = total > 0 ? Math.min(width, Math.round((width * done) / total)) : width;
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
}

/** The per-key table of the live view: state, reason, in flight, cooldown left, successes, 429s. */
export function keyTable(keys: readonly KeySnapshot[], now: number, colors: Palette): string[] {
  return renderTable(
    [
      { title: 'key' },
      { title: 'state' },
      { title: 'reason' },
      { title: 'in flight', align: 'right' },
      { title: 'cooldown left', align: 'right' },
      { title: 'ok', align: 'right' },
      { title: '429', align: 'right' },
      { title: 'fail', align: 'right' },
    ],
    keys.map((k) => [
      k.label ?? k.keyId,
      paintState(colors, k.state),
      k.reason ?? '-',
      String(k.inFlight),
      k.state === 'cooling' ? formatLeft(k.cooldownUntil, now) : '-',
      String(k.successes),
      String(k.rateLimits),
      String(k.failures),
    ]),
    colors.bold,
  );
}

/**
 * The whole terminal frame: progress bar and figures, the key table, the latest events. While the
 * run goes on (`final` false) the event list is padded so that the frame keeps its height.
 */
export function renderFrame(frame: DemoFrame, colors: Palette, final = false): string[] {
  const percent = frame.requests > 0 ? Math.floor((100 * frame.done) / frame.requests) : 100;
  const progress = [
    colors.cyan(progressBar(frame.done, frame.requests)),
    `${String(frame.done).padStart(String(frame.requests).length)}/${frame.requests}`,
    `${String(percent).padStart(3)} %`,
    `${formatRate(frame.throughput).padStart(6)} req/s`,
    `${frame.rateLimited} × 429`,
    `${frame.retries} retried`,
    colors.dim(`${(frame.elapsedMs / 1_000).toFixed(1)} s`),
  ].join('   ');
  const events = frame.events.slice(-EVENT_LINES);
  return [
    progress,
    '',
    ...keyTable(frame.keys, frame.now, colors),
    '',
    colors.dim('recent events'),
    ...(events.length === 0 ? [colors.dim('  none yet')] : events.map((line) => `  ${line}`)),
    ...Array.from({ length: final ? 0 : EVENT_LINES - Math.max(1, events.length) }, () => ''),
  ];
}

/** One plain progress line for logs and pipes. */
export function renderPlainLine(frame: DemoFrame): string {
  const keys = frame.keys
    .map((k) => {
      const detail =
        k.state === 'cooling' && k.cooldownUntil > frame.now
          ? ` ${formatLeft(k.cooldownUntil, frame.now)}`
          : k.reason
            ? ` (${k.reason})`
            : '';
      return `${k.label ?? k.keyId}=${k.state}${detail}`;
    })
    .join(' ');
  return `${formatElapsed(frame.elapsedMs)} ${frame.done}/${frame.requests} done · ${formatRate(frame.throughput)} req/s · ${frame.rateLimited} × 429 · ${frame.retries} retried · ${keys}`;
}

/** Redraws the frame in place on a terminal, ten times a second. */
export function terminalView(out: CliOutput, colors: Palette): LiveView {
  let drawn = 0;
  let started = false;
  const events: string[] = [];
  const draw = (frame: DemoFrame, final = false) => {
    const width = Math.max(40, (out.columns ?? 100) - 1);
    const lines = renderFrame({ ...frame, events: [...events] }, colors, final).map((line) =>
      truncate(line, width),
    );
    out.write(`${started ? rewind(drawn) : HIDE_CURSOR}${lines.join('\n')}\n`);
    started = true;
    drawn = lines.length;
  };
  return {
    intervalMs: 100,
    update: draw,
    event(elapsedMs, text) {
      events.push(`${colors.dim(formatElapsed(elapsedMs))} ${text}`);
      if (events.length > EVENT_LINES) events.shift();
    },
    stop(frame) {
      draw(frame, true);
      out.write(SHOW_CURSOR);
    },
  };
}

/** Prints a progress line every `intervalMs`, and events as they happen: for pipes and CI logs. */
export function plainView(out: CliOutput, intervalMs: number): LiveView {
  return {
    intervalMs,
    update(frame) {
      out.write(`${renderPlainLine(frame)}\n`);
    },
    event(elapsedMs, text) {
      out.write(`${formatElapsed(elapsedMs)} ${text}\n`);
    },
    stop(frame) {
      out.write(`${renderPlainLine(frame)}\n`);
    },
  };
}
