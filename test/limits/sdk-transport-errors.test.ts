import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import { APICallError, RetryError } from 'ai';
import { APIConnectionError, APIConnectionTimeoutError, APIUserAbortError } from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { classifyOutcome, type KeyPool, type OutcomeKind } from '../../src/index.js';
import { flushMicrotasks, pools } from '../helpers.js';
import { NOW } from './fixtures/clock.js';

const make = pools();

// The SDKs' own classes, built by their own constructors: classification must read what they
// really carry (OpenAI v6 leaves `name` as "Error" on its connection errors).
const timeoutCause = () => new DOMException('The operation was aborted due to timeout', 'TimeoutError');
const aiCallError = (cause: unknown) =>
  new APICallError({
    message: 'Cannot connect to API',
    url: 'http://127.0.0.1:9/v1/chat/completions',
    requestBodyValues: {},
    cause,
    isRetryable: true,
  });

const transportErrors: ReadonlyArray<readonly [string, () => unknown]> = [
  ['openai APIConnectionTimeoutError', () => new APIConnectionTimeoutError()],
  ['openai APIConnectionError', () => new APIConnectionError({ cause: new TypeError('fetch failed') })],
  ['openai APIConnectionError without a cause', () => new APIConnectionError({})],
  ['Anthropic APIConnectionTimeoutError', () => new Anthropic.APIConnectionTimeoutError()],
  ['Anthropic APIConnectionError', () => new Anthropic.APIConnectionError({})],
  ['ai APICallError around a TimeoutError', () => aiCallError(timeoutCause())],
  ['ai APICallError around fetch failed', () => aiCallError(new TypeError('fetch failed'))],
  [
    'ai RetryError after timeouts',
    () =>
      new RetryError({
        message: 'Failed after 3 attempts',
        reason: 'maxRetriesExceeded',
        errors: [aiCallError(timeoutCause()), aiCallError(timeoutCause())],
      }),
  ],
  ['DOMException TimeoutError (AbortSignal.timeout)', timeoutCause],
];

const callerAborts: ReadonlyArray<readonly [string, () => unknown]> = [
  ['openai APIUserAbortError', () => new APIUserAbortError()],
  ['Anthropic APIUserAbortError', () => new Anthropic.APIUserAbortError()],
  ['DOMException AbortError', () => new DOMException('This operation was aborted', 'AbortError')],
];

describe('classifyOutcome: the SDKs’ own transport errors', () => {
  for (const [name, build] of transportErrors) {
    it(`reads ${name} as a provider error`, () => {
      expect(classifyOutcome(build(), { now: NOW }).kind).toBe<OutcomeKind>('provider-error');
    });
  }
  for (const [name, build] of callerAborts) {
    it(`reads ${name} as the caller's own abort`, () => {
      expect(classifyOutcome(build(), { now: NOW }).kind).toBe<OutcomeKind>('aborted');
    });
  }
  it('lets a timeout win over an abort found beside it', () => {
    const both = new APIConnectionError({ cause: new DOMException('aborted', 'AbortError') });
    Object.assign(both, { errors: [new APIConnectionTimeoutError()] });
    expect(classifyOutcome(both, { now: NOW }).kind).toBe<OutcomeKind>('provider-error');
  });
});

describe("classifyOutcome: Node's own network errors", () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((done) => s.close(done))));
  });
  const listen = async (server: Server): Promise<number> => {
    servers.push(server);
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    return (server.address() as AddressInfo).port;
  };
  const thrownBy = (url: string) =>
    fetch(url).then(
      () => undefined,
      (error: unknown) => error,
    );

  it('reads a refused connection (fetch failed, ECONNREFUSED) as a provider error', async () => {
    const server = createServer();
    const port = await listen(server);
    await new Promise((done) => server.close(done));
    servers.pop();
    const error = await thrownBy(`http://127.0.0.1:${port}/`);
    expect(error).toBeInstanceOf(TypeError);
    expect(classifyOutcome(error, { now: NOW }).kind).toBe<OutcomeKind>('provider-error');
  });

  it('reads a connection the server drops (UND_ERR_SOCKET / ECONNRESET) as a provider error', async () => {
    const port = await listen(createServer((request) => request.socket.destroy()));
    const error = await thrownBy(`http://127.0.0.1:${port}/`);
    expect(error).toBeInstanceOf(TypeError);
    expect(classifyOutcome(error, { now: NOW }).kind).toBe<OutcomeKind>('provider-error');
  });
});

/** Runs `withKey` to its end, moving virtual time while it waits (outage backoffs, recoveries). */
async function settleWithKey(pool: KeyPool, advance: (ms: number) => void, fn: (key: string) => unknown) {
  let done = false;
  const run = pool
    .withKey(async (key) => fn(key))
    .then(
      (value) => value,
      (error: unknown) => error,
    )
    .finally(() => {
      done = true;
    });
  for (let i = 0; i < 1_000 && !done; i++) {
    await flushMicrotasks();
    if (!done) advance(50);
  }
  return run;
}

describe('withKey: timeouts and connection errors never exhaust the pool', () => {
  for (const [name, build] of transportErrors) {
    it(`survives eight ${name}s on four keys with maxFailures 2`, async () => {
      const { pool, clock } = await make(4, { maxFailures: 2 });
      for (let call = 0; call < 8; call++) {
        const thrown = build();
        await expect(
          settleWithKey(
            pool,
            (ms) => clock.advance(ms),
            () => Promise.reject(thrown),
          ),
        ).resolves.toBe(thrown);
      }
      const keys = pool.snapshot().keys;
      expect(keys.map((k) => k.state)).not.toContain('exhausted');
      expect(keys.map((k) => k.consecutiveFailures)).toEqual([0, 0, 0, 0]);
      expect(keys.reduce((sum, k) => sum + k.failures, 0)).toBe(8);
    });
  }
});

describe("withKey: the caller's own abort never counts against the key", () => {
  for (const [name, build] of callerAborts) {
    it(`keeps a key healthy through ten ${name}s while another key succeeds`, async () => {
      const { pool, clock, keys } = await make(2, { maxFailures: 2, strategy: 'round-robin' });
      for (let call = 0; call < 20; call++) {
        await settleWithKey(
          pool,
          (ms) => clock.advance(ms),
          (key) => {
            clock.advance(10);
            return key === keys[0] ? Promise.reject(build()) : 'answered';
          },
        );
      }
      const [aborted, other] = pool.snapshot().keys;
      expect(aborted).toMatchObject({
        state: 'available',
        consecutiveFailures: 0,
        failures: 10,
        lastPenaltyAt: 0,
      });
      expect(other).toMatchObject({ state: 'available', successes: 10 });
      expect(pool.snapshot().outage).toBeNull();
    });
  }

  it('reads any throw after the caller’s own signal fired as an abort, whatever its reason', async () => {
    const { pool, clock } = await make(1, { maxFailures: 2 });
    for (let call = 0; call < 5; call++) {
      const controller = new AbortController();
      const reason = new Error('the user closed the tab');
      const thrown = await pool
        .withKey(
          () => {
            clock.advance(10);
            controller.abort(reason);
            return Promise.reject(controller.signal.reason);
          },
          { signal: controller.signal, timeoutMs: 0 },
        )
        .catch((error: unknown) => error);
      expect(thrown).toBe(reason);
    }
    expect(pool.snapshot().keys[0]).toMatchObject({
      state: 'available',
      consecutiveFailures: 0,
      failures: 5,
    });
  });
});
