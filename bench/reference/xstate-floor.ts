import { type ActorRefFrom, assign, createActor, setup } from 'xstate';

/**
 * The floor of B1 under KeyMesh's design, measured beside it: what XState v5 alone costs for one
 * acquire/release pair when every key is an actor and a pool actor decides every grant. Three
 * actor steps per pair — the pool picks a key, the key books the grant, the key books the settle —
 * a four-field key context, a round-robin cursor for the pick, and nothing else: no health, no
 * index of eligible keys, no waiters, no events, no persistence. It is not a usable pool; it shows
 * how fast any pool built to the design can go on the machine the benchmark runs on.
 */
const floorKey = setup({
  types: {
    context: {} as { readonly keyId: string; inFlight: number; successes: number; lastSeq: number },
    events: {} as { type: 'grant'; seq: number } | { type: 'release' },
    input: {} as { keyId: string },
  },
}).createMachine({
  context: ({ input }) => ({ keyId: input.keyId, inFlight: 0, successes: 0, lastSeq: 0 }),
  initial: 'available',
  states: {
    available: {
      on: {
        grant: {
          actions: assign(({ context, event }) => ({ inFlight: context.inFlight + 1, lastSeq: event.seq })),
        },
        release: {
          actions: assign(({ context }) => ({
            inFlight: context.inFlight - 1,
            successes: context.successes + 1,
          })),
        },
      },
    },
  },
});

type FloorKeyRef = ActorRefFrom<typeof floorKey>;

/** One grant of {@link XStateFloorPool}: release sends the settle to the key actor. */
export class FloorLease {
  readonly #key: FloorKeyRef;

  constructor(key: FloorKeyRef) {
    this.#key = key;
  }

  release(_options?: { readonly latencyMs?: number }): void {
    this.#key.send({ type: 'release' });
  }
}

function createFloorPoolMachine(keys: readonly string[]) {
  const refs: FloorKeyRef[] = [];
  let cursor = 0;
  let seq = 0;
  return setup({
    types: {
      events: {} as { type: 'acquire'; resolve: (lease: FloorLease) => void },
    },
    actors: { key: floorKey },
    guards: { hasKey: () => refs.length > 0 },
    actions: {
      // The same shape as KeyMesh's hot path: one guarded plain action tells the caller, then the key.
      grant: ({ event }) => {
        const ref = refs[cursor] as FloorKeyRef;
        cursor = (cursor + 1) % refs.length;
        event.resolve(new FloorLease(ref));
        ref.send({ type: 'grant', seq: ++seq });
      },
    },
  }).createMachine({
    context: ({ spawn }) => {
      keys.forEach((keyId, i) => {
        refs.push(spawn('key', { id: String(i), input: { keyId } }));
      });
      return {};
    },
    initial: 'running',
    states: { running: { on: { acquire: { guard: 'hasKey', actions: 'grant' } } } },
  });
}

/** The design's floor as a pool with a promise-based `acquire()`; see the module comment. */
export class XStateFloorPool {
  readonly #pool;

  constructor(keys: readonly string[]) {
    if (keys.length === 0) throw new RangeError('XStateFloorPool: at least one key');
    this.#pool = createActor(createFloorPoolMachine(keys)).start();
  }

  acquire(): Promise<FloorLease> {
    return new Promise((resolve) => {
      this.#pool.send({ type: 'acquire', resolve });
    });
  }

  close(): void {
    this.#pool.stop();
  }
}
