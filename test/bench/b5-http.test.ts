/**
 * B5's harness (bench/scenarios/b5-http.ts) measures what its simulation measures: the span starts
 * where the simulated run starts its windows, and neither process's cold start falls inside it.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { B5_MEMBERS, spanStartAt, warmUp } from '../../bench/scenarios/b5-http.js';
import { systemClock } from '../../src/clock.js';
import * as keymesh from '../../src/index.js';
import {
  familyKey,
  familyProvider,
  type MockProviderServer,
  startMockProvider,
  VirtualClock,
} from '../../src/sim/index.js';

const fixedWindow = B5_MEMBERS.find((member) => member.shape === 'fixed-window');

describe('B5 over HTTP: the measured span', () => {
  it('starts a fixed-window member on a window boundary, so ten seconds hold ten windows, as simulated', () => {
    if (fixedWindow === undefined) throw new Error('B5 serves no fixed-window member');
    const clock = new VirtualClock();
    const origin = clock.now();
    const provider = familyProvider(fixedWindow, { clock, origin });
    const keys = fixedWindow.limits.map((_, index) => familyKey(index));
    // The provider started before the client could measure (process start, pool, warm-up).
    clock.advance(1_700);
    const start = spanStartAt(clock.now(), { origin, windowMs: fixedWindow.windowMs });
    expect(start).toBeGreaterThanOrEqual(clock.now());
    clock.advanceTo(start);
    // A client that takes every call the provider admits, every millisecond of the span.
    const durationMs = 10 * fixedWindow.windowMs;
    let successes = 0;
    for (let t = 0; t < durationMs; t++) {
      for (const key of keys) {
        while (provider.call(key).status === 200) successes++;
      }
      clock.advance(1);
    }
    expect(successes).toBe(provider.capacity(durationMs));
  });

  it('starts at once on windows without boundaries', () => {
    expect(spanStartAt(12_345.5, null)).toBe(12_345.5);
  });
});

describe('B5 over HTTP: warming up', () => {
  const servers: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.close()));
  });

  it('drives the twin through the SDK and keymeshFetch, and charges the measured provider nothing', async () => {
    const member = B5_MEMBERS[0];
    if (member === undefined) throw new Error('B5 serves no member');
    const twin = familyProvider(member, { clock: systemClock });
    const twinServer: MockProviderServer = await startMockProvider({ provider: twin, speed: 10 });
    servers.push(twinServer);
    // The measured side: every request it gets, by method, path and whether it carried a key.
    const seen: string[] = [];
    const measured = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization === undefined ? 'no key' : 'key'}`);
      res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
    });
    await new Promise<void>((resolve) => measured.listen(0, '127.0.0.1', resolve));
    servers.push({
      close: () =>
        new Promise<void>((resolve) => {
          measured.closeAllConnections();
          measured.close(() => resolve());
        }),
    });
    const url = `http://127.0.0.1:${(measured.address() as AddressInfo).port}`;
    const callers = 6;

    await warmUp(
      keymesh,
      { warmUpUrl: twinServer.url, url },
      member.limits.map((_, i) => familyKey(i)),
      callers,
      200,
    );

    expect(twin.totals.successes).toBeGreaterThan(0);
    expect(seen).toEqual(Array.from({ length: callers }, () => 'GET /v1/models no key'));
  });
});
