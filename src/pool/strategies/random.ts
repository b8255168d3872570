/**
 * One step of mulberry32 as a pure function of its 32-bit state, so that a random source can be
 * kept as a plain number (the simulator's) and replay exactly from a seed.
 */
export function nextRandom(state: number): { readonly value: number; readonly state: number } {
  const next = (state + 0x6d2b79f5) | 0;
  let t = next;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return { value: ((t ^ (t >>> 14)) >>> 0) / 4294967296, state: next };
}

/** A stateful generator over {@link nextRandom}, for places whose randomness need not be persisted. */
export function seededRandom(seed: number): () => number {
  let state = seed | 0;
  return () => {
    const step = nextRandom(state);
    state = step.state;
    return step.value;
  };
}
