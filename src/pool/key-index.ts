import type { ActorRefFrom, Subscription } from 'xstate';
import { cappedLeases, type KeyMachine } from '../machines/key.machine.js';
import type { KeyContext, KeyStateName } from '../machines/key.types.js';

export type KeyRef = ActorRefFrom<KeyMachine>;
type KeySnapshotOf = ReturnType<KeyRef['getSnapshot']>;

/** Half-open sub-states of `exhausted`; the rest are top-level. */
export type KeySubState = 'failing' | 'probeReady' | 'probing' | 'dead' | null;

/**
 * The pool's cached view of one key actor, kept current by a subscription to the actor's snapshots.
 * `pending` holds grants decided by the pool whose `lease.grant` the key has not processed yet
 * (grants are delivered after the pool's own step), so that several grants in one step never
 * overfill a key.
 */
export class KeyEntry {
  context: KeyContext;
  state: KeyStateName = 'available';
  sub: KeySubState = null;
  pending: number[] = [];
  /** In-flight leases including grants not yet delivered (kept as a field: heap comparisons read it). */
  inFlight = 0;
  /** Sequence of the most recent grant, delivered or not (0 = never leased). */
  lastSeq = 0;
  /** Position in the configured order. */
  readonly order: number;
  eligible = false;
  /** Position in the strategy's heap of eligible keys (least-busy), -1 when not in it. */
  heapPos = -1;
  eligiblePos = -1;
  subscription: Subscription | undefined;
  /** False for keys the strategy never leases (weight 0 under `weighted`): never eligible, never expected back. */
  readonly schedulable: boolean;

  constructor(
    readonly keyId: string,
    readonly childId: string,
    readonly ref: KeyRef,
    schedulable: boolean,
  ) {
    this.context = ref.getSnapshot().context;
    this.order = this.context.order;
    this.schedulable = schedulable;
  }

  /** The next lease on this key is the half-open probe. */
  get probe(): boolean {
    return this.sub === 'probeReady';
  }
}

/** Called after a key's cached view changed; `previous` is the view before. */
export type KeyChangeListener = (
  entry: KeyEntry,
  previous: { readonly state: KeyStateName; readonly sub: KeySubState; readonly context: KeyContext },
) => void;

function readState(snapshot: KeySnapshotOf): { state: KeyStateName; sub: KeySubState } {
  const value = snapshot.value;
  if (typeof value === 'string') {
    // `routing` is transient (never observed at rest); `drained` lasts until the pool stops the
    // actor, and is shown as the draining it ends.
    if (value === 'routing') return { state: 'available', sub: null };
    return { state: value === 'drained' ? 'draining' : value, sub: null };
  }
  return { state: 'exhausted', sub: value.exhausted };
}

/**
 * A strategy's own ordered view of the eligible keys (a heap, virtual times), kept current by the
 * index: told when a key becomes eligible, stops being eligible, or changes while eligible (a
 * grant, a settle).
 */
export interface EligibleTracker {
  add(entry: KeyEntry): void;
  delete(entry: KeyEntry): void;
  update(entry: KeyEntry): void;
}

/**
 * Derived index over the pool's key actors: which keys can take a lease now, unordered (O(1)
 * random pick) and in configured order (round robin); a strategy that needs another order (least
 * busy's heap, weighted's virtual times) keeps it in an {@link EligibleTracker}. It is a cache of
 * the actors' snapshots, not a second source of truth: every entry is refreshed from its actor's
 * snapshot whenever that changes.
 */
export class KeyIndex {
  readonly #entries = new Map<string, KeyEntry>();
  /** All keys in configured order. */
  readonly ring: KeyEntry[] = [];
  /** Eligible keys, unordered (swap-remove). */
  readonly eligible: KeyEntry[] = [];
  readonly #onChange: KeyChangeListener | undefined;
  readonly #schedulable: ((context: KeyContext) => boolean) | undefined;
  readonly #tracker: EligibleTracker | undefined;

  constructor(
    onChange?: KeyChangeListener,
    schedulable?: (context: KeyContext) => boolean,
    tracker?: EligibleTracker,
  ) {
    this.#onChange = onChange;
    this.#schedulable = schedulable;
    this.#tracker = tracker;
  }

  get size(): number {
    return this.#entries.size;
  }

  get(keyId: string): KeyEntry | undefined {
    return this.#entries.get(keyId);
  }

  values(): IterableIterator<KeyEntry> {
    return this.#entries.values();
  }

  /** Starts tracking a key actor (before or after it starts). */
  add(keyId: string, childId: string, ref: KeyRef): KeyEntry {
    const entry = new KeyEntry(keyId, childId, ref, this.#schedulable?.(ref.getSnapshot().context) ?? true);
    this.#entries.set(keyId, entry);
    let at = this.ring.length;
    while (at > 0 && (this.ring[at - 1] as KeyEntry).order > entry.order) at--;
    this.ring.splice(at, 0, entry);
    this.#apply(entry, ref.getSnapshot(), false);
    entry.subscription = ref.subscribe({
      next: (snapshot) => this.#apply(entry, snapshot, true),
      // The pool handles a crashed key through `xstate.error.actor.*`; nothing to do here.
      error: () => {},
    });
    return entry;
  }

  /** Stops tracking a key. */
  remove(keyId: string): KeyEntry | undefined {
    const entry = this.#entries.get(keyId);
    if (!entry) return undefined;
    entry.subscription?.unsubscribe();
    this.#setEligible(entry, false);
    this.#entries.delete(keyId);
    const at = this.ring.indexOf(entry);
    if (at >= 0) this.ring.splice(at, 1);
    return entry;
  }

  /** Re-reads a key's snapshot now (used when the pool acts on a key's event before observers ran). */
  refresh(entry: KeyEntry): void {
    this.#apply(entry, entry.ref.getSnapshot(), true);
  }

  /** Records a grant decided in the current pool step, before the key has processed it. */
  noteGrant(entry: KeyEntry, seq: number): void {
    entry.pending.push(seq);
    entry.inFlight++;
    entry.lastSeq = seq;
    this.#reindex(entry);
  }

  /** First eligible key after `order` in the ring, wrapping around. */
  nextInRing(afterOrder: number): KeyEntry | undefined {
    const ring = this.ring;
    const n = ring.length;
    if (n === 0 || this.eligible.length === 0) return undefined;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((ring[mid] as KeyEntry).order <= afterOrder) lo = mid + 1;
      else hi = mid;
    }
    for (let step = 0; step < n; step++) {
      const entry = ring[(lo + step) % n] as KeyEntry;
      if (entry.eligible) return entry;
    }
    return undefined;
  }

  #apply(entry: KeyEntry, snapshot: KeySnapshotOf, notify: boolean): void {
    const previous = { state: entry.state, sub: entry.sub, context: entry.context };
    const { state, sub } = readState(snapshot);
    const context = snapshot.context;
    // Grants reach the key in the order they were made: drop those it has booked.
    const pending = entry.pending;
    while (pending.length > 0 && (pending[0] as number) <= context.lastLeaseSeq) pending.shift();
    entry.inFlight = context.inFlight + pending.length;
    entry.lastSeq = pending.length > 0 ? (pending[pending.length - 1] as number) : context.lastLeaseSeq;
    entry.context = context;
    entry.state = state;
    entry.sub = sub;
    this.#reindex(entry);
    if (
      notify &&
      this.#onChange &&
      (previous.context !== context || previous.state !== state || previous.sub !== sub)
    ) {
      this.#onChange(entry, previous);
    }
  }

  #reindex(entry: KeyEntry): void {
    const { budget, allowance, settings } = entry.context;
    // A slow-start cap works like a concurrency cap; what answers said remains, or a pace, is
    // counted by the key itself.
    const counted = allowance !== null && (allowance.remaining >= 0 || allowance.gapMs > 0);
    const eligible =
      entry.schedulable &&
      // A budgeted key, or one with a counted allowance, takes one grant per pool step: the key
      // itself decides whether the grant used it up, and the pool must not hand out a second first.
      ((budget === null && !counted) || entry.pending.length === 0) &&
      ((entry.state === 'available' &&
        (settings.maxConcurrent === null || entry.inFlight < settings.maxConcurrent) &&
        (allowance === null ||
          allowance.slowCap === 0 ||
          cappedLeases(allowance, entry.inFlight, entry.lastSeq) < allowance.slowCap)) ||
        (entry.sub === 'probeReady' && entry.pending.length === 0));
    if (eligible !== entry.eligible) this.#setEligible(entry, eligible);
    else if (eligible) this.#tracker?.update(entry);
  }

  #setEligible(entry: KeyEntry, eligible: boolean): void {
    if (eligible === entry.eligible) return;
    entry.eligible = eligible;
    if (eligible) {
      entry.eligiblePos = this.eligible.length;
      this.eligible.push(entry);
      this.#tracker?.add(entry);
      return;
    }
    const last = this.eligible.pop() as KeyEntry;
    if (last !== entry) {
      this.eligible[entry.eligiblePos] = last;
      last.eligiblePos = entry.eligiblePos;
    }
    entry.eligiblePos = -1;
    this.#tracker?.delete(entry);
  }
}
