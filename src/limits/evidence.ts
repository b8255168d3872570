import type { HeadersInput } from './headers.js';

/**
 * What can be read from an error or response of unknown shape: SDK errors (OpenAI, Anthropic,
 * Google, Vercel AI SDK), fetch `Response`s, Axios / got errors, parsed or raw JSON bodies, Node network errors.
 * Gathered breadth-first, so the outermost `status` and `headers` win over nested ones.
 */
export interface Evidence {
  /** HTTP status from `status`, `statusCode` or a numeric body `code` (Gemini), if any. */
  readonly status: number | undefined;
  readonly headers: HeadersInput | undefined;
  /** Lower-cased `code`, `type`, string `status` and `reason` values from every level. */
  readonly codes: ReadonlySet<string>;
  /**
   * Error names from every level: the `name` property (`AbortError`, `AI_APICallError`, …) and the
   * class names along the prototype chain (the OpenAI SDK's `APIConnectionTimeoutError` leaves its
   * `name` as `"Error"`; only its class says what it is).
   */
  readonly names: ReadonlySet<string>;
  readonly messages: readonly string[];
  /** google.rpc detail objects (`RetryInfo`, `QuotaFailure`, `ErrorInfo`), recognised by `@type`. */
  readonly details: readonly object[];
}

// Where SDKs and HTTP clients nest the response, the body and the underlying cause (`responseBody`
// and `lastError` are the Vercel AI SDK's `APICallError` and `RetryError`).
const NESTED_KEYS = [
  'error',
  'response',
  'body',
  'data',
  'responseBody',
  'cause',
  'lastError',
  'errors',
  'details',
  'errorDetails',
];
const HEADER_KEYS = ['headers', 'responseHeaders'];
const CODE_KEYS = ['code', 'type', 'status', 'reason'];
const STATUS_KEYS = ['status', 'statusCode', 'status_code'];
// Bounds the walk over hostile or cyclic inputs; real errors are a few levels deep.
const MAX_NODES = 64;
const MAX_JSON_CHARS = 65_536;
// SDK error classes sit a few levels above `Error` (APIConnectionTimeoutError → APIConnectionError →
// APIError → OpenAIError → Error).
const MAX_PROTOTYPES = 8;

/** Reads `node[key]` from anything, without letting a throwing getter escape. */
export function property(node: unknown, key: string): unknown {
  if (typeof node !== 'object' || node === null) return undefined;
  try {
    return Reflect.get(node, key);
  } catch {
    return undefined;
  }
}

function asHttpStatus(value: unknown): number | undefined {
  const status = typeof value === 'string' && /^\d{3}$/.test(value) ? Number(value) : value;
  return typeof status === 'number' && Number.isInteger(status) && status >= 100 && status <= 599
    ? status
    : undefined;
}

function readStatus(node: object): number | undefined {
  for (const key of STATUS_KEYS) {
    const status = asHttpStatus(property(node, key));
    if (status !== undefined) return status;
  }
  // Google bodies put the HTTP status in a numeric `code`; Node's `code`s are strings.
  const code = property(node, 'code');
  return typeof code === 'number' ? asHttpStatus(code) : undefined;
}

/**
 * Finds JSON inside a string: a raw body, or an SDK message that embeds it (`'429 {"type":"error",…}'`,
 * Google's `ApiError` message). Returns `undefined` when there is none.
 */
function parseEmbeddedJson(text: string): unknown {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  if (start === -1 || end <= start || end - start > MAX_JSON_CHARS) return undefined;
  try {
    return JSON.parse(text.slice(start, end + 1));
  } catch {
    return undefined;
  }
}

/** Adds the class names along `node`'s prototype chain to `names`; a hostile prototype (a throwing Proxy trap) ends the walk. */
function addClassNames(node: object, names: Set<string>): void {
  try {
    let proto: unknown = Object.getPrototypeOf(node);
    for (let depth = 0; depth < MAX_PROTOTYPES && typeof proto === 'object' && proto !== null; depth++) {
      if (proto === Object.prototype) return;
      const errorClass: unknown = Reflect.get(proto, 'constructor');
      const name: unknown = typeof errorClass === 'function' ? Reflect.get(errorClass, 'name') : undefined;
      if (typeof name === 'string' && name !== '') names.add(name);
      proto = Object.getPrototypeOf(proto);
    }
  } catch {
    // Nothing more to learn from this node's classes.
  }
}

/** Walks `input` and collects everything classification may need. Never throws. */
export function gatherEvidence(input: unknown): Evidence {
  let status: number | undefined;
  let headers: HeadersInput | undefined;
  const codes = new Set<string>();
  const names = new Set<string>();
  const messages: string[] = [];
  const details: object[] = [];
  const seen = new Set<object>();
  const queue: object[] = [];

  const enqueue = (value: unknown): void => {
    if (typeof value === 'string') {
      const parsed = parseEmbeddedJson(value);
      if (parsed !== undefined) enqueue(parsed);
      return;
    }
    if (typeof value !== 'object' || value === null || seen.has(value) || seen.size >= MAX_NODES) return;
    seen.add(value);
    queue.push(value);
  };

  enqueue(input);
  for (let index = 0; index < queue.length; index++) {
    const node = queue[index];
    if (node === undefined) break;
    if (Array.isArray(node)) {
      for (const item of node) enqueue(item);
      continue;
    }
    status ??= readStatus(node);
    for (const key of HEADER_KEYS) {
      const nodeHeaders = property(node, key);
      if (headers === undefined && typeof nodeHeaders === 'object' && nodeHeaders !== null) {
        headers = nodeHeaders as HeadersInput;
      }
    }
    for (const key of CODE_KEYS) {
      const code = property(node, key);
      if (typeof code === 'string') codes.add(code.toLowerCase());
    }
    const name = property(node, 'name');
    if (typeof name === 'string') names.add(name);
    addClassNames(node, names);
    const message = property(node, 'message');
    if (typeof message === 'string') messages.push(message);
    const error = property(node, 'error');
    // OpenAI-compatible gateways sometimes send `{ "error": "rate_limit_exceeded" }` or a sentence.
    if (typeof error === 'string') {
      codes.add(error.toLowerCase());
      messages.push(error);
    }
    if (typeof property(node, '@type') === 'string') details.push(node);
    if (typeof message === 'string') enqueue(message);
    for (const key of NESTED_KEYS) enqueue(property(node, key));
  }
  return { status, headers, codes, names, messages, details };
}
