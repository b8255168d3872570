import { createWebSocketInspector } from '@statelyai/inspect';
import { createInspectorServer } from '@statelyai/inspect/server';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { KeyPool } from '../../src/index.js';
import { freePort } from './support.js';

const KEYS = ['sk-fake-inspection-key-0001', 'sk-fake-inspection-key-0002'];

interface StatelyMessage {
  readonly type: string;
  readonly event?: { readonly type?: string };
  readonly snapshot?: { readonly context?: Record<string, unknown> };
}

describe('Stately inspection from Node (the README path, with the real @statelyai/inspect)', () => {
  it('carries the pool and key actors through the local inspector server, never a raw key', async () => {
    const port = await freePort();
    const server = createInspectorServer({ port, autoOpen: false });
    // In place of the browser page: a client of the server, which relays every event to it.
    const receiver = new WebSocket(`ws://127.0.0.1:${port}`);
    const raw: string[] = [];
    const released = new Promise<void>((resolve) => {
      receiver.on('message', (data) => {
        const text = String(data);
        raw.push(text);
        const message = JSON.parse(text) as StatelyMessage;
        if (message.type === '@xstate.event' && message.event?.type === 'lease.release') resolve();
      });
    });
    await new Promise((opened) => receiver.once('open', opened));

    const inspector = createWebSocketInspector({ url: `ws://127.0.0.1:${port}` });
    const pool = await KeyPool.create({ keys: KEYS, inspect: inspector.inspect });
    try {
      (await pool.acquire()).release();
      await released;
    } finally {
      await pool.close();
      inspector.stop();
      receiver.close();
      await new Promise((closed) => receiver.once('close', closed));
      server.stop();
    }

    const messages = raw.map((text) => JSON.parse(text) as StatelyMessage);
    const types = new Set(messages.map((m) => m.type));
    expect(types).toEqual(new Set(['@xstate.actor', '@xstate.event', '@xstate.snapshot']));
    // The key actors are there, with the fingerprints the pool names them by.
    const keyIds = new Set(
      messages.flatMap((m) => {
        const keyId = m.snapshot?.context?.keyId;
        return typeof keyId === 'string' ? [keyId] : [];
      }),
    );
    expect(keyIds).toEqual(new Set(pool.snapshot().keys.map((k) => k.keyId)));
    for (const key of KEYS) expect(raw.join('\n')).not.toContain(key);
  });
});
