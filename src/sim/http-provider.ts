import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type Clock, coarse, systemClock } from '../clock.js';
import { InvalidConfigError } from '../errors.js';
import type { SimulatedProvider } from './provider.js';
import {
  anthropicErrorBody,
  anthropicMessage,
  type CompletionInit,
  type CompletionUsage,
  openAiChatCompletion,
  openAiChatCompletionChunk,
  openAiErrorBody,
  SIMULATED_REPLY,
} from './wire-shapes.js';

/** Options of {@link startMockProvider}. */
export interface MockProviderOptions {
  /** The model that decides every call (limits, hints, faults, latency). */
  readonly provider: SimulatedProvider;
  /**
   * Clock of the latency timers. Default `systemClock`: this is a real server, so it waits in real
   * time (on Node's plain timers: a network is not sub-millisecond precise either, and precise
   * timers would spin through every call's last 2 ms); the provider's own clock still decides the
   * limits.
   */
  readonly clock?: Clock;
  /** TCP port on 127.0.0.1 (integer 0–65535). Default `0`: a free port chosen by the OS. */
  readonly port?: number;
  /**
   * Divides every `latencyMs` the provider draws: `2` answers twice as fast, `Infinity` answers at
   * once. Must be > 0. Default `1`.
   */
  readonly speed?: number;
}

/** A running mock provider. */
export interface MockProviderServer {
  /**
   * Origin of the server, `http://127.0.0.1:<port>` (no trailing slash). OpenAI SDK:
   * `baseURL: \`${url}/v1\``; Anthropic SDK: `baseURL: url`.
   */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** Stops accepting connections, drops open ones and cancels pending replies. Idempotent. */
  close(): Promise<void>;
}

/** Always loopback: the mock must never be reachable from another machine. */
const HOST = '127.0.0.1';
const MAX_BODY_BYTES = 1_048_576;
const REPLY_WORDS = SIMULATED_REPLY.split(' ');

type Api = 'openai' | 'anthropic';

const ROUTES: Readonly<Record<string, Api>> = {
  '/v1/chat/completions': 'openai',
  '/v1/messages': 'anthropic',
};

/** What the server reads from a completion request, in either API. */
interface CompletionRequest {
  readonly model: string | undefined;
  readonly stream: boolean;
  /** OpenAI `stream_options.include_usage`. */
  readonly includeUsage: boolean;
  readonly inputTokens: number;
  /** `max_tokens` / `max_completion_tokens`, when given. */
  readonly maxTokens: number | undefined;
}

/**
 * Serves a {@link SimulatedProvider} over HTTP on 127.0.0.1, for benchmarks and demos driven by the
 * real SDKs:
 * - `POST /v1/chat/completions` (OpenAI): JSON, or SSE `chat.completion.chunk`s ending in
 *   `data: [DONE]` when the body has `stream: true`;
 * - `POST /v1/messages` (Anthropic): JSON, or SSE with `message_start` … `message_stop` events.
 *
 * The key is read from `Authorization: Bearer …`, `x-api-key` or `x-goog-api-key`. Each call costs
 * its prompt tokens (≈ 4 characters per token) plus `max_tokens` (or the reply's length) against the
 * token limits. Replies are held back by the provider's `latencyMs ÷ speed`, in real time; a stream
 * sends its first event halfway through and spreads the rest over the second half.
 */
export async function startMockProvider(options: MockProviderOptions): Promise<MockProviderServer> {
  const { provider } = options;
  const clock = coarse(options.clock ?? systemClock);
  const port = options.port ?? 0;
  const speed = options.speed ?? 1;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InvalidConfigError('port', `must be an integer in 0–65535, got ${port}`);
  }
  if (!(speed > 0)) throw new InvalidConfigError('speed', `must be > 0, got ${speed}`);

  const pending = new Set<unknown>();
  const later = (ms: number, fn: () => void): void => {
    if (!(ms > 0)) {
      fn();
      return;
    }
    const handle = clock.setTimeout(() => {
      pending.delete(handle);
      fn();
    }, ms);
    pending.add(handle);
  };

  const server = createServer((req, res) => {
    handleRequest(req, res, provider, speed, later).catch((error: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      sendJson(
        res,
        500,
        {},
        openAiErrorBody(`Mock provider failure: ${String(error)}`, 'server_error', null),
      );
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') {
    server.close();
    throw new Error('Mock provider: the server did not report a TCP address');
  }

  let closing: Promise<void> | undefined;
  return {
    url: `http://${HOST}:${address.port}`,
    port: address.port,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        for (const handle of pending) clock.clearTimeout(handle);
        pending.clear();
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handleRequest(
  req: IncomingMessage,
  res: ServerResponse,
  provider: SimulatedProvider,
  speed: number,
  later: (ms: number, fn: () => void) => void,
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  const api = ROUTES[path];
  if (api === undefined) {
    sendJson(
      res,
      404,
      {},
      openAiErrorBody(`Invalid URL (${req.method ?? 'GET'} ${path})`, 'invalid_request_error', null),
    );
    return;
  }
  if (req.method !== 'POST') {
    sendJson(res, 405, { allow: 'POST' }, badRequestBody(api, `${path} only accepts POST`));
    return;
  }
  const text = await readBody(req);
  if (text === undefined) {
    sendJson(res, 413, {}, badRequestBody(api, `Request body larger than ${MAX_BODY_BYTES} bytes`));
    return;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    sendJson(res, 400, {}, badRequestBody(api, 'The request body is not valid JSON'));
    return;
  }
  if (!isRecord(json)) {
    sendJson(res, 400, {}, badRequestBody(api, 'The request body must be a JSON object'));
    return;
  }

  const request = parseCompletionRequest(json);
  const words = REPLY_WORDS.slice(
    0,
    Math.max(1, Math.min(REPLY_WORDS.length, request.maxTokens ?? Number.POSITIVE_INFINITY)),
  );
  const usage: CompletionUsage = { inputTokens: request.inputTokens, outputTokens: words.length };
  const response = provider.call(presentedKey(req), {
    tokens: request.inputTokens + (request.maxTokens ?? usage.outputTokens),
  });
  const waitMs = response.latencyMs / speed;
  const headers = {
    ...(api === 'openai'
      ? {
          'x-request-id': response.requestId,
          'openai-version': '2020-10-01',
          'openai-processing-ms': String(Math.round(response.latencyMs)),
        }
      : { 'request-id': response.requestId }),
    ...response.headers,
  };

  if (response.status !== 200) {
    later(waitMs, () => sendJson(res, response.status, headers, response.body));
    return;
  }
  const init: CompletionInit = {
    id: response.requestId.replace(/^req_/, ''),
    createdAt: provider.clock.now(),
    model: request.model ?? provider.model,
    text: words.join(' '),
    usage,
  };
  if (!request.stream) {
    later(waitMs, () =>
      sendJson(res, 200, headers, api === 'openai' ? openAiChatCompletion(init) : anthropicMessage(init)),
    );
    return;
  }
  const events =
    api === 'openai'
      ? openAiStreamEvents(init, words, request.includeUsage)
      : anthropicStreamEvents(init, words);
  streamEvents(res, headers, events, waitMs, later);
}

/** Sends `events` as one SSE response: the first halfway through `totalMs`, the last at its end. */
function streamEvents(
  res: ServerResponse,
  headers: Readonly<Record<string, string>>,
  events: readonly string[],
  totalMs: number,
  later: (ms: number, fn: () => void) => void,
): void {
  const count = events.length;
  const at = (i: number) => (count <= 1 ? totalMs : totalMs / 2 + ((totalMs / 2) * i) / (count - 1));
  const send = (i: number): void => {
    if (res.destroyed) return;
    if (i === 0) {
      res.writeHead(200, {
        ...headers,
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
      });
    }
    res.write(events[i] ?? '');
    if (i + 1 >= count) {
      res.end();
      return;
    }
    later(at(i + 1) - at(i), () => send(i + 1));
  };
  later(at(0), () => send(0));
}

function openAiStreamEvents(init: CompletionInit, words: readonly string[], includeUsage: boolean): string[] {
  const data = (value: unknown) => `data: ${JSON.stringify(value)}\n\n`;
  const events = [data(openAiChatCompletionChunk(init, { role: 'assistant', content: '' }, null))];
  words.forEach((word, i) => {
    events.push(data(openAiChatCompletionChunk(init, { content: i === 0 ? word : ` ${word}` }, null)));
  });
  events.push(data(openAiChatCompletionChunk(init, {}, 'stop')));
  if (includeUsage) events.push(data(openAiChatCompletionChunk(init, undefined, null, init.usage)));
  events.push('data: [DONE]\n\n');
  return events;
}

function anthropicStreamEvents(init: CompletionInit, words: readonly string[]): string[] {
  const event = (type: string, value: Readonly<Record<string, unknown>>) =>
    `event: ${type}\ndata: ${JSON.stringify({ type, ...value })}\n\n`;
  const message = anthropicMessage(init);
  const events = [
    event('message_start', {
      message: {
        ...message,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: init.usage.inputTokens, output_tokens: 1 },
      },
    }),
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
    event('ping', {}),
  ];
  words.forEach((word, i) => {
    events.push(
      event('content_block_delta', {
        index: 0,
        delta: { type: 'text_delta', text: i === 0 ? word : ` ${word}` },
      }),
    );
  });
  events.push(
    event('content_block_stop', { index: 0 }),
    event('message_delta', {
      delta: { stop_reason: 'end_turn', stop_sequence: null },
      usage: { output_tokens: init.usage.outputTokens },
    }),
    event('message_stop', {}),
  );
  return events;
}

function sendJson(
  res: ServerResponse,
  status: number,
  headers: Readonly<Record<string, string>>,
  body: unknown,
): void {
  if (res.destroyed) return;
  const payload = JSON.stringify(body ?? null);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(payload)),
  });
  res.end(payload);
}

function badRequestBody(api: Api, message: string): unknown {
  return api === 'openai'
    ? openAiErrorBody(message, 'invalid_request_error', null)
    : anthropicErrorBody('invalid_request_error', message);
}

/** The raw key from `Authorization: Bearer …`, `x-api-key` or `x-goog-api-key`; `''` when none. */
function presentedKey(req: IncomingMessage): string {
  const authorization = req.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (match?.[1] !== undefined) return match[1];
  }
  for (const name of ['x-api-key', 'x-goog-api-key']) {
    const value = req.headers[name];
    if (typeof value === 'string' && value.length > 0) return value;
  }
  return '';
}

/** The body as text, or `undefined` when it exceeds {@link MAX_BODY_BYTES}. */
async function readBody(req: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseCompletionRequest(body: Readonly<Record<string, unknown>>): CompletionRequest {
  let characters = textLength(body.system);
  if (Array.isArray(body.messages)) {
    for (const message of body.messages) if (isRecord(message)) characters += textLength(message.content);
  }
  const streamOptions = body.stream_options;
  const maxTokens = [body.max_tokens, body.max_completion_tokens].find(
    (value): value is number => typeof value === 'number' && Number.isInteger(value) && value >= 0,
  );
  return {
    model: typeof body.model === 'string' ? body.model : undefined,
    stream: body.stream === true,
    includeUsage: isRecord(streamOptions) && streamOptions.include_usage === true,
    inputTokens: Math.max(1, Math.ceil(characters / 4)),
    maxTokens,
  };
}

/** Characters of text in a message content: a string, or an array of `{ text }` parts. */
function textLength(content: unknown): number {
  if (typeof content === 'string') return content.length;
  if (!Array.isArray(content)) return 0;
  let length = 0;
  for (const part of content) if (isRecord(part) && typeof part.text === 'string') length += part.text.length;
  return length;
}

function isRecord(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
