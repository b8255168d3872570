import { describe, expect, it } from 'vitest';
import { createTestPool } from '../helpers.js';

describe('key actor context', () => {
  it('stays JSON-only and under 20 top-level fields (V8 makes larger Object.assign copies dictionaries)', async () => {
    const { pool } = await createTestPool(2);
    const lease = await pool.acquire();
    lease.rateLimited({ retryAfterMs: 1_000 });
    for (const ref of Object.values(pool.actor.getSnapshot().context.keys)) {
      const context = ref.getSnapshot().context;
      expect(Object.keys(context).length).toBeLessThan(20);
      expect(JSON.parse(JSON.stringify(context))).toEqual(context);
    }
    await pool.close();
  });
});
