import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonFileStorage, KeyPool } from 'keymesh';

const keys = ['sk-fake-stored-key-a', 'sk-fake-stored-key-b'];
const file = join(await mkdtemp(join(tmpdir(), 'keymesh-')), 'keys.json'); // in your app: e.g. '.keymesh/keys.json'

// Several processes on one store: sqliteStorage('.keymesh/keys.db') (npm install better-sqlite3@12).
const storage = jsonFileStorage(file, { onCorrupt: 'quarantine', onQuarantine: (e) => console.warn(e) });
const first = await KeyPool.create({ keys, storage });
first.markRateLimited((await first.acquire()).key, { retryAfterMs: 600_000 }); // rest for ten minutes
await first.close(); // flushes

const second = await KeyPool.create({ keys, storage: jsonFileStorage(file) }); // a restart
console.log(second.snapshot().keys.map((k) => `${k.keyId} ${k.state}`)); // one key is still cooling
await second.close();
