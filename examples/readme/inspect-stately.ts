// Development only: npm install -D @statelyai/inspect
import { createWebSocketInspector } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';
import { KeyPool } from 'keymesh';

// In Node, a local server bridges the events to Stately's inspector: open http://localhost:8080
// (it embeds https://stately.ai/inspect, and is opened for you when run from a terminal).
const port = Number(process.env.INSPECTOR_PORT ?? 8080);
const server = createInspectorServer({ port, autoOpen: process.stdout.isTTY === true });
const inspector = createWebSocketInspector({ url: `ws://127.0.0.1:${port}` });

const pool = await KeyPool.create({
  keys: ['sk-fake-stately-key-a', 'sk-fake-stately-key-b'],
  inspect: process.env.NODE_ENV === 'production' ? undefined : inspector.inspect,
});
(await pool.acquire()).release();
// … your application runs; the inspector shows the pool and each key actor as they change. On shutdown:
await pool.close();
inspector.stop();
server.stop();
process.exit(); // @statelyai/inspect 0.7 keeps retrying a socket stopped before it had connected
