/**
 * B5's mock provider in a process of its own, as a real provider is another machine: its clock, its
 * event loop and its CPU time are not the client's. In one process the server's half of every call
 * (accepting the connection, parsing the request, counting the call against the key's window) waits
 * behind the client's work — 100 workers, the SDK, the pool — so the instant at which the provider
 * counts a call drifts with the client's load, a coupling no real provider has (`bench/README.md`, B5).
 *
 * The parent forks this file with `--import tsx` and an IPC channel, sends one {@link ProviderSetup},
 * and gets `{ type: 'listening', url }` back; `{ type: 'totals' }` is answered with the provider's
 * counters, capacities and banked requests; `{ type: 'close' }` closes the server and ends the process.
 */
import { systemClock } from '../../src/clock.js';
import {
  type FamilyMember,
  familyProvider,
  fixedLatency,
  SimulatedProvider,
  type SimulatedTotals,
  startMockProvider,
} from '../../src/sim/index.js';
import type { RateLimitHintStyle } from '../../src/sim/provider.js';

/** What the child serves: B4a's or B4b's keys, hints and latency, or a member of B4g's family. */
export type ProviderSetup =
  | {
      readonly type: 'setup';
      readonly hints: RateLimitHintStyle;
      readonly successHeaders: boolean;
      readonly latencyMs: number;
      readonly keys: readonly { readonly key: string; readonly label: string; readonly rps: number }[];
    }
  | { readonly type: 'family'; readonly member: FamilyMember };

/**
 * Messages from the parent after the setup. `totals`: the counters now, the capacity over each of
 * `durationsMs`, and what the buckets hold now (`SimulatedProvider.banked`).
 */
export type ProviderRequest =
  | { readonly type: 'totals'; readonly durationsMs: readonly number[] }
  | { readonly type: 'close' };

/** Messages to the parent. */
export type ProviderReply =
  | { readonly type: 'listening'; readonly url: string }
  | {
      readonly type: 'totals';
      readonly totals: SimulatedTotals;
      readonly capacities: readonly number[];
      readonly banked: number;
    }
  | { readonly type: 'closed' };

function reply(message: ProviderReply): void {
  process.send?.(message);
}

async function serve(setup: ProviderSetup): Promise<void> {
  const provider =
    setup.type === 'family'
      ? familyProvider(setup.member, { clock: systemClock })
      : new SimulatedProvider({
          clock: systemClock,
          hints: setup.hints,
          successHeaders: setup.successHeaders,
          latency: fixedLatency(setup.latencyMs),
          keys: setup.keys.map((k) => ({ key: k.key, label: k.label, limits: { requestsPerSecond: k.rps } })),
        });
  const server = await startMockProvider({ provider });
  process.on('message', (message: ProviderRequest) => {
    if (message.type === 'totals') {
      reply({
        type: 'totals',
        totals: provider.totals,
        capacities: message.durationsMs.map((ms) => provider.capacity(ms)),
        banked: provider.banked(),
      });
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
