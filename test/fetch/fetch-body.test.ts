import { describe, expect, it } from 'vitest';
import { ReplayableRequest, SseUsageTap, usageFromJson, watchBody } from '../../src/fetch-body.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('usageFromJson', () => {
  it('reads OpenAI chat completion usage', () => {
    expect(usageFromJson({ usage: { prompt_tokens: 12, completion_tokens: 30, total_tokens: 42 } })).toEqual({
      inputTokens: 12,
      outputTokens: 30,
      totalTokens: 42,
    });
  });

  it("reads Anthropic usage, and message_start's nested message usage", () => {
    expect(usageFromJson({ usage: { input_tokens: 7, output_tokens: 9 } })).toEqual({
      inputTokens: 7,
      outputTokens: 9,
    });
    expect(usageFromJson({ type: 'message_start', message: { usage: { input_tokens: 7 } } })).toEqual({
      inputTokens: 7,
    });
  });

  it("reads the OpenAI Responses API's completed response and Gemini usageMetadata", () => {
    expect(
      usageFromJson({ response: { usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 } } }),
    ).toEqual({ inputTokens: 1, outputTokens: 2, totalTokens: 3 });
    expect(
      usageFromJson({ usageMetadata: { promptTokenCount: 4, candidatesTokenCount: 5, totalTokenCount: 9 } }),
    ).toEqual({ inputTokens: 4, outputTokens: 5, totalTokens: 9 });
  });

  it('finds nothing in a body without usage, or with usage: null', () => {
    expect(usageFromJson({ choices: [] })).toBeUndefined();
    expect(usageFromJson({ usage: null })).toBeUndefined();
    expect(usageFromJson('text')).toBeUndefined();
    expect(usageFromJson({ usage: { prompt_tokens: -1, completion_tokens: 'x' } })).toBeUndefined();
  });
});

describe('SseUsageTap', () => {
  it('merges Anthropic message_start and message_delta usage, across chunk boundaries', () => {
    const tap = new SseUsageTap();
    const stream =
      'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":11,"output_tokens":1}}}\n\n' +
      'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"text":"hi"}}\n\n' +
      'event: message_delta\r\ndata: {"type":"message_delta","usage":{"output_tokens":25}}\r\n\r\n';
    for (let i = 0; i < stream.length; i += 7) tap.push(bytes(stream.slice(i, i + 7)));

    expect(tap.usage).toEqual({ inputTokens: 11, outputTokens: 25 });
  });

  it('reads the usage chunk of an OpenAI stream with include_usage', () => {
    const tap = new SseUsageTap();
    tap.push(bytes('data: {"choices":[{"delta":{"content":"a"}}],"usage":null}\n\n'));
    tap.push(
      bytes('data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'),
    );
    tap.push(bytes('data: [DONE]\n\n'));

    expect(tap.usage).toEqual({ inputTokens: 3, outputTokens: 2, totalTokens: 5 });
  });

  it('says nothing for a stream without usage', () => {
    const tap = new SseUsageTap();
    tap.push(bytes('data: {"choices":[]}\n\ndata: [DONE]\n\n'));
    expect(tap.usage).toBeUndefined();
  });
});

describe('ReplayableRequest', () => {
  it('builds the same body as many times as asked, from a streamed body', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(bytes('{"a":'));
        controller.enqueue(bytes('1}'));
        controller.close();
      },
    });
    const request = await ReplayableRequest.from('http://127.0.0.1:9/x', {
      method: 'POST',
      body,
      duplex: 'half',
    });

    expect(await request.build().text()).toBe('{"a":1}');
    expect(await request.build(new Headers({ 'x-api-key': 'k' })).text()).toBe('{"a":1}');
    expect(request.build(new Headers({ 'x-api-key': 'k' })).headers.get('x-api-key')).toBe('k');
  });

  it('keeps init members a Request cannot carry, for the underlying fetch', async () => {
    // Stands in for undici's `dispatcher` (a proxy agent), which the SDKs pass through `fetchOptions`.
    const init: RequestInit & { readonly via: string } = { method: 'GET', headers: { a: 'b' }, via: 'proxy' };
    const request = await ReplayableRequest.from('http://127.0.0.1:9/x', init);

    expect(request.extras).toEqual({ via: 'proxy' });
    expect(request.build().headers.get('a')).toBe('b');
    expect((await ReplayableRequest.from('http://127.0.0.1:9/x', { method: 'GET' })).extras).toBeUndefined();
  });
});

describe('watchBody', () => {
  it('reports the end before the consumer sees it, and cancellation', async () => {
    const seen: string[] = [];
    const watch = {
      onChunk: () => seen.push('chunk'),
      onEnd: () => seen.push('end'),
      onError: () => seen.push('error'),
      onCancel: () => seen.push('cancel'),
    };
    const source = () =>
      new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(bytes('a'));
          controller.enqueue(bytes('b'));
          controller.close();
        },
      });

    const reader = watchBody(source(), watch).getReader();
    while (!(await reader.read()).done) seen.push('read');
    expect(seen).toEqual(['chunk', 'read', 'chunk', 'read', 'end']);

    seen.length = 0;
    const cancelled = watchBody(source(), watch).getReader();
    await cancelled.read();
    await cancelled.cancel();
    expect(seen).toEqual(['chunk', 'cancel']);
  });
});
