import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type KeymeshFetchAttempt,
  type KeymeshFetchOptions,
  type KeymeshFetchTiming,
  keymeshFetch,
} from '../../src/fetch.js';
import { InvalidConfigError, KeyPool, Lease, VirtualClock } from '../../src/index.js';
import { chat, fetchKey, mockProviders } from './support.js';

const start = mockProviders();
const [K1, K2, K3] = [fetchKey(1), fetchKey(2), fetchKey(3)] as const;

afterEach(() => {
  vi.restoreAllMocks();
});

/** Spends a key's only request of the minute, so that its next call is answered 429. */
const spent = { requestsPerMinute: 1 } as const;

function attemptsOf(options: Parameters<typeof keymeshFetch>[1] = {}) {
  const attempts: KeymeshFetchAttempt[] = [];
  return { attempts, options: { ...options, onAttempt: (a: KeymeshFetchAttempt) => attempts.push(a) } };
}

describe('keymeshFetch: settling', () => {
  it('releases the lease of a JSON success with its headers and the usage of its body', async () => {
    const { pool, url, clock, provider } = await start([{ key: K1 }]);
    const release = vi.spyOn(Lease.prototype, 'release');
    const res = await chat(keymeshFetch(pool, { clock }), url, { max_tokens: 3 });

    expect(res.status).toBe(200);
    expect(release).toHaveBeenCalledWith({
      headers: expect.any(Headers),
      usage: { inputTokens: 3, outputTokens: 3, totalTokens: 6 },
    });
    expect(pool.snapshot().keys[0]).toMatchObject({ inFlight: 0, successes: 1, state: 'available' });
    expect(provider.keyStats(K1).successes).toBe(1);
    // The caller's body was left unread.
    expect(await res.json()).toMatchObject({ object: 'chat.completion' });
  });

  it('learns from the headers of a success: a key with no requests left rests until the reset', async () => {
    const { pool, url, clock } = await start([{ key: K1, limits: spent }], {
      provider: { successHeaders: true },
    });
    const res = await chat(keymeshFetch(pool, { clock }), url);
    expect(res.status).toBe(200);
    // The stated reset, and a hundredth of the window more (calls reach the provider unevenly).
    expect(pool.snapshot().keys[0]).toMatchObject({
      state: 'cooling',
      reason: 'quota',
      cooldownUntil: clock.now() + 60_600,
    });
  });

  it('retries a 429 on another key and cools the first for the retry-after', async () => {
    const { pool, url, clock, provider } = await start([
      { key: K1, limits: spent },
      { key: K2, limits: spent },
    ]);
    provider.call(K1);
    const res = await chat(keymeshFetch(pool, { clock }), url);

    expect(res.status).toBe(200);
    const [first, second] = pool.snapshot().keys;
    expect(first).toMatchObject({
      state: 'cooling',
      reason: 'rate-limited',
      cooldownUntil: clock.now() + 60_000,
    });
    expect(second).toMatchObject({ state: 'available', successes: 1 });
    expect(provider.keyStats(K1).rateLimited).toBe(1);
    expect(provider.keyStats(K2).successes).toBe(1);
  });

  it('retries a revoked key (401) on another key and revokes it', async () => {
    const { pool, url, clock, provider } = await start([{ key: K1, revokedAt: 0 }, { key: K2 }]);
    const res = await chat(keymeshFetch(pool, { clock }), url);

    expect(res.status).toBe(200);
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'exhausted', reason: 'revoked' });
    expect(provider.keyStats(K1).unauthorized).toBe(1);
  });

  it('exhausts a key whose daily quota is spent (reason quota) and retries on another', async () => {
    const { pool, url, clock } = await start([{ key: K1, limits: { requestsPerDay: 0 } }, { key: K2 }]);
    const res = await chat(keymeshFetch(pool, { clock }), url);

    expect(res.status).toBe(200);
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'exhausted', reason: 'quota' });
  });

  it('tells a spent quota (insufficient_quota) from a rate limit by the error body', async () => {
    const { pool, url, clock } = await start([{ key: K1 }, { key: K2 }]);
    const quotaBody = {
      error: {
        message: 'You exceeded your current quota.',
        type: 'insufficient_quota',
        code: 'insufficient_quota',
      },
    };
    // A bare 429 without headers: only the body says that waiting a minute will not help.
    const spendLimited: typeof fetch = async (input, init) => {
      const request = new Request(input, init);
      if (request.headers.get('authorization') === `Bearer ${K1}`) {
        return new Response(JSON.stringify(quotaBody), {
          status: 429,
          headers: { 'content-type': 'application/json' },
        });
      }
      return fetch(request);
    };
    const res = await chat(keymeshFetch(pool, { clock, fetch: spendLimited }), url);

    expect(res.status).toBe(200);
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'exhausted', reason: 'quota' });
  });

  it('retries a provider error (500) on another key', async () => {
    const { pool, url, clock, provider } = await start([{ key: K1, errorRate: 1 }, { key: K2 }]);
    const { attempts, options } = attemptsOf({ clock });
    const res = await chat(keymeshFetch(pool, options), url);

    expect(res.status).toBe(200);
    expect(provider.keyStats(K1).serverErrors).toBe(1);
    expect(attempts.map((a) => [a.status, a.outcome.kind, a.retrying])).toEqual([
      [500, 'provider-error', true],
      [200, 'success', false],
    ]);
  });

  it('returns the last response unchanged when the retries run out, every lease settled', async () => {
    const keys = [K1, K2, K3].map((key) => ({ key, limits: spent }));
    const { pool, url, clock, provider } = await start(keys);
    for (const { key } of keys) provider.call(key);
    const { attempts, options } = attemptsOf({ clock, retries: 2 });
    const res = await chat(keymeshFetch(pool, options), url);

    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('60');
    expect(await res.json()).toMatchObject({ error: { code: 'rate_limit_exceeded' } });
    expect(attempts.map((a) => a.retrying)).toEqual([true, true, false]);
    expect(new Set(attempts.map((a) => a.keyId)).size).toBe(3);
    expect(pool.snapshot().keys.map((k) => [k.state, k.inFlight])).toEqual([
      ['cooling', 0],
      ['cooling', 0],
      ['cooling', 0],
    ]);
  });

  it('returns the last response when no key can come back in time for a retry', async () => {
    const { pool, url, clock, provider } = await start([{ key: K1, limits: spent }]);
    provider.call(K1);
    const { attempts, options } = attemptsOf({ clock, retries: 2 });
    const res = await chat(keymeshFetch(pool, options), url);

    expect(res.status).toBe(429);
    expect(attempts).toHaveLength(1);
    expect(provider.keyStats(K1).calls).toBe(2);
    await res.body?.cancel();
  });

  it('returns a request error (400) at once, without a retry', async () => {
    const { pool, url, clock } = await start([{ key: K1 }, { key: K2 }]);
    const { attempts, options } = attemptsOf({ clock });
    const res = await keymeshFetch(pool, options)(`${url}/v1/chat/completions`, {
      method: 'POST',
      body: 'not json',
    });

    expect(res.status).toBe(400);
    expect(attempts.map((a) => a.outcome.kind)).toEqual(['failed']);
    expect(pool.snapshot().keys[0]).toMatchObject({ inFlight: 0, failures: 1 });
    await res.body?.cancel();
  });

  it('replays a streamed request body on the retry', async () => {
    const { pool, url, clock, provider } = await start([{ key: K1, limits: spent }, { key: K2 }]);
    provider.call(K1);
    const payload = new TextEncoder().encode(JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }] }));
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(payload.subarray(0, 10));
        controller.enqueue(payload.subarray(10));
        controller.close();
      },
    });
    const request = new Request(`${url}/v1/chat/completions`, { method: 'POST', body, duplex: 'half' });
    const res = await keymeshFetch(pool, { clock })(request);

    expect(res.status).toBe(200);
    expect(provider.keyStats(K1).rateLimited).toBe(1);
    expect(provider.keyStats(K2).successes).toBe(1);
    await res.body?.cancel();
  });
});

describe('keymeshFetch: streaming', () => {
  it('keeps the lease out while an SSE stream is open and releases it, with its usage, at the end', async () => {
    const { pool, url, clock } = await start([{ key: K1 }]);
    const release = vi.spyOn(Lease.prototype, 'release');
    const res = await chat(keymeshFetch(pool, { clock }), url, {
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 2,
    });

    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(res.url).toBe(`${url}/v1/chat/completions`);
    expect(pool.snapshot().keys[0]?.inFlight).toBe(1);
    const text = await res.text();
    expect(text).toContain('data: [DONE]');
    expect(pool.snapshot().keys[0]).toMatchObject({ inFlight: 0, successes: 1 });
    expect(release).toHaveBeenCalledWith({
      headers: expect.any(Headers),
      usage: { inputTokens: 3, outputTokens: 2, totalTokens: 5 },
    });
  });

  it('measures time to first byte and to last byte; the pool takes the latency to the last byte', async () => {
    const { pool, url, clock } = await start([{ key: K1 }]);
    const timings: KeymeshFetchTiming[] = [];
    const res = await chat(keymeshFetch(pool, { clock, onTiming: (t) => timings.push(t) }), url, {
      stream: true,
    });
    const reader = res.body?.getReader();
    clock.advance(10);
    await reader?.read();
    clock.advance(30);
    while (reader && !(await reader.read()).done) {}

    expect(timings).toEqual([
      { keyId: pool.snapshot().keys[0]?.keyId, label: null, ttfbMs: 10, totalMs: 40 },
    ]);
    expect(pool.snapshot().keys[0]).toMatchObject({ inFlight: 0, latencyEwma: 40 });
  });

  it('releases the lease when the consumer cancels the stream', async () => {
    const { pool, url, clock } = await start([{ key: K1 }]);
    const res = await chat(keymeshFetch(pool, { clock }), url, { stream: true });
    const reader = res.body?.getReader();
    await reader?.read();
    expect(pool.snapshot().keys[0]?.inFlight).toBe(1);
    await reader?.cancel();

    expect(pool.snapshot().keys[0]).toMatchObject({ inFlight: 0, successes: 1, failures: 0 });
  });

  it('fails the lease as a provider error when the stream breaks', async () => {
    const { pool, url, clock } = await start([{ key: K1 }]);
    const breaking: typeof fetch = async () => {
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('data: {}\n\n'));
          controller.error(new TypeError('terminated'));
        },
      });
      return new Response(body, { headers: { 'content-type': 'text/event-stream' } });
    };
    const failed = vi.spyOn(Lease.prototype, 'fail');
    const res = await chat(keymeshFetch(pool, { clock, fetch: breaking }), url, { stream: true });

    await expect(res.text()).rejects.toThrow('terminated');
    expect(failed).toHaveBeenCalledWith(expect.any(TypeError), { kind: 'provider' });
    expect(pool.snapshot().keys[0]?.inFlight).toBe(0);
  });
});

describe('keymeshFetch: aborting', () => {
  it("rejects with the signal's reason when the caller aborts the wait for a key", async () => {
    const { pool, url, clock, provider } = await start([{ key: K1 }], { pool: { maxConcurrentPerKey: 1 } });
    const held = await pool.acquire();
    const controller = new AbortController();
    const reason = new Error('user went away');
    const queued = new Promise((resolve) => pool.on('waiting', resolve));
    const pending = chat(keymeshFetch(pool, { clock }), url, {}, { signal: controller.signal });
    await queued;
    controller.abort(reason);

    await expect(pending).rejects.toBe(reason);
    expect(pool.snapshot().metrics.waiting).toBe(0);
    expect(provider.totals.calls).toBe(0);
    held.release();
  });

  it('rejects at once when the signal is already aborted', async () => {
    const { pool, url, clock } = await start([{ key: K1 }]);
    const reason = new Error('too late');
    await expect(
      chat(keymeshFetch(pool, { clock }), url, {}, { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
    expect(pool.snapshot().metrics.acquires).toBe(0);
  });

  it('settles an abort during the call and does not retry it', async () => {
    const { pool, url, clock } = await start([{ key: K1 }, { key: K2 }]);
    let sent: () => void = () => {};
    const reached = new Promise<void>((resolve) => {
      sent = resolve;
    });
    const hanging: typeof fetch = (input, init) => {
      const { signal } = new Request(input, init);
      sent();
      return new Promise((_, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
      });
    };
    const controller = new AbortController();
    const { attempts, options } = attemptsOf({ clock, fetch: hanging });
    const pending = chat(keymeshFetch(pool, options), url, {}, { signal: controller.signal });
    await reached;
    expect(pool.snapshot().keys[0]?.inFlight).toBe(1);
    controller.abort();

    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(attempts.map((a) => [a.outcome.kind, a.retrying])).toEqual([['aborted', false]]);
  });
});

describe('keymeshFetch: injecting the key', () => {
  it("sends x-api-key and drops the SDK's placeholder bearer", async () => {
    const { pool, url, clock, provider } = await start([{ key: K1 }]);
    // The mock reads `Authorization` first: a placeholder left beside the key would be a 401.
    const res = await chat(keymeshFetch(pool, { clock, inject: 'x-api-key' }), url);
    expect(res.status).toBe(200);
    expect(provider.keyStats(K1).successes).toBe(1);
  });

  it('sends x-goog-api-key', async () => {
    const { pool, url, clock, provider } = await start([{ key: K1 }]);
    const res = await chat(keymeshFetch(pool, { clock, inject: 'x-goog-api-key' }), url);
    expect(res.status).toBe(200);
    expect(provider.keyStats(K1).successes).toBe(1);
  });

  it('lets a function put the key on the request', async () => {
    const { pool, url, clock, provider } = await start([{ key: K1 }]);
    const inject = (request: Request, key: string): Request => {
      const headers = new Headers(request.headers);
      headers.set('authorization', `Bearer ${key}`);
      return new Request(request, { headers });
    };
    const res = await chat(keymeshFetch(pool, { clock, inject }), url);
    expect(res.status).toBe(200);
    expect(provider.keyStats(K1).successes).toBe(1);
  });

  it('never puts the key in an error, even one that cannot be sent', async () => {
    const secret = 'sk-test-fetch-broken\nsecret-0001';
    const pool = new KeyPool({ keys: [secret], clock: new VirtualClock() });
    const send = vi.fn<typeof fetch>();
    const error = await keymeshFetch(pool, { fetch: send })('http://127.0.0.1:9/v1/x').catch(
      (e: unknown) => e,
    );

    expect(error).toBeInstanceOf(InvalidConfigError);
    expect(String((error as Error).message)).not.toMatch(/broken|secret/);
    expect(send).not.toHaveBeenCalled();
    expect(pool.snapshot().keys[0]?.inFlight).toBe(0);
    await pool.close();
  });

  it('rejects bad options at once', async () => {
    const pool = new KeyPool({ keys: [K1], clock: new VirtualClock() });
    expect(() => keymeshFetch(pool, { retries: -1 })).toThrow(InvalidConfigError);
    expect(() => keymeshFetch(pool, { retries: 1.5 })).toThrow(InvalidConfigError);
    const unknownInjection = { inject: 'query' } as unknown as KeymeshFetchOptions;
    expect(() => keymeshFetch(pool, unknownInjection)).toThrow(InvalidConfigError);
    await pool.close();
  });

  it('passes init members a Request cannot carry (such as a proxy dispatcher) to the underlying fetch', async () => {
    const { pool, url, clock } = await start([{ key: K1 }]);
    // The request alone goes on: the stand-in member means nothing to Node's fetch.
    const send = vi.fn<typeof fetch>((input) => fetch(input));
    const init: RequestInit & { readonly via: string } = { via: 'proxy-agent' };
    const res = await chat(keymeshFetch(pool, { clock, fetch: send }), url, {}, init);

    expect(res.status).toBe(200);
    expect(send).toHaveBeenCalledWith(expect.any(Request), { via: 'proxy-agent' });
  });
});

describe('keymeshFetch: acquiring', () => {
  it('asks the pool with the acquire options, computed from a readable copy of the request', async () => {
    const { pool, url, clock } = await start([{ key: K1 }], { pool: { keys: [{ key: K1, tpm: 1_000 }] } });
    const seen: string[] = [];
    const acquire = vi.spyOn(pool, 'acquire');
    const res = await chat(
      keymeshFetch(pool, {
        clock,
        acquire: async (request) => {
          seen.push(await request.text());
          return { tokens: 50, priority: 2 };
        },
      }),
      url,
    );

    expect(res.status).toBe(200);
    expect(seen[0]).toContain('Hello there');
    expect(acquire).toHaveBeenCalledWith(expect.objectContaining({ tokens: 50, priority: 2 }));
    await res.body?.cancel();
  });
});
