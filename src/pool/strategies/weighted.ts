import { type HeapSlot, IndexedHeap } from '../../indexed-heap.js';
import type { KeyEntry } from '../key-index.js';
import type { Strategy } from './strategy.js';

/** A key's place in the weighted schedule, in virtual time (one unit = one lease per unit of weight). */
interface Turn extends HeapSlot {
  readonly entry: KeyEntry;
  /** The key's weight when it became eligible (what it added to the eligible total). */
  weight: number;
  /** When this key's next turn begins; it may be chosen once virtual time reaches it. */
  start: number;
  /** When that turn ends: `start + 1 / weight`. Among keys whose turn has begun, the earliest end goes first. */
  finish: number;
  /** In the `due` heap (turn begun) rather than the `upcoming` one. */
  due: boolean;
}

const earlierFinish = (a: Turn, b: Turn): boolean =>
  a.finish < b.finish || (a.finish === b.finish && a.entry.order < b.entry.order);
const earlierStart = (a: Turn, b: Turn): boolean =>
  a.start < b.start || (a.start === b.start && a.entry.order < b.entry.order);

/**
 * Smooth weighted round robin by virtual time (earliest eligible virtual deadline first, as in
 * WF²Q and Linux's EEVDF): each key's turns are `1 / weight` apart in virtual time, which advances
 * by `1 / (total weight of the eligible keys)` per lease; among the keys whose turn has begun, the
 * one whose turn ends first is chosen. Proportions are exact and deterministic, heavy keys are
 * spread out (weights 5 : 1 : 1 give a b a a c a a), and a key that was unavailable rejoins at the
 * current virtual time instead of catching up in a burst. Weight 0 drains a key. O(log N) per
 * change of a key's eligibility, and per choice amortized: a begun turn moves to the `due` heap
 * only when it might go first, so no choice pays for all N turns beginning at once.
 */
export const weighted: Strategy = {
  name: 'weighted',
  total: true,
  schedulable: (context) => context.settings.weight > 0,
  create() {
    // Weak: a removed key's turn goes with its entry.
    const turns = new WeakMap<KeyEntry, Turn>();
    const due = new IndexedHeap<Turn>(earlierFinish);
    const upcoming = new IndexedHeap<Turn>(earlierStart);
    let now = 0;
    let eligibleWeight = 0;
    // No key weighs more: a turn beginning at `start` ends no earlier than `start + 1 / maxWeight`.
    let maxWeight = 0;

    const place = (turn: Turn): void => {
      turn.due = turn.start <= now;
      (turn.due ? due : upcoming).add(turn);
    };
    /**
     * Whether `best` (first among the due turns) goes before every upcoming turn that has begun by
     * now, `next` being the first of them by start. Each of those ends at `start + 1 / weight` ≥
     * `next.start + 1 / maxWeight`, and one that ends exactly there began with `next` and comes
     * after it in order — so that bound decides without looking at them. (In doubles a later start
     * can round to the same end; such an end is a tie, and either key is a right choice.)
     */
    const beatsUpcoming = (best: Turn, next: Turn): boolean => {
      const earliestFinish = next.start + 1 / maxWeight;
      return (
        best.finish < earliestFinish ||
        (best.finish === earliestFinish && best.entry.order < next.entry.order)
      );
    };
    /**
     * Moves begun turns into `due` until its first provably goes first: one or two per choice in
     * steady state. (Moving every begun turn at once gave equal weights a burst: all N turns begin
     * at the same virtual instant, so every N-th choice moved N turns — 0.4 ms at 1 000 keys.)
     */
    const promote = (): void => {
      for (let next = upcoming.peek(); next && next.start <= now; next = upcoming.peek()) {
        const best = due.peek();
        if (best && beatsUpcoming(best, next)) return;
        upcoming.delete(next);
        next.due = true;
        due.add(next);
      }
    };

    return {
      tracker: {
        add(entry) {
          const weight = entry.context.settings.weight;
          let turn = turns.get(entry);
          if (!turn) {
            turn = { entry, weight, heapPos: -1, start: now, finish: 0, due: false };
            turns.set(entry, turn);
          }
          turn.weight = weight;
          if (weight > maxWeight) maxWeight = weight;
          // A key back from a rest takes its turn from now on: missed turns are not owed.
          turn.start = Math.max(turn.start, now);
          turn.finish = turn.start + 1 / weight;
          eligibleWeight += weight;
          place(turn);
        },
        delete(entry) {
          const turn = turns.get(entry);
          if (!turn || turn.heapPos < 0) return;
          (turn.due ? due : upcoming).delete(turn);
          eligibleWeight -= turn.weight;
        },
        // The order depends on turns only, not on leases in flight.
        update() {},
      },
      select() {
        promote();
        if (due.size === 0) {
          // Every eligible key's turn lies ahead: skip virtual time to the first of them.
          const next = upcoming.peek();
          if (!next) return undefined;
          now = next.start;
          promote();
        }
        const turn = due.peek() as Turn;
        due.delete(turn);
        turn.start = turn.finish;
        turn.finish = turn.start + 1 / turn.weight;
        if (eligibleWeight > 0) now += 1 / eligibleWeight;
        place(turn);
        return turn.entry;
      },
    };
  },
};
