// ESM (`"type": "module"` in package.json, or a .mts file): KeyMesh is ESM-first; see below for CommonJS.
import { classifyOutcome, KeyPool } from 'keymesh';
import { startLocalProvider } from 'keymesh/sim';

// A local stand-in for your provider (127.0.0.1) that knows three fake keys. In your app: your
// provider's URL and real keys (e.g. from process.env).
const keys = ['sk-fake-readme-key-a', 'sk-fake-readme-key-b', 'sk-fake-readme-key-c'] as const;
const provider = await startLocalProvider({ keys });
const callProvider = (key: string) =>
  fetch(`${provider.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Hi!' }] }),
  });

const pool = await KeyPool.create({
  keys: [keys[0], keys[1], { key: keys[2], label: 'backup', weight: 2, maxConcurrent: 4 }],
  strategy: 'least-busy', // 'round-robin' | 'weighted' | 'latency' | (candidates) => keyId
});

// 1. Lease, call, report.
const lease = await pool.acquire({ timeoutMs: 10_000, signal: AbortSignal.timeout(60_000) });
try {
  const response = await callProvider(lease.key);
  if (response.status === 429)
    lease.rateLimited({ headers: response.headers }); // rests for the hint
  else if (response.status === 401) lease.fail(response, { kind: 'revoked' });
  else if (!response.ok) lease.fail(new Error(`HTTP ${response.status}`));
  else lease.release({ headers: response.headers }); // latency measured for you
  console.log('reply:', response.status, await response.text());
} catch (error) {
  lease.fail(error); // a network error: counts toward the key's consecutive failures
}

// 2. Or let KeyPool settle it: errors and error responses are classified for you
//    (429 + retry-after / x-ratelimit-reset-* / retry-after-ms → cooling; 401/403 → revoked; …).
const text = await pool.withKey(async (key) => (await callProvider(key)).text());
console.log(classifyOutcome({ status: 429, headers: { 'retry-after': '20' } })); // what withKey does

// Seed-style string API (settles the oldest outstanding lease on that key):
const rawKey = (await pool.acquire()).key;
pool.release(rawKey, { latencyMs: 320 });
pool.markFailed((await pool.acquire()).key, new Error('timeout'));
pool.markRateLimited((await pool.acquire()).key, { cooldownMs: 30_000 });

pool.tryAcquire()?.release(); // a Lease now, or undefined: never waits
console.log(pool.snapshot().keys.map((k) => `${k.keyId} ${k.state}`)); // state, counters, latency, cooldown; never the key
console.log(pool.availableCount()); // keys that can take a lease now
console.log(pool.eta()); // ms until a key is expected to be eligible (0 = now)
pool.on('cooling', (e) => console.log(e.keyId, 'rests until', new Date(e.cooldownUntil)));
const keyId = await pool.addKey('sk-fake-readme-key-d'); // returns its fingerprint (k_…)
await pool.resetKey(keyId); // a raw key or its fingerprint
await pool.removeKey(keyId);
await pool.close();
await provider.close();
console.log(text.length > 0 ? 'done' : 'no reply');
