import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main as anthropicExample } from '../../examples/anthropic.js';
import { main as fetchExample } from '../../examples/fetch.js';
import { main as openaiExample } from '../../examples/openai.js';
import { main as seedStyleExample } from '../../examples/seed-style.js';
import { EXAMPLE_KEYS } from '../../examples/support/local-provider.js';
import { main as vercelAiExample } from '../../examples/vercel-ai.js';
import packageJson from '../../package.json' with { type: 'json' };
import { SIMULATED_REPLY } from '../../src/sim/wire-shapes.js';

const root = resolve(import.meta.dirname, '../..');

/** Runs an example quietly; returns what it logged beside its result. */
async function quietly<T>(
  example: (log: (line: string) => void) => Promise<T>,
): Promise<{ result: T; logged: string }> {
  const lines: string[] = [];
  const result = await example((line) => lines.push(line));
  return { result, logged: lines.join('\n') };
}

function expectNoSecret(text: string): void {
  for (const key of EXAMPLE_KEYS) expect(text).not.toContain(key);
}

describe('examples (against the local mock provider)', () => {
  it('openai: withKey, keymeshFetch and a stream through the OpenAI SDK', async () => {
    const { result, logged } = await quietly(openaiExample);
    expect(result.first).toBe(SIMULATED_REPLY);
    expect(result.replies).toBe(24);
    expect(result.streamed).toBe(SIMULATED_REPLY);
    // 26 calls over three keys allowed 5 requests/s each: every key served some.
    expect(result.keys.reduce((sum, k) => sum + k.successes, 0)).toBe(26);
    for (const key of result.keys) expect(key.successes).toBeGreaterThan(0);
    expectNoSecret(logged);
  });

  it('anthropic: messages and a stream through the Anthropic SDK with x-api-key injection', async () => {
    const { result, logged } = await quietly(anthropicExample);
    expect(result.replies).toBe(16);
    expect(result.first).toBe(SIMULATED_REPLY);
    expect(result.streamed).toBe(SIMULATED_REPLY);
    expect(result.keys.reduce((sum, k) => sum + k.successes, 0)).toBe(17);
    expectNoSecret(logged);
  });

  it('vercel-ai: generateText and streamText through a provider given keymeshFetch', async () => {
    const { result, logged } = await quietly(vercelAiExample);
    expect(result.replies).toBe(12);
    expect(result.first).toBe(SIMULATED_REPLY);
    expect(result.streamed).toBe(SIMULATED_REPLY);
    expect(result.metrics.releases).toBe(13);
    expectNoSecret(logged);
  });

  it('fetch: keymeshFetch and a lease settled by hand', async () => {
    const { result, logged } = await quietly(fetchExample);
    expect(result.statuses).toEqual(Array.from({ length: 20 }, () => 200));
    expect([200, 429]).toContain(result.manualStatus);
    if (result.manualStatus === 200) expect(result.reply).toBe(SIMULATED_REPLY);
    expect(result.snapshot.metrics.acquires).toBe(
      result.snapshot.metrics.releases + result.snapshot.metrics.rateLimits,
    );
    expectNoSecret(logged);
  });

  it('seed-style: acquire, then release / markRateLimited / markFailed with the raw key string', async () => {
    const { result, logged } = await quietly(seedStyleExample);
    expect(result.outcomes.ok).toBe(18);
    expect(result.outcomes.failed).toBe(0);
    const { metrics } = result.status;
    expect(metrics.releases).toBe(18);
    expect(metrics.rateLimits).toBe(result.outcomes.rateLimited);
    expectNoSecret(logged);
  });

  it('has an npm script per example, each pointing at an existing file', () => {
    const scripts = Object.entries(packageJson.scripts).filter(([name]) => name.startsWith('example:'));
    expect(scripts.map(([name]) => name).sort()).toEqual([
      'example:anthropic',
      'example:fetch',
      'example:openai',
      'example:seed-style',
      'example:vercel-ai',
    ]);
    for (const [, command] of scripts) {
      const file = /^tsx (examples\/[\w-]+\.ts)$/.exec(command)?.[1];
      expect(file, command).toBeDefined();
      expect(existsSync(resolve(root, file ?? ''))).toBe(true);
    }
  });

  it('runs as a script, printing what it did', async () => {
    const run = await new Promise<{ code: number | null; stdout: string }>((done) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'examples/fetch.ts'], { cwd: root });
      let stdout = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
      });
      child.on('close', (code) => done({ code, stdout }));
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^keymeshFetch: 20 of 20 answered 200$/m);
    expectNoSecret(run.stdout);
  });
});
