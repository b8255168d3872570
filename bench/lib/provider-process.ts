/**
 * B5's mock provider in a process of its own, as a real provider is another machine: its clock, its
 * event loop and its CPU time are not the client's. In one process the server's half of every call
 * (accepting the connection, parsing the request, counting the call against the key's window) waits
 * behind the client's work — 100 workers, the SDK, the pool — so the instant at which the provider
 * counts a call drifts with the client's load, a coupling no real provider has (`bench/README.md`, B5).
 *
 * The parent forks this file with `--import tsx` and an IPC channel, sends one {@link ProviderSetup},
 * and gets `{ type: 'listening', url, warmUpUrl, windows }` back; `{ type: 'totals' }` is answered
 * with the provider's counters, capacities and banked requests; `{ type: 'close' }` closes the
 * servers and ends the process.
 *
 * `warmUpUrl` serves a twin of the provider (the same setup, its own limits and counters), on which
 * the parent warms both processes before it measures (see `b5-http.ts`): the provider a client
 * meets in service is warm, and a fresh process's first calls are not.
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

/**
 * Where a fixed-window provider's windows start: at `origin` (epoch ms on the shared wall scale of
 * `systemClock`) and every `windowMs` after it.
 */
export interface ProviderWindows {
  readonly origin: number;
  readonly windowMs: number;
}

/** Messages to the parent. */
export type ProviderReply =
  | {
      readonly type: 'listening';
      /** The measured provider. */
      readonly url: string;
      /** Its twin, for warming up; no call to it counts against the measured provider. */
      readonly warmUpUrl: string;
      /** The measured provider's fixed windows; `null` when its windows slide (or it is a bucket). */
      readonly windows: ProviderWindows | null;
    }
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
  const origin = systemClock.now();
  const build = () =>
    setup.type === 'family'
      ? familyProvider(setup.member, { clock: systemClock, origin })
      : new SimulatedProvider({
          clock: systemClock,
          hints: setup.hints,
          successHeaders: setup.successHeaders,
          latency: fixedLatency(setup.latencyMs),
          keys: setup.keys.map((k) => ({ key: k.key, label: k.label, limits: { requestsPerSecond: k.rps } })),
        });
  const provider = build();
  const server = await startMockProvider({ provider });
  const warmUp = await startMockProvider({ provider: build() });
  process.on('message', (message: ProviderRequest) => {
    if (message.type === 'totals') {
      reply({
        type: 'totals',
        totals: provider.totals,
        capacities: message.durationsMs.map((ms) => provider.capacity(ms)),
        banked: provider.banked(),
      });
    } else {
      void Promise.allSettled([server.close(), warmUp.close()]).finally(() => {
        reply({ type: 'closed' });
        process.disconnect();
      });
    }
  });
  const windows =
    setup.type === 'family' && setup.member.shape === 'fixed-window'
      ? { origin, windowMs: setup.member.windowMs }
      : null;
  reply({ type: 'listening', url: server.url, warmUpUrl: warmUp.url, windows });
}

if (process.send !== undefined) {
  process.once('message', (message: ProviderSetup) => {
    serve(message).catch((error: unknown) => {
      process.stderr.write(`mock provider process: ${String(error)}\n`);
      process.exit(1);
    });
  });
}
