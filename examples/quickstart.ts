/**
 * KeyMesh in one screen: a local mock provider (127.0.0.1, four fake keys with different limits,
 * one revoked part-way, one flaky) and a KeyPool spreading 300 chat requests over them through
 * plain `fetch`, retrying a 429 or a dead key on another key. Nothing leaves this machine.
 *
 *   npm run demo
 */
import { KeyPool, sqliteStorage, systemClock } from '../src/index.js';
import { createRandom, logNormalLatency, SimulatedProvider, startMockProvider } from '../src/sim/index.js';

const REQUESTS = Number(process.env.KEYMESH_DEMO_REQUESTS ?? 300);
const CONCURRENCY = 16;

const keys = [
  { key: 'sk-demo-fake-alpha-000000000000001', label: 'alpha', rps: 20 },
  { key: 'sk-demo-fake-bravo-000000000000002', label: 'bravo', rps: 10 },
  { key: 'sk-demo-fake-charlie-0000000000003', label: 'charlie', rps: 5 },
  { key: 'sk-demo-fake-delta-000000000000004', label: 'delta', rps: 20 },
];

const started = systemClock.now();
const provider = new SimulatedProvider({
  clock: systemClock,
  hints: 'openai',
  successHeaders: true,
  latency: logNormalLatency({ medianMs: 40, p99Ms: 250 }, createRandom(7)),
  keys: keys.map(({ key, label, rps }) => ({
    key,
    label,
    limits: { requestsPerSecond: rps },
    ...(label === 'charlie' ? { errorRate: 0.1 } : {}),
    ...(label === 'delta' ? { revokedAt: started + 1_500 } : {}),
  })),
});
const server = await startMockProvider({ provider });
// State survives restarts in the embedded SQLite store: run the demo twice and keys that were
// told to rest (or were revoked) are restored as such.
const STORE = process.env.KEYMESH_DEMO_STORE ?? '.keymesh/demo.db';
const pool = await KeyPool.create({
  keys: keys.map(({ key, label }) => ({ key, label, maxConcurrent: 6 })),
  acquireTimeoutMs: 20_000,
  storage: sqliteStorage(STORE),
});
const restored = pool.snapshot().keys.filter((k) => k.successes > 0 || k.state !== 'available');
if (restored.length > 0) {
  console.log(
    `restored from ${STORE}: ${restored.map((k) => `${k.label} ${k.state}${k.reason ? ` (${k.reason})` : ''}`).join(', ')}`,
  );
}
pool.on('cooling', (e) =>
  log(`${e.label} cooling ${Math.max(0, e.cooldownUntil - systemClock.now())} ms (${e.reason})`),
);
pool.on('revoked', (e) => log(`${e.label} revoked by the provider: taken out of rotation`));
pool.on('exhausted', (e) => e.reason === 'failures' && log(`${e.label} exhausted after repeated failures`));

function log(line: string): void {
  const t = ((systemClock.now() - started) / 1_000).toFixed(2).padStart(6);
  console.log(`[${t}s] ${line}`);
}

let next = 0;
let ok = 0;
let failed = 0;
let retries = 0;

/** One chat request; a 429 or a dead key is retried on another key (the pool already cooled it). */
async function chat(): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const response = await pool.withKey((key) =>
      fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'demo',
          messages: [{ role: 'user', content: 'hello' }],
          max_tokens: 8,
        }),
      }),
    );
    await response.arrayBuffer();
    if (response.ok) return true;
    if (response.status !== 429 && response.status !== 401 && response.status < 500) return false;
    retries++;
  }
  return false;
}

async function worker(): Promise<void> {
  while (next < REQUESTS) {
    next++;
    const success = await chat().catch(() => false);
    if (success) ok++;
    else failed++;
    if ((ok + failed) % 50 === 0) log(`${ok + failed}/${REQUESTS} done (${ok} ok, ${retries} retried)`);
  }
}

await Promise.all(Array.from({ length: CONCURRENCY }, worker));
const snapshot = pool.snapshot();
await pool.close();
await server.close();

const seconds = (systemClock.now() - started) / 1_000;
console.log(
  `\n${ok} of ${REQUESTS} requests succeeded in ${seconds.toFixed(1)} s (${(ok / seconds).toFixed(0)}/s)`,
);
console.log(
  `wait for a key: p50 ${snapshot.metrics.waitMs.p50.toFixed(1)} ms, p99 ${snapshot.metrics.waitMs.p99.toFixed(1)} ms`,
);
console.log('\nkey       state       reason        ok  429  fail  latency');
for (const k of snapshot.keys) {
  console.log(
    `${(k.label ?? k.keyId).padEnd(9)} ${k.state.padEnd(11)} ${String(k.reason ?? '-').padEnd(12)} ${String(k.successes).padStart(4)} ${String(k.rateLimits).padStart(4)} ${String(k.failures).padStart(5)}  ${k.latencyEwma === null ? '-' : `${k.latencyEwma.toFixed(0)} ms`}`,
  );
}
console.log(`state saved to ${STORE}`);
const totals = provider.totals;
console.log(
  `\nprovider saw ${totals.calls} calls: ${totals.successes} ok, ${totals.rateLimited} rate limited, ${totals.errors} errors`,
);
