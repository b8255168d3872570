import { stat } from 'node:fs/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyPool } from '../../src/pool/KeyPool.js';
import { VirtualClock } from '../../src/sim/virtual-clock.js';
import {
  ALL_FACTORIES,
  KEY_A,
  KEY_B,
  KEY_C,
  makeTempDir,
  readAll,
  removeTempDirs,
  TrackedAdapter,
} from './support.js';

afterEach(removeTempDirs);

const SECRETS = [KEY_A, KEY_B, KEY_C];

function encodings(secret: string): Buffer[] {
  return [
    Buffer.from(secret, 'utf8'),
    Buffer.from(secret, 'utf16le'),
    Buffer.from(Buffer.from(secret).toString('base64')),
  ];
}

const FILE_FACTORIES = ALL_FACTORIES.filter((factory) => factory.name !== 'memory');

describe.each(FILE_FACTORIES)('$name store files', (factory) => {
  it('hold no byte of a raw key and are all 0600, while open and after close', async () => {
    const store = factory.create(await makeTempDir());
    const clock = new VirtualClock();
    const storage = new TrackedAdapter(store.open());
    const pool = await KeyPool.create({
      keys: [{ key: KEY_A, label: 'primary' }, KEY_B, KEY_C],
      storage,
      clock,
      seed: 1,
      maxFailures: 1,
    });
    const leases = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    leases[0]?.release({ latencyMs: 120 });
    leases[1]?.rateLimited({ retryAfterMs: 60_000 });
    leases[2]?.fail(new Error(`401 for ${KEY_C}`), { kind: 'revoked' });
    clock.advance(1_000);
    await storage.settled();
    expect(pool.storageWrites.records).toBeGreaterThanOrEqual(3);

    const check = async () => {
      const files = await store.files();
      expect(files.length).toBeGreaterThan(0);
      for (const file of files)
        expect({ file, mode: (await stat(file)).mode & 0o777 }).toEqual({ file, mode: 0o600 });
      const bytes = await readAll(files);
      for (const secret of SECRETS) {
        for (const encoded of encodings(secret)) expect(bytes.includes(encoded)).toBe(false);
      }
    };
    await check();
    await pool.close();
    await check();
  });
});
