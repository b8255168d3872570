import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { KeyMeshError } from '../../src/errors.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import { memoryStorage } from '../../src/storage/memory.js';
import { KEY_RECORD_VERSION, type KeyRecord, type StorageAdapter } from '../../src/storage/types.js';
import { CoalescingWriter } from '../../src/storage/writer.js';
import {
  type AdapterFactory,
  ALL_FACTORIES,
  makeRecord,
  makeTempDir,
  removeTempDirs,
} from '../storage/support.js';

/**
 * Property-based round trips of every storage adapter. Invariants: `save()` and `load()` succeed or
 * fail with a typed `KeyMeshError`, never anything else; every number in a loaded record is finite;
 * and what was saved (the last accepted record per key) is exactly what loads back, whatever was
 * refused in between. Set KEYMESH_FUZZ_SEED to replay a failure (fast-check prints the seed).
 */
const SEED = Number(process.env.KEYMESH_FUZZ_SEED ?? 0x5eed);
const RUNS = Number(process.env.KEYMESH_FUZZ_RUNS ?? 60);
const runs: Record<string, number> = {};

afterAll(async () => {
  await removeTempDirs();
  if (process.env.KEYMESH_PRINT_FUZZ) console.log('storage fuzz cases:', runs);
});

const NUMBER_FIELDS = [
  'cooldownUntil',
  'recoveryAt',
  'recoveryDelayMs',
  'consecutiveFailures',
  'rateLimitStreak',
  'successes',
  'failures',
  'rateLimits',
  'lastUsedAt',
  'lastPenaltyAt',
  'updatedAt',
] as const;

const hostileNumber = fc.oneof(
  fc.double(),
  fc.integer({ min: 0, max: 2 ** 53 }),
  fc.constantFrom(
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -0,
    1e308,
    -1e308,
    5e-324,
    2 ** 53 + 2,
    2 ** 63,
    8.64e15 + 1,
  ),
);
const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    '__proto__',
    'constructor',
    '\u0000',
    '\ud800',
    'a"b\\c',
    "'; DROP TABLE keymesh_keys; --",
  ),
);
const anything = fc.oneof(hostileNumber, hostileString, fc.constantFrom(null, undefined, true, [], {}, 10n));

/** A value that is usually right for its field and sometimes anything at all. */
const maybe = <T>(good: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 4, arbitrary: good }, { weight: 1, arbitrary: anything });

const keyIds = fc.oneof(
  fc.constantFrom('k_a', 'k_b', 'k_c'),
  hostileString.filter((s) => s.length > 0),
);

const hostileRecord: fc.Arbitrary<KeyRecord> = fc
  .record({
    keyId: keyIds,
    v: maybe(fc.constant(KEY_RECORD_VERSION)),
    label: maybe(fc.option(hostileString)),
    state: maybe(fc.constantFrom('available', 'busy', 'cooling', 'exhausted', 'draining')),
    reason: maybe(
      fc.constantFrom(null, 'rate-limited', 'budget', 'quota', 'failures', 'revoked', 'disabled'),
    ),
    numbers: fc.array(hostileNumber, { minLength: NUMBER_FIELDS.length, maxLength: NUMBER_FIELDS.length }),
    latencyEwma: maybe(fc.option(hostileNumber)),
    budget: maybe(
      fc.option(fc.record({ requestsAt: hostileNumber, tokensAt: hostileNumber, dayAt: hostileNumber })),
    ),
    writer: maybe(hostileString),
    extra: fc.option(anything),
  })
  .map(({ numbers, extra, ...fields }) => {
    const record: Record<string, unknown> = { ...makeRecord(String(fields.keyId)), ...fields };
    NUMBER_FIELDS.forEach((field, i) => {
      record[field] = numbers[i];
    });
    if (extra !== null) record.unknownField = extra;
    return record as unknown as KeyRecord;
  });

/** The fields of a record as any store keeps them (JSON's view: `-0` is `0`). */
function canonical(record: KeyRecord): unknown {
  const { v, keyId, label, state, reason, latencyEwma, budget, writer } = record;
  const known: Record<string, unknown> = { v, keyId, label, state, reason, latencyEwma, writer };
  for (const field of NUMBER_FIELDS) known[field] = record[field];
  if (budget !== undefined) known.budget = budget;
  return JSON.parse(JSON.stringify(known));
}

function expectFinite(record: KeyRecord): void {
  for (const field of NUMBER_FIELDS) expect(Number.isFinite(record[field])).toBe(true);
  if (record.latencyEwma !== null) expect(Number.isFinite(record.latencyEwma)).toBe(true);
  for (const value of Object.values(record.budget ?? {})) expect(Number.isFinite(value)).toBe(true);
}

/** Runs `operation`; a failure must be a KeyMeshError. True when it succeeded. */
async function typed(operation: () => Promise<unknown>): Promise<boolean> {
  try {
    await operation();
    return true;
  } catch (error) {
    if (!(error instanceof KeyMeshError))
      throw new Error(`untyped failure: ${String(error)}`, { cause: error });
    return false;
  }
}

async function expectStoreHolds(
  adapter: StorageAdapter,
  model: ReadonlyMap<string, KeyRecord>,
  ids: string[],
) {
  const loaded = await adapter.load(ids);
  expect([...loaded.keys()].sort()).toEqual([...model.keys()].sort());
  for (const [keyId, record] of loaded) {
    expectFinite(record);
    expect(canonical(record)).toEqual(canonical(model.get(keyId) as KeyRecord));
  }
}

describe.each(ALL_FACTORIES)('$name adapter under arbitrary records', (factory: AdapterFactory) => {
  it('saves or refuses with a typed error, never stores a non-finite number, and loads back what it saved', async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(hostileRecord, { minLength: 1, maxLength: 4 }), { maxLength: 4 }),
        async (batches) => {
          cases++;
          const store = factory.create(await makeTempDir());
          const adapter = store.open();
          const model = new Map<string, KeyRecord>();
          const ids = new Set<string>();
          try {
            for (const batch of batches) {
              for (const record of batch) ids.add(record.keyId);
              if (await typed(() => adapter.save(batch))) {
                for (const record of batch) model.set(record.keyId, record);
              }
              await expectStoreHolds(adapter, model, [...ids]);
            }
            await adapter.close?.();
            // What another process (or the next start) reads.
            const reopened = store.open();
            await expectStoreHolds(reopened, model, [...ids]);
            await reopened.close?.();
          } finally {
            await adapter.close?.();
          }
        },
      ),
      {
        seed: SEED,
        numRuns: RUNS * (factory.name === 'memory' ? 5 : factory.name === 'json-file' ? 2.5 : 1),
      },
    );
    runs[factory.name] = cases;
  });
});

describe('the coalescing writer under arbitrary in-memory state', () => {
  it('always stores something loadable for a key whose state is known, and says when it repaired it', async () => {
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(
        hostileRecord.filter((r) => typeof r.keyId === 'string'),
        fc.constantFrom('available', 'cooling', 'exhausted'),
        async (built, state) => {
          cases++;
          const adapter = memoryStorage();
          const repairs: unknown[] = [];
          const record = { ...built, state, reason: null, v: KEY_RECORD_VERSION } as KeyRecord;
          const writer = new CoalescingWriter({
            adapter,
            clock: new VirtualClock(),
            flushIntervalMs: 1_000,
            build: () => record,
            onError: (error, attempt) => {
              expect(error).toBeInstanceOf(KeyMeshError);
              expect(attempt).toBe(0);
              repairs.push(error);
            },
          });
          writer.mark(record.keyId, true);
          await writer.flush();
          const loaded = (await adapter.load([record.keyId])).get(record.keyId);
          expect(loaded?.state).toBe(state);
          expectFinite(loaded as KeyRecord);
        },
      ),
      { seed: SEED, numRuns: RUNS * 5 },
    );
    runs.writer = cases;
  });
});
