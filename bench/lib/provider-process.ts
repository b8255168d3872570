/**
 * B5's mock provider in a process of its own, as a real provider is another machine: its clock, its
 * event loop and its CPU time are not the client's. In one process the server's half of every call
 * (accepting the connection, parsing the request, counting the call against the key's window) waits
 * behind the client's work — 100 workers, the SDK, the pool — so the instant at which the provider
 * counts a call drifts with the client's load, a coupling no real provider has (`bench/README.md`, B5).
 *
 * The parent forks this file with `--import tsx` and an IPC channel, sends one {@link ProviderSetup},
 * and gets `{ type: 'listening', url }` back; `{ type: 'totals' }` is answered with the provider's
 * counters and capacity; `{ type: 'close' }` closes the server and ends the process.
 */
import { systemClock } from '../../src/clock.js';
import {
  fixedLatency,
  SimulatedProvider,
  type SimulatedTotals,
  startMockProvider,
} from '../../src/sim/index.js';
import type { RateLimitHintStyle } from '../../src/sim/provider.js';

/** What the child serves: B4a's or B4b's keys, hints and latency. */
export interface ProviderSetup {
  readonly type: 'setup';
  readonly hints: RateLimitHintStyle;
  readonly successHeaders: boolean;
  readonly latencyMs: number;
  readonly keys: readonly { readonly key: string; readonly label: string; readonly rps: number }[];
}

/** Messages from the parent after the setup. */
export type ProviderRequest =
  | { readonly type: 'totals'; readonly durationMs: number }
  | { readonly type: 'close' };

/** Messages to the parent. */
export type ProviderReply =
  | { readonly type: 'listening'; readonly url: string }
  | { readonly type: 'totals'; readonly totals: SimulatedTotals; readonly capacity: number }
  | { readonly type: 'closed' };

function reply(message: ProviderReply): void {
  process.send?.(message);
}

async function serve(setup: ProviderSetup): Promise<void> {
  const provider = new SimulatedProvider({
    clock: systemClock,
    hints: setup.hints,
    successHeaders: setup.successHeaders,
    latency: fixedLatency(setup.latencyMs),
    keys: setup.keys.map((k) => ({ key: k.key, label: k.label, limits: { requestsPerSecond: k.rps } })),
  });
  const server = await startMockProvider({ provider });
  process.on('message', (message: ProviderRequest) => {
    if (message.type === 'totals') {
      reply({ type: 'totals', totals: provider.totals, capacity: provider.capacity(message.durationMs) });
    } else {
      void server.close().finally(() => {
        reply({ type: 'closed' });
        process.disconnect();
      });
    }
  });
  reply({ type: 'listening', url: server.url });
}

if (process.send !== undefined) {
  process.once('message', (message: ProviderSetup) => {
    serve(message).catch((error: unknown) => {
      process.stderr.write(`mock provider process: ${String(error)}\n`);
      process.exit(1);
    });
  });
}
