import type { LimitView } from './key-limiter.js';

// How OpenAI, Anthropic and Gemini spell responses, errors, durations and rate-limit headers on
// the wire: the shapes their official SDKs parse. Shared by the simulated provider and its HTTP server.

/**
 * Whole milliseconds from `now` until `at`, rounded up so that `now + result >= at` holds in
 * floating point too: a client that waits exactly this long is not early.
 */
export function msUntil(now: number, at: number): number {
  let ms = Math.ceil(at - now);
  if (now + ms < at) ms += 1;
  return Math.max(0, ms);
}

/** `ms` (rounded up to whole ms) as decimal seconds without trailing zeros: 1500 → `'1.5'`. */
function decimalSeconds(ms: number): string {
  const whole = Math.floor(ms / 1000);
  const fraction = ms % 1000;
  return fraction === 0 ? `${whole}` : `${whole}.${String(fraction).padStart(3, '0').replace(/0+$/, '')}`;
}

/**
 * A duration as Go's `time.Duration.String()` writes it, which is what OpenAI's
 * `x-ratelimit-reset-*` headers carry: `'20ms'`, `'1.5s'`, `'6m0s'`, `'1h2m3.5s'`, `'0s'`.
 * @param ms duration in ms, rounded up to a whole ms.
 */
export function formatGoDuration(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total === 0) return '0s';
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const seconds = decimalSeconds(total % 60_000);
  if (hours > 0) return `${hours}h${minutes}m${seconds}s`;
  if (minutes > 0) return `${minutes}m${seconds}s`;
  return `${seconds}s`;
}

/**
 * A duration in protobuf JSON form (`google.protobuf.Duration`), as Gemini's `RetryInfo.retryDelay`
 * carries it: `'46s'`, `'1.5s'`, `'0.02s'`.
 * @param ms duration in ms, rounded up to a whole ms.
 */
export function formatProtoDuration(ms: number): string {
  return `${decimalSeconds(Math.max(0, Math.ceil(ms)))}s`;
}

/** An epoch-ms instant (rounded up to a whole ms) as an RFC 3339 UTC timestamp. */
export function formatRfc3339(epochMs: number): string {
  return new Date(Math.ceil(epochMs)).toISOString();
}

/**
 * OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` headers; a missing view leaves
 * its three headers out. Resets are durations from `now`.
 */
export function openAiRateLimitHeaders(
  now: number,
  requests: LimitView | undefined,
  tokens: LimitView | undefined,
): Record<string, string> {
  const headers: Record<string, string> = {};
  const put = (kind: 'requests' | 'tokens', view: LimitView | undefined) => {
    if (view === undefined) return;
    headers[`x-ratelimit-limit-${kind}`] = String(view.limit);
    headers[`x-ratelimit-remaining-${kind}`] = String(view.remaining);
    if (Number.isFinite(view.resetAt))
      headers[`x-ratelimit-reset-${kind}`] = formatGoDuration(msUntil(now, view.resetAt));
  };
  put('requests', requests);
  put('tokens', tokens);
  return headers;
}

/**
 * Anthropic's `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}` headers, resets as
 * RFC 3339 instants; a missing view leaves its three headers out.
 */
export function anthropicRateLimitHeaders(
  requests: LimitView | undefined,
  tokens: LimitView | undefined,
): Record<string, string> {
  const headers: Record<string, string> = {};
  const put = (kind: 'requests' | 'tokens', view: LimitView | undefined) => {
    if (view === undefined) return;
    headers[`anthropic-ratelimit-${kind}-limit`] = String(view.limit);
    headers[`anthropic-ratelimit-${kind}-remaining`] = String(view.remaining);
    if (Number.isFinite(view.resetAt))
      headers[`anthropic-ratelimit-${kind}-reset`] = formatRfc3339(view.resetAt);
  };
  put('requests', requests);
  put('tokens', tokens);
  return headers;
}

/** The assistant text of every simulated completion; one token per word. */
export const SIMULATED_REPLY = 'This is a simulated reply from the KeyMesh provider.';

/** OpenAI's error envelope. */
export interface OpenAiErrorBody {
  readonly error: {
    readonly message: string;
    readonly type: string;
    readonly param: null;
    readonly code: string | null;
  };
}

/** An OpenAI error body: `type` is e.g. `'requests'`, `'server_error'`; `code` e.g. `'rate_limit_exceeded'`. */
export function openAiErrorBody(message: string, type: string, code: string | null): OpenAiErrorBody {
  return { error: { message, type, param: null, code } };
}

/** Anthropic's error envelope. */
export interface AnthropicErrorBody {
  readonly type: 'error';
  readonly error: { readonly type: string; readonly message: string };
}

/** An Anthropic error body: `type` is e.g. `'rate_limit_error'`, `'authentication_error'`, `'api_error'`. */
export function anthropicErrorBody(type: string, message: string): AnthropicErrorBody {
  return { type: 'error', error: { type, message } };
}

/** Google's `google.rpc.Status` error envelope, as the Gemini API sends it. */
export interface GeminiErrorBody {
  readonly error: {
    readonly code: number;
    readonly message: string;
    readonly status: string;
    readonly details: readonly Readonly<Record<string, unknown>>[];
  };
}

/** A Gemini error body: `code` is the HTTP status, `status` the gRPC code name (`'RESOURCE_EXHAUSTED'`). */
export function geminiErrorBody(
  code: number,
  status: string,
  message: string,
  details: readonly Readonly<Record<string, unknown>>[] = [],
): GeminiErrorBody {
  return { error: { code, message, status, details } };
}

/** Token counts of one completion. */
export interface CompletionUsage {
  /** Tokens in the request (prompt, system and messages). */
  readonly inputTokens: number;
  /** Tokens in the generated reply. */
  readonly outputTokens: number;
}

/** What every completion body is built from. */
export interface CompletionInit {
  /** Provider-style id without its prefix; prefixes (`chatcmpl-`, `msg_`) are added per API. */
  readonly id: string;
  /** Creation time, epoch ms. */
  readonly createdAt: number;
  readonly model: string;
  /** The assistant's reply text. */
  readonly text: string;
  readonly usage: CompletionUsage;
}

/** An OpenAI `chat.completion` object. */
export function openAiChatCompletion(init: CompletionInit) {
  return {
    id: `chatcmpl-${init.id}`,
    object: 'chat.completion' as const,
    created: Math.floor(init.createdAt / 1000),
    model: init.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant' as const, content: init.text, refusal: null },
        logprobs: null,
        finish_reason: 'stop' as const,
      },
    ],
    usage: openAiUsage(init.usage),
    system_fingerprint: 'fp_keymesh_sim',
  };
}

function openAiUsage(usage: CompletionUsage) {
  return {
    prompt_tokens: usage.inputTokens,
    completion_tokens: usage.outputTokens,
    total_tokens: usage.inputTokens + usage.outputTokens,
  };
}

/** What changes from one `chat.completion.chunk` to the next. */
export interface ChunkDelta {
  readonly role?: 'assistant';
  readonly content?: string;
}

/**
 * One OpenAI `chat.completion.chunk`. With `usage`, the final usage-only chunk that
 * `stream_options.include_usage` asks for (empty `choices`).
 */
export function openAiChatCompletionChunk(
  init: Omit<CompletionInit, 'text' | 'usage'>,
  delta: ChunkDelta | undefined,
  finishReason: 'stop' | null,
  usage?: CompletionUsage,
) {
  return {
    id: `chatcmpl-${init.id}`,
    object: 'chat.completion.chunk' as const,
    created: Math.floor(init.createdAt / 1000),
    model: init.model,
    system_fingerprint: 'fp_keymesh_sim',
    choices: delta === undefined ? [] : [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(usage === undefined ? {} : { usage: openAiUsage(usage) }),
  };
}

/** An Anthropic Messages API `message` object. */
export function anthropicMessage(init: CompletionInit) {
  return {
    id: `msg_${init.id}`,
    type: 'message' as const,
    role: 'assistant' as const,
    model: init.model,
    content: [{ type: 'text' as const, text: init.text }],
    stop_reason: 'end_turn' as const,
    stop_sequence: null,
    usage: { input_tokens: init.usage.inputTokens, output_tokens: init.usage.outputTokens },
  };
}

/** A Gemini `generateContent` response. */
export function geminiGenerateContent(init: CompletionInit) {
  return {
    candidates: [
      { content: { role: 'model', parts: [{ text: init.text }] }, finishReason: 'STOP', index: 0 },
    ],
    usageMetadata: {
      promptTokenCount: init.usage.inputTokens,
      candidatesTokenCount: init.usage.outputTokens,
      totalTokenCount: init.usage.inputTokens + init.usage.outputTokens,
    },
    modelVersion: init.model,
    responseId: init.id,
  };
}
