/**
 * Measures one B1 loop (one pool, one key count) in this process and prints its figures as JSON on
 * stdout. B1 starts one such process per measurement, so that no loop runs on JIT feedback another
 * pool left behind: the reference, the XState floor and each strategy share `measurePairs`, and the
 * floor shares XState's interpreter with KeyMesh. Measured in one process, whatever ran first made
 * those call sites polymorphic and slowed what came after by 10–25 % (bench/README.md, B1).
 *
 *   node --expose-gc --import tsx bench/lib/pair-process.ts <pool> <keys> <warmMs> <runMs>
 *
 * `<pool>` is `reference`, `floor` or a strategy name.
 */
import { MinimalPool } from '../reference/minimal-pool.js';
import { XStateFloorPool } from '../reference/xstate-floor.js';
import { fakeKeys, measurePairs, type PairPool, STRATEGIES } from '../scenarios/b1-overhead.js';
import { loadProductionBuild } from './keymesh.js';

const [pool, keysArg, warmArg, runArg] = process.argv.slice(2);
const n = Number(keysArg);
const warmMs = Number(warmArg);
const runMs = Number(runArg);
if (pool === undefined || !(n >= 1) || !(warmMs >= 0) || !(runMs > 0)) {
  process.stderr.write('usage: pair-process.ts <reference|floor|strategy> <keys> <warmMs> <runMs>\n');
  process.exit(2);
}

const keys = fakeKeys(n);
let target: PairPool & { close?(): unknown };
if (pool === 'reference') target = new MinimalPool(keys);
else if (pool === 'floor') target = new XStateFloorPool(keys);
else {
  const strategy = STRATEGIES.find((name) => name === pool);
  if (strategy === undefined) {
    process.stderr.write(`pair-process.ts: unknown pool ${pool}\n`);
    process.exit(2);
  }
  const { KeyPool } = await loadProductionBuild();
  target = await KeyPool.create({ keys, strategy, seed: 1 });
}
await measurePairs(target, warmMs);
const figures = await measurePairs(target, runMs);
await target.close?.();
process.stdout.write(JSON.stringify(figures));
