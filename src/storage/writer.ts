import type { Clock } from '../clock.js';
import { StorageError } from '../errors.js';
import { repairRecord } from './record-shape.js';
import type { KeyRecord, StorageAdapter } from './types.js';

/** Longest pause between retries of a failing write (ms). */
const MAX_RETRY_DELAY_MS = 30_000;
const FIRST_RETRY_DELAY_MS = 100;

export interface CoalescingWriterOptions {
  readonly adapter: StorageAdapter;
  readonly clock: Clock;
  /** Counter-only changes are written at most once per key per this interval (ms). */
  readonly flushIntervalMs: number;
  /**
   * A `save()` not settled within this long (ms) counts as failed: it is reported and retried, so
   * that a store that hangs cannot stop every later write. Default: no limit.
   */
  readonly saveTimeoutMs?: number;
  /** Builds a key's latest record at write time; `undefined` when the key is gone. */
  readonly build: (keyId: string) => KeyRecord | undefined;
  /**
   * Told about every failed write (the writer keeps the records and retries with backoff, `attempt`
   * ≥ 1), and about a record that had to be repaired before it could be stored (`attempt` 0).
   */
  readonly onError: (error: StorageError, attempt: number) => void;
}

/**
 * Sits between the pool and a storage adapter so that nothing on the acquire path waits for I/O.
 * A mark only notes the key; its *latest* record is built at write time, so a key that changes a
 * thousand times between flushes is written once. State changes that matter
 * (cooling, exhausted, recovered, revoked) are flushed at the next tick; counter-only changes wait
 * for the interval. A failed write keeps its records (newer marks win) and is retried with backoff.
 */
export class CoalescingWriter {
  readonly #options: CoalescingWriterOptions;
  readonly #dirty = new Set<string>();
  #timer: unknown;
  #timerAt = Number.POSITIVE_INFINITY;
  #writing: Promise<void> | undefined;
  #failures = 0;
  #closed = false;
  /** Records written so far (for diagnostics and the write-amplification figures). */
  writes = 0;
  /** `save()` calls so far. */
  batches = 0;

  constructor(options: CoalescingWriterOptions) {
    this.#options = options;
  }

  /** Notes that a key changed; `urgent` for state changes, not for counters. */
  mark(keyId: string, urgent: boolean): void {
    if (this.#closed) return;
    this.#dirty.add(keyId);
    if (this.#failures > 0) return; // a retry is already scheduled
    // Counter changes ride on any flush already scheduled (this runs on every settle).
    if (!urgent && this.#timer !== undefined) return;
    this.#schedule(urgent ? 0 : this.#options.flushIntervalMs);
  }

  /** Writes everything marked so far; resolves when it is stored (rejects with the storage error). */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing.catch(() => {});
    if (this.#dirty.size === 0) return;
    const batch = [...this.#dirty];
    this.#dirty.clear();
    const records: KeyRecord[] = [];
    for (const keyId of batch) {
      const record = this.#storable(keyId);
      if (record) records.push(record);
    }
    if (records.length === 0) return;
    const write = (async () => {
      try {
        await this.#bounded(this.#options.adapter.save(records), batch);
        this.writes += records.length;
        this.batches++;
        this.#failures = 0;
      } catch (cause) {
        // Mark the batch again: its keys' latest records are written on the retry, nothing is lost.
        for (const keyId of batch) this.#dirty.add(keyId);
        this.#failures++;
        throw cause instanceof StorageError
          ? cause
          : new StorageError(`Writing key state to ${this.#options.adapter.name} failed`, cause);
      }
    })();
    this.#writing = write;
    try {
      await write;
    } finally {
      this.#writing = undefined;
    }
  }

  /**
   * A key's latest record, made storable: nothing KeyMesh writes may be unreadable by KeyMesh. A
   * value a store cannot hold (an infinite or NaN deadline, say) is repaired field by field and
   * reported, so that one bad value never blocks the batch it rides in.
   */
  #storable(keyId: string): KeyRecord | undefined {
    const built = this.#options.build(keyId);
    if (built === undefined) return undefined;
    const repair = repairRecord(built, keyId);
    if (repair.record && repair.repaired.length === 0) return repair.record;
    const what = repair.record
      ? `stored with ${repair.repaired.join(', ')}`
      : `not stored: ${repair.problem}`;
    this.#options.onError(
      new StorageError(`The record of key ${keyId} held values a store cannot keep; ${what}`),
      0,
    );
    return repair.record;
  }

  /**
   * `saving`, failed with a `StorageError` once `saveTimeoutMs` has passed. Should the save finish
   * after all, its keys are marked again: it may have landed after a newer write of theirs, and the
   * next flush puts their latest records back on top.
   */
  #bounded(saving: Promise<void>, batch: readonly string[]): Promise<void> {
    const timeoutMs = this.#options.saveTimeoutMs;
    if (timeoutMs === undefined) return saving;
    const { clock, adapter } = this.#options;
    return new Promise((resolve, reject) => {
      let timedOut = false;
      const timer = clock.setTimeout(() => {
        timedOut = true;
        reject(
          new StorageError(`Writing key state to ${adapter.name} did not finish within ${timeoutMs} ms`),
        );
      }, timeoutMs);
      const settled = (settle: () => void) => {
        if (!timedOut) {
          clock.clearTimeout(timer);
          settle();
          return;
        }
        for (const keyId of batch) this.mark(keyId, true);
      };
      saving.then(
        () => settled(resolve),
        (error: unknown) => settled(() => reject(error)),
      );
    });
  }

  /** Stops the timers and writes what is left. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cancelTimer();
    await this.flush();
  }

  #schedule(delayMs: number): void {
    const at = this.#options.clock.now() + delayMs;
    if (at >= this.#timerAt) return;
    this.#cancelTimer();
    this.#timerAt = at;
    this.#timer = this.#options.clock.setTimeout(() => this.#onTimer(), delayMs);
  }

  #cancelTimer(): void {
    if (this.#timer !== undefined) this.#options.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    this.flush().then(
      () => {
        if (this.#dirty.size > 0 && !this.#closed) this.#schedule(this.#options.flushIntervalMs);
      },
      (error: unknown) => {
        const storageError =
          error instanceof StorageError ? error : new StorageError('Writing key state failed', error);
        this.#options.onError(storageError, this.#failures);
        if (this.#closed) return;
        const delay = Math.min(MAX_RETRY_DELAY_MS, FIRST_RETRY_DELAY_MS * 2 ** (this.#failures - 1));
        this.#schedule(delay);
      },
    );
  }
}
