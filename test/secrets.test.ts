import { inspect as nodeInspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { InspectionEvent } from 'xstate';
import {
  KeyPool,
  type KeyPoolEventName,
  type KeyRecord,
  memoryStorage,
  type StorageAdapter,
  VirtualClock,
} from '../src/index.js';
import { fakeKeys, flushMicrotasks } from './helpers.js';

/** Every string reachable from `value` (object keys included), cycles and functions skipped. */
function strings(value: unknown, out: string[] = [], seen = new Set<unknown>(), depth = 0): string[] {
  if (typeof value === 'string') out.push(value);
  else if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined)
    return out;
  else if (typeof value === 'object' && !seen.has(value) && depth < 12) {
    seen.add(value);
    if (value instanceof Error) {
      out.push(value.message, String(value.stack));
      strings(value.cause, out, seen, depth + 1);
    }
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      strings(v, out, seen, depth + 1);
    }
  }
  return out;
}

describe('secret hygiene', () => {
  it('never lets a raw key reach snapshots, events, errors, storage, inspection or persisted state', async () => {
    const keys = fakeKeys(4, 'sk-test-secret-scan');
    const clock = new VirtualClock();
    const produced: unknown[] = [];
    const inspection: InspectionEvent[] = [];
    const inner = memoryStorage();
    const saved: KeyRecord[] = [];
    const storage: StorageAdapter = {
      name: 'scanned-memory',
      load: (ids) => inner.load(ids),
      save: async (records) => {
        saved.push(...records);
        await inner.save(records);
      },
    };
    const pool = await KeyPool.create({
      keys: [
        keys[0] as string,
        { key: keys[1] as string, label: 'backup', maxConcurrent: 1 },
        keys[2] as string,
        keys[3] as string,
      ],
      clock,
      storage,
      maxFailures: 2,
      flushIntervalMs: 0,
      recovery: { initialDelayMs: 100, maxDelayMs: 400 },
      inspect: (event) => inspection.push(event),
    });
    const names: KeyPoolEventName[] = [
      'acquired',
      'released',
      'failed',
      'rate-limited',
      'cooling',
      'available',
      'exhausted',
      'recovered',
      'revoked',
      'waiting',
      'timeout',
      'storage-error',
      'key-added',
      'key-removed',
      'key-crashed',
    ];
    for (const name of names) pool.on(name, (payload) => produced.push(payload));

    // A busy life: every outcome, waiting, timeouts, recovery, runtime changes, errors.
    // Keys that learned a pace from the 429s below space their grants: time moves while waiting.
    const acquireSoon = async () => {
      let granted = false;
      const waiting = pool.acquire().then((lease) => {
        granted = true;
        return lease;
      });
      for (let step = 0; step < 1_000 && !granted; step++) {
        await flushMicrotasks();
        if (!granted) clock.advance(10);
      }
      return waiting;
    };
    for (let round = 0; round < 30; round++) {
      const leases = [await acquireSoon(), await acquireSoon(), await acquireSoon()];
      produced.push(pool.snapshot());
      const outcome = round % 5;
      for (const lease of leases) {
        if (outcome === 0) lease.release({ latencyMs: 10 + round });
        else if (outcome === 1) lease.fail(new Error('upstream 500'));
        else if (outcome === 2) lease.rateLimited({ retryAfterMs: 50 });
        else if (outcome === 3) lease.release();
        else lease.fail(new Error('flaky'));
      }
      clock.advance(500);
      await flushMicrotasks();
    }
    const revoked = await pool.acquire();
    revoked.fail(new Error('401'), { kind: 'revoked' });
    await pool.addKey('sk-test-secret-scan-added-000000001');
    await pool.removeKey('sk-test-secret-scan-added-000000001');
    await pool.resetKey(keys[0] as string);
    const held = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    const errors: unknown[] = [];
    await pool.acquire({ timeoutMs: 10 }).catch((e: unknown) => errors.push(e));
    clock.advance(10);
    await flushMicrotasks();
    for (const attempt of [
      () => pool.release('sk-test-secret-scan-unknown-0000001'),
      () => held[0]?.release() && held[0]?.release(),
      () => pool.resetKey(keys[2] as string),
    ]) {
      try {
        await attempt();
      } catch (error) {
        errors.push(error);
      }
    }
    await KeyPool.create({ keys: [keys[0] as string, keys[0] as string] }).catch((e: unknown) =>
      errors.push(e),
    );
    produced.push(pool.snapshot(), pool.actor.getPersistedSnapshot(), nodeInspect(held[1], { depth: 5 }));
    produced.push(JSON.stringify(held[1]), String(held[2]));
    await pool.close();
    produced.push(...errors, saved, await inner.load(pool.snapshot().keys.map((k) => k.keyId)));

    const allSecrets = [
      ...keys,
      'sk-test-secret-scan-added-000000001',
      'sk-test-secret-scan-unknown-0000001',
    ];
    const haystacks = [...strings(produced), ...inspection.flatMap((e) => strings(e))];
    expect(errors.length).toBeGreaterThanOrEqual(3);
    expect(inspection.length).toBeGreaterThan(100);
    expect(saved.length).toBeGreaterThan(0);
    for (const secret of allSecrets) {
      const leaks = haystacks.filter((text) => text.includes(secret));
      expect(leaks, `secret ${secret.slice(0, 12)}… leaked`).toEqual([]);
    }
    // The lease still hands the key to the caller who needs it.
    expect(keys).toContain(held[1]?.key);
  });
});
