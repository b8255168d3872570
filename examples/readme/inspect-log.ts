import { KeyPool } from 'keymesh';

const pool = await KeyPool.create({
  keys: ['sk-fake-inspect-key-a', 'sk-fake-inspect-key-b'],
  inspect: (event) => {
    // Every event, snapshot and actor context names keys by fingerprint (`keyId`), never by secret.
    if (event.type === '@xstate.event') console.debug(event.actorRef.sessionId, event.event.type);
  },
});
(await pool.acquire()).release();
await pool.close();
