import type { TokenUsage } from './pool/lease.js';

// Standard `RequestInit` members; anything else (undici's `dispatcher`, …) is passed through to the
// underlying fetch untouched, since a `Request` cannot carry it.
const REQUEST_INIT_MEMBERS = new Set([
  'body',
  'cache',
  'credentials',
  'duplex',
  'headers',
  'integrity',
  'keepalive',
  'method',
  'mode',
  'priority',
  'redirect',
  'referrer',
  'referrerPolicy',
  'signal',
  'window',
]);

/**
 * A request whose body is buffered once, so that every attempt (one per leased key) sends the same
 * bytes. SDKs send strings and byte arrays, which cost nothing to keep; a `ReadableStream` body is
 * read into memory before the first attempt.
 */
export class ReplayableRequest {
  readonly #template: Request;
  readonly #body: ArrayBuffer | null;
  /** Members of the caller's `init` that a `Request` cannot hold, for the underlying fetch. */
  readonly extras: RequestInit | undefined;

  private constructor(template: Request, body: ArrayBuffer | null, extras: RequestInit | undefined) {
    this.#template = template;
    this.#body = body;
    this.extras = extras;
  }

  /** Buffers the body of `fetch(input, init)`. Rejects as `new Request(input, init)` would. */
  static async from(
    input: string | URL | Request,
    init: RequestInit | undefined,
  ): Promise<ReplayableRequest> {
    const template = new Request(input, init);
    const body = template.body === null ? null : await template.arrayBuffer();
    return new ReplayableRequest(template, body, extraInit(init));
  }

  /** Follows the caller's signal (from `init.signal` or the input `Request`). */
  get signal(): AbortSignal {
    return this.#template.signal;
  }

  /** The headers the caller set (a copy). */
  get headers(): Headers {
    return new Headers(this.#template.headers);
  }

  /** A fresh `Request` with the buffered body; `headers` replace the caller's when given. */
  build(headers?: Headers): Request {
    return new Request(this.#template, {
      ...(headers === undefined ? {} : { headers }),
      ...(this.#body === null ? {} : { body: this.#body.slice(0) }),
    });
  }
}

function extraInit(init: RequestInit | undefined): RequestInit | undefined {
  if (init === undefined || init === null) return undefined;
  const extras = Object.entries(init).filter(([name]) => !REQUEST_INIT_MEMBERS.has(name));
  return extras.length === 0 ? undefined : (Object.fromEntries(extras) as RequestInit);
}

/** What a watched body reports. Called at most once each of `onEnd`, `onError`, `onCancel` in total. */
export interface BodyWatch {
  /** A chunk passes to the consumer. */
  onChunk(chunk: Uint8Array): void;
  /** The consumer read the last byte. */
  onEnd(): void;
  /** The body failed in transit (network error, abort). */
  onError(error: unknown): void;
  /** The consumer cancelled the body before its end. */
  onCancel(): void;
}

/**
 * A pass-through of `body` that reports its end, failure or cancellation. It pulls only when the
 * consumer reads (high-water mark 0), so the end is seen when the consumer reaches it, and `onEnd`
 * runs before the consumer's final read resolves.
 */
export function watchBody(body: ReadableStream<Uint8Array>, watch: BodyWatch): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let result: Awaited<ReturnType<typeof reader.read>>;
        try {
          result = await reader.read();
        } catch (error) {
          watch.onError(error);
          controller.error(error);
          return;
        }
        if (result.done) {
          watch.onEnd();
          controller.close();
          return;
        }
        watch.onChunk(result.value);
        controller.enqueue(result.value);
      },
      async cancel(reason) {
        watch.onCancel();
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** Reads a whole body as text, calling `onFirstChunk` when its first bytes arrive. */
export async function readBodyText(
  body: ReadableStream<Uint8Array>,
  onFirstChunk: () => void,
): Promise<string> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let text = '';
  let first = true;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    if (first) {
      first = false;
      onFirstChunk();
    }
    text += decoder.decode(value, { stream: true });
  }
}

type MutableUsage = { -readonly [K in keyof TokenUsage]: TokenUsage[K] };

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

function member(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}

function readUsage(usage: unknown): TokenUsage | undefined {
  if (typeof usage !== 'object' || usage === null) return undefined;
  const found: MutableUsage = {};
  const inputTokens =
    count(member(usage, 'prompt_tokens')) ??
    count(member(usage, 'input_tokens')) ??
    count(member(usage, 'promptTokenCount'));
  const outputTokens =
    count(member(usage, 'completion_tokens')) ??
    count(member(usage, 'output_tokens')) ??
    count(member(usage, 'candidatesTokenCount'));
  const totalTokens = count(member(usage, 'total_tokens')) ?? count(member(usage, 'totalTokenCount'));
  if (inputTokens !== undefined) found.inputTokens = inputTokens;
  if (outputTokens !== undefined) found.outputTokens = outputTokens;
  if (totalTokens !== undefined) found.totalTokens = totalTokens;
  return Object.keys(found).length > 0 ? found : undefined;
}

/**
 * The token usage a provider reported in a JSON body or SSE event: OpenAI
 * `usage.{prompt,completion,total}_tokens` (chat completions, and the final chunk of a stream with
 * `include_usage`), Anthropic and OpenAI Responses `usage.{input,output}_tokens` (also inside
 * `message_start`'s `message` and `response.completed`'s `response`), Gemini `usageMetadata`.
 * `undefined` when the body carries none.
 */
export function usageFromJson(value: unknown): TokenUsage | undefined {
  return (
    readUsage(member(value, 'usage')) ??
    readUsage(member(member(value, 'message'), 'usage')) ??
    readUsage(member(member(value, 'response'), 'usage')) ??
    readUsage(member(value, 'usageMetadata'))
  );
}

// A `data:` line longer than this is not a usage event; dropping it bounds the memory of a long line.
const MAX_SSE_LINE = 1_048_576;

/**
 * Collects the token usage carried by an SSE stream as it passes. Later values win field by field:
 * Anthropic sends the input tokens in `message_start` and the running output count in
 * `message_delta`.
 */
export class SseUsageTap {
  readonly #decoder = new TextDecoder();
  #partial = '';
  #skipping = false;
  readonly #usage: MutableUsage = {};

  push(chunk: Uint8Array): void {
    const lines = (this.#partial + this.#decoder.decode(chunk, { stream: true })).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) {
      if (this.#skipping) this.#skipping = false;
      else this.#line(line);
    }
    if (this.#partial.length > MAX_SSE_LINE) {
      this.#partial = '';
      this.#skipping = true;
    }
  }

  /** What the stream said so far; `undefined` when it carried no usage. */
  get usage(): TokenUsage | undefined {
    return Object.keys(this.#usage).length > 0 ? { ...this.#usage } : undefined;
  }

  #line(line: string): void {
    // Cheap filter first: most events carry no usage.
    if (!line.startsWith('data:') || !line.includes('sage')) return;
    let data: unknown;
    try {
      data = JSON.parse(line.slice('data:'.length));
    } catch {
      return;
    }
    Object.assign(this.#usage, usageFromJson(data));
  }
}
