import { budgetLevels } from '../limits/budget.js';
import { concurrencyCap, stateReason } from '../machines/key.machine.js';
import type { KeyEntry } from './key-index.js';
import type { KeySnapshot } from './strategies/types.js';

/** The public, secret-free picture of a key from the pool's cached view, its budget levels at `now` (epoch ms). */
export function toKeySnapshot(entry: KeyEntry, now: number): KeySnapshot {
  const c = entry.context;
  const limits = c.settings.budget;
  const health = c.health;
  return {
    keyId: entry.keyId,
    label: c.settings.label,
    mask: c.settings.mask,
    order: c.order,
    state: entry.state,
    reason: stateReason(c, entry.state),
    probe: entry.probe,
    inFlight: entry.inFlight,
    maxConcurrent: concurrencyCap(c) ?? Number.POSITIVE_INFINITY,
    weight: c.settings.weight,
    successes: c.counts.successes,
    failures: c.counts.failures,
    rateLimits: c.counts.rateLimits,
    consecutiveFailures: health.consecutiveFailures,
    latencyEwma: c.latencyEwma,
    cooldownUntil: health.cooldownUntil,
    recoveryAt: health.recoveryAt,
    lastUsedAt: c.lastUsedAt,
    lastPenaltyAt: health.lastPenaltyAt,
    budget: limits && c.budget ? budgetLevels(limits, c.budget, now) : null,
  };
}
