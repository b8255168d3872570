import { describe, expect, it } from 'vitest';
import { type KeyPool, memoryStorage, NoAvailableKeyError } from '../../src/index.js';
import { SimulatedProvider, type VirtualClock } from '../../src/sim/index.js';
import { createTestPool, fakeKeys, flushMicrotasks, pools, track } from '../helpers.js';

const make = pools();

/** A success's answer, at once: nothing remains, the next slot frees in `resetMs`. */
function spentAnswer(resetMs: number) {
  return {
    headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': `${resetMs}ms` },
    latencyMs: 0,
  };
}

describe('learning from successful responses', () => {
  it('rests a key whose success says no requests remain until the stated reset, before any 429', async () => {
    const { pool, clock } = await make(1);
    const lease = await pool.acquire();
    const state = lease.release({
      headers: new Headers({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1.5s' }),
    });
    expect(state).toBe('cooling');
    // The stated reset, and a hundredth of the window more: calls do not all reach the provider equally fast.
    expect(pool.snapshot().keys[0]).toMatchObject({ reason: 'quota', cooldownUntil: clock.now() + 1_515 });
    clock.advance(1_515);
    expect(pool.snapshot().keys[0]?.state).toBe('available');
  });

  it('reads Anthropic-style token headers too', async () => {
    const { pool, clock } = await make(1);
    const reset = new Date(clock.now() + 20_000).toISOString();
    (await pool.acquire()).release({
      headers: { 'anthropic-ratelimit-tokens-remaining': '0', 'anthropic-ratelimit-tokens-reset': reset },
    });
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: clock.now() + 20_000 });
  });

  it('ignores a zero remaining count without a reset (Azure sends those)', async () => {
    const { pool } = await make(1);
    const state = (await pool.acquire()).release({ headers: { 'x-ratelimit-remaining-requests': '0' } });
    expect(state).toBe('available');
  });

  it('grants no more than the remaining requests a success reported; after the reset one call, whose answer says more', async () => {
    const { pool, clock } = await make(1);
    (await pool.acquire()).release({
      headers: { 'x-ratelimit-remaining-requests': '2', 'x-ratelimit-reset-requests': '1s' },
    });
    const first = pool.tryAcquire();
    const second = pool.tryAcquire();
    expect(first && second).toBeTruthy();
    expect(pool.tryAcquire()).toBeUndefined();
    // The stated reset, and a hundredth of it more: calls do not all reach the provider equally fast.
    expect(pool.snapshot().keys[0]).toMatchObject({
      state: 'cooling',
      reason: 'quota',
      cooldownUntil: clock.now() + 1_010,
    });
    clock.advance(1_010);
    // The reset is when *a* slot may free, not a whole window: one call goes out…
    const probe = pool.tryAcquire();
    expect(probe).toBeDefined();
    expect(pool.tryAcquire()).toBeUndefined();
    // …and its answer says how many more.
    probe?.release({
      headers: { 'x-ratelimit-remaining-requests': '3', 'x-ratelimit-reset-requests': '1s' },
    });
    expect([pool.tryAcquire(), pool.tryAcquire(), pool.tryAcquire()].every(Boolean)).toBe(true);
    expect(pool.tryAcquire()).toBeUndefined();
  });

  it('keeps sending one call per stated reset while the answers come back slower than slots free', async () => {
    const { pool, clock } = await make(1);
    const spent = { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '100ms' };
    (await pool.acquire()).release({ headers: spent, latencyMs: 0 });
    expect(pool.tryAcquire()).toBeUndefined();
    // The reset (and a hundredth more, at least 1 ms) passes: one call goes out…
    clock.advance(101);
    const first = pool.tryAcquire();
    expect(first).toBeDefined();
    expect(pool.tryAcquire()).toBeUndefined();
    // …and, its answer still out, the key takes it as having left it where the last answer did:
    // nothing remains for the reset that answer stated, then one more call.
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: clock.now() + 101 });
    clock.advance(101);
    const second = pool.tryAcquire();
    expect(second).toBeDefined();
    expect(pool.tryAcquire()).toBeUndefined();
    // The answer to the newest call says the next slot frees sooner than assumed: it wins.
    clock.advance(20);
    second?.release({
      headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '30ms' },
      latencyMs: 20,
    });
    const key = pool.snapshot().keys[0];
    expect(key?.state).toBe('cooling');
    expect(key?.cooldownUntil).toBeGreaterThanOrEqual(clock.now() + 10);
    expect(key?.cooldownUntil).toBeLessThan(clock.now() + 81);
    first?.release({ latencyMs: 141 });
  });

  it('keeps the spacing of slots its answers showed, when later calls come late and their resets understate it', async () => {
    const { pool, clock } = await make(1);
    // A token bucket refilling one request every 100 ms: the first calls came 70 ms late to their
    // tokens, so their answers say the next one arrives in 30 ms.
    (await pool.acquire()).release(spentAnswer(30));
    clock.advance(31);
    pool.tryAcquire()?.release(spentAnswer(30));
    clock.advance(31);
    // The call past that reset took the token that arrived 1 ms before: the next arrives 99 ms
    // later. The two slots lie 100 ms apart, though the key sent the calls 31 ms apart.
    pool.tryAcquire()?.release(spentAnswer(99));
    // The calls after it each come 50 ms late to their token: their answers say 50 ms remain.
    for (let call = 0; call < 3; call++) {
      clock.advance((pool.snapshot().keys[0]?.cooldownUntil ?? 0) - clock.now());
      pool.tryAcquire()?.release(spentAnswer(50));
    }
    clock.advance((pool.snapshot().keys[0]?.cooldownUntil ?? 0) - clock.now());
    expect(pool.tryAcquire()).toBeDefined();
    // Its answer still out, the next slot is taken to free one measured spacing (and a hundredth)
    // later, not a reset that fades with every late answer (100 ms would have faded to 73 ms).
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: clock.now() + 101 });
  });

  it('keeps the rest it assumed after a call past a reset while only older calls answer', async () => {
    const { pool, clock } = await make(1);
    (await pool.acquire()).release(spentAnswer(100));
    clock.advance(101);
    const first = pool.tryAcquire();
    clock.advance(101);
    const second = pool.tryAcquire();
    expect(second).toBeDefined();
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: clock.now() + 101 });
    // The first answers: nothing remained, the next slot 10 ms on — the slot the second call took.
    // It says nothing of when the slot after that frees: the assumed rest stands…
    first?.release(spentAnswer(10));
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: clock.now() + 101 });
    // …until the second call's own answer says its next slot frees sooner.
    clock.advance(40);
    second?.release(spentAnswer(30));
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: clock.now() + 31 });
  });

  it('ends the rest it assumed when the newest answer shows the calls after it fit in what remained', async () => {
    const { pool, clock } = await make(1);
    const told = (remaining: number, resetMs: number) => ({
      headers: {
        'x-ratelimit-remaining-requests': String(remaining),
        'x-ratelimit-reset-requests': `${resetMs}ms`,
      },
      latencyMs: 0,
    });
    // A long reset once: a call past a reset is then taken to leave the key spent for as long.
    (await pool.acquire()).release(spentAnswer(10_000));
    clock.advance(10_100);
    pool.tryAcquire()?.release(told(2, 60));
    clock.advance(61);
    const first = pool.tryAcquire();
    const second = pool.tryAcquire();
    expect(first && second).toBeTruthy();
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: clock.now() + 10_100 });
    // The second call answers: one remained after it, which the first (granted with it) may have
    // taken. Nothing took the slot its reset frees: the key rests until then, not 10 s.
    second?.release(told(1, 378));
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: clock.now() + 382 });
    first?.release(told(1, 378));
  });

  it('assumes the stated reset after such a call, without the slack a slow answer adds to when it was counted', async () => {
    const { pool, clock } = await make(1);
    (await pool.acquire()).release({ latencyMs: 300 });
    const slow = pool.tryAcquire();
    clock.advance(300);
    slow?.release({
      headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1s' },
      latencyMs: 300,
    });
    clock.advance((pool.snapshot().keys[0]?.cooldownUntil ?? 0) - clock.now());
    expect(pool.tryAcquire()).toBeDefined();
    // The call goes out now: only its transit is uncertain (a hundredth of the reset), not the
    // 300 ms answer's (a tenth of it).
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: clock.now() + 1_010 });
  });

  it('counts against an answer only the leases the provider had not counted: those granted after it', async () => {
    const { pool, clock } = await make(1);
    const told = (remaining: number) => ({
      'x-ratelimit-remaining-requests': String(remaining),
      'x-ratelimit-reset-requests': '1s',
    });
    (await pool.acquire()).release({ headers: told(5) });
    const earlier = pool.tryAcquire();
    clock.advance(10);
    const later = pool.tryAcquire();
    // The later call answers first: the earlier one, still out, was counted before it.
    later?.release({ headers: told(1) });
    expect(pool.tryAcquire()).toBeDefined();
    expect(pool.tryAcquire()).toBeUndefined();
    // An answer older than the one the key heard last is stale: it reopens nothing.
    earlier?.release({ headers: told(4) });
    expect(pool.tryAcquire()).toBeUndefined();
  });

  it('trusts its own count of a batch granted at once when an answer from the batch cannot place its call', async () => {
    const { pool } = await make(1);
    const told = (remaining: number) => ({
      'x-ratelimit-remaining-requests': String(remaining),
      'x-ratelimit-reset-requests': '60s',
    });
    (await pool.acquire()).release({ headers: told(10) });
    const batch = [1, 2, 3, 4, 5].map(() => pool.tryAcquire());
    // The provider counted the last call granted last of the five: 5 remain. Granted at the same instant, the
    // other four may have been counted before it or after; the key's own count (10 less the five)
    // says they were, and the answer does not say less.
    batch[4]?.release({ headers: told(5) });
    expect([1, 2, 3, 4, 5].map(() => pool.tryAcquire()).every(Boolean)).toBe(true);
    expect(pool.tryAcquire()).toBeUndefined();
  });

  it("reads a new key's first resets from its first answer: cold calls reach the provider late", async () => {
    const { pool, clock, keys } = await make(1);
    const provider = new SimulatedProvider({
      clock,
      successHeaders: true,
      keys: [{ key: keys[0] as string, limits: { requestsPerSecond: 10 } }],
    });
    // A new client's first window: its calls wait 80 ms for connections before the provider counts
    // them, and answer 50 ms later; the headers say how many remain and when a slot frees.
    const first = Array.from({ length: 10 }, () => pool.tryAcquire());
    clock.advance(80);
    const answers = first.map((lease) => provider.call(lease?.key ?? ''));
    clock.advance(50);
    for (const [i, lease] of first.entries()) lease?.release({ headers: answers[i]?.headers });
    const openAt = pool.snapshot().keys[0]?.cooldownUntil ?? 0;
    clock.advance(Math.max(0, openAt - clock.now()));
    // The next call travels the usual 5 ms: it may not reach the provider before a slot has freed.
    const next = pool.tryAcquire();
    expect(next).toBeDefined();
    clock.advance(5);
    expect(provider.call(next?.key ?? '').status).toBe(200);
  });

  describe('a reset that replenishes the limit fully', () => {
    const left = (remaining: number) => ({
      'x-ratelimit-remaining-requests': String(remaining),
      'x-ratelimit-reset-requests': '1s',
    });
    /** Lets the key's rest end and takes every lease it grants then, at once. */
    const atReset = (pool: KeyPool, clock: { now(): number; advance(ms: number): void }) => {
      clock.advance(Math.max(0, (pool.snapshot().keys[0]?.cooldownUntil ?? 0) - clock.now()));
      const leases = [];
      for (let lease = pool.tryAcquire(); lease; lease = pool.tryAcquire()) leases.push(lease);
      return leases;
    };
    /**
     * One window of a limit of 5 whose reset frees it fully: what goes out at the reset, then — the
     * first answer saying 4 more remain — the rest of the window, the last answer saying none remain.
     */
    const window = (pool: KeyPool, clock: { now(): number; advance(ms: number): void }) => {
      const sent = atReset(pool, clock);
      sent[0]?.release({ headers: left(5 - sent.length) });
      const more = [];
      for (let lease = pool.tryAcquire(); lease; lease = pool.tryAcquire()) more.push(lease);
      for (const lease of [...sent.slice(1), ...more]) lease.release({ headers: left(0) });
      return sent.length + more.length === 5 ? sent.length : -1;
    };

    /** A key that has learned its resets free the whole limit (5): three windows past a spent answer. */
    const fullyReplenished = async () => {
      const { pool, clock } = await make(1);
      (await pool.acquire()).release({ headers: left(0) });
      for (let i = 0; i < 3; i++) window(pool, clock);
      return { pool, clock };
    };

    it('takes the whole limit at once at a reset that twice showed it all free; once can be chance', async () => {
      const { pool, clock } = await make(1);
      (await pool.acquire()).release({ headers: left(0) });
      // The first reset shows the whole limit free to the one call sent at it: calls that all came
      // at once leave at once, whatever the reset means, so it still sends one call at the next…
      expect(window(pool, clock)).toBe(1);
      expect(window(pool, clock)).toBe(1);
      // …which shows it again: the reset means "fully replenished"; the key no longer waits for an
      // answer to use the window.
      expect(window(pool, clock)).toBe(5);
      expect(window(pool, clock)).toBe(5);
    });

    it('counts its own calls within the longest reset stated before a reset as still taken there', async () => {
      const { pool, clock } = await fullyReplenished();
      // Four calls at the reset, one more halfway through the window; the answer to the late one
      // (the newest) says the window ends in 510 ms.
      clock.advance(Math.max(0, (pool.snapshot().keys[0]?.cooldownUntil ?? 0) - clock.now()));
      const early = [pool.tryAcquire(), pool.tryAcquire(), pool.tryAcquire(), pool.tryAcquire()];
      clock.advance(500);
      const late = pool.tryAcquire();
      expect(late).toBeDefined();
      expect(pool.tryAcquire()).toBeUndefined();
      late?.release({
        headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '510ms' },
      });
      for (const lease of early) lease?.release({ headers: left(1) });
      // At that end, the late call's slot is still taken (on a sliding window it is): four go out.
      expect(atReset(pool, clock)).toHaveLength(4);
    });

    it('keeps the reset it waits for when an answer to a call sent with others says a slot freed earlier', async () => {
      const { pool, clock } = await fullyReplenished();
      // The whole limit goes out at the reset; three answers come back half a second after their calls…
      const batch = atReset(pool, clock);
      expect(batch).toHaveLength(5);
      for (const lease of batch.slice(0, 3)) lease.release({ headers: left(0), latencyMs: 500 });
      // …and a fourth later still, saying a slot was to free at once, counted from its call: that
      // moment has passed, but it says nothing of the fifth call, sent with it and still out.
      clock.advance(500);
      batch[3]?.release({
        headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '0s' },
        latencyMs: 500,
      });
      // The key still waits for the reset it assumed after the batch, and takes the whole limit there.
      expect(pool.tryAcquire()).toBeUndefined();
      expect(atReset(pool, clock)).toHaveLength(5);
      batch[4]?.release({ latencyMs: 1_010 });
    });

    it('goes back to one call per reset after a 429, until resets show the whole limit free again', async () => {
      const { pool, clock } = await fullyReplenished();
      const group = atReset(pool, clock);
      expect(group).toHaveLength(5);
      for (const lease of group.slice(1)) lease.release({ headers: left(0) });
      group[0]?.rateLimited({ retryAfterMs: 1_000 });
      expect(window(pool, clock)).toBe(1);
      expect(window(pool, clock)).toBe(1);
      expect(window(pool, clock)).toBe(5);
    });
  });

  it('takes the headers of the seed-style string API too', async () => {
    const { pool, clock, keys } = await make(1);
    await pool.acquire();
    pool.markRateLimited(keys[0] as string, { headers: { 'retry-after': '3' } });
    expect(pool.snapshot().keys[0]?.cooldownUntil).toBe(clock.now() + 3_000);
  });

  it('takes the wait of a 429 from its headers', async () => {
    const { pool, clock } = await make(1);
    (await pool.acquire()).rateLimited({ headers: { 'retry-after-ms': '2500' } });
    expect(pool.snapshot().keys[0]?.cooldownUntil).toBe(clock.now() + 2_500);
  });
});

/** A new key gets three calls through, and the fourth is refused without a hint. */
/** Four leases at once; the first three get through at once, the fourth (returned) is still out. */
function fourthAfterThreeThrough(pool: Pick<KeyPool, 'tryAcquire'>): ReturnType<KeyPool['tryAcquire']> {
  const [a, b, c, d] = [pool.tryAcquire(), pool.tryAcquire(), pool.tryAcquire(), pool.tryAcquire()];
  a?.release();
  b?.release();
  c?.release();
  return d;
}

/**
 * Three calls through, the fourth refused 800 ms after the first went out, with no hint. The key
 * rests an eighth of that (100 ms), then its one probe gets through: a slot had freed 900 ms after
 * the episode began, so the key paces its calls 300 ms apart.
 */
function learnUnhintedPace(pool: Pick<KeyPool, 'tryAcquire'>, clock: VirtualClock): void {
  const d = fourthAfterThreeThrough(pool);
  clock.advance(800);
  d?.rateLimited();
  clock.advance(100);
  pool.tryAcquire()?.release();
}

/** Ms until the only key's rest ends (0 or less: it is not resting). */
function restLeft(pool: Pick<KeyPool, 'snapshot'>, clock: VirtualClock): number {
  return (pool.snapshot().keys[0]?.cooldownUntil ?? 0) - clock.now();
}

/** Moves the clock to the end of the only key's rest. */
function waitOut(pool: Pick<KeyPool, 'snapshot'>, clock: VirtualClock): void {
  clock.advance(Math.max(0, restLeft(pool, clock)));
}

/** Waits out the rest, sends a call that gets through, and says how long the key rests after it. */
function gapAfterNextCall(pool: Pick<KeyPool, 'tryAcquire' | 'snapshot'>, clock: VirtualClock): number {
  waitOut(pool, clock);
  pool.tryAcquire()?.release();
  return restLeft(pool, clock);
}

/** The 300 ms pace of `learnUnhintedPace`, then a call at that pace refused without a hint. */
function refusedAtUnhintedPace(pool: Pick<KeyPool, 'tryAcquire' | 'snapshot'>, clock: VirtualClock): void {
  learnUnhintedPace(pool, clock);
  waitOut(pool, clock);
  pool.tryAcquire()?.rateLimited();
}

describe('learning a pace from 429s', () => {
  it('spaces its grants at the pace a 429 showed, instead of bursting after the rest', async () => {
    const { pool, clock } = await make(1);
    const d = fourthAfterThreeThrough(pool);
    // Three got through since the key began; a slot frees a second after it began: a third of a
    // second apart, whatever shape the provider's window has.
    d?.rateLimited({ retryAfterMs: 1_000 });
    clock.advance(1_000);
    expect(pool.tryAcquire()).toBeDefined();
    expect(pool.tryAcquire()).toBeUndefined();
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', reason: 'paced' });
    clock.advance(333);
    expect(pool.tryAcquire()).toBeUndefined();
    clock.advance(1);
    expect(pool.tryAcquire()).toBeDefined();
  });

  it('learns the pace from a 429 whose wait is already over, and widens it on the next', async () => {
    const { pool, clock } = await make(1);
    const [a, b, c] = [pool.tryAcquire(), pool.tryAcquire(), pool.tryAcquire()];
    a?.release();
    b?.release();
    clock.advance(40);
    // A token bucket says the next token is 10 ms away; the answer took 40: no rest, but a pace.
    c?.rateLimited({ retryAfterMs: 10 });
    expect(pool.tryAcquire()).toBeDefined();
    expect(pool.tryAcquire()).toBeUndefined();
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', reason: 'paced' });
    const gap = (pool.snapshot().keys[0]?.cooldownUntil ?? 0) - clock.now();
    expect(gap).toBeGreaterThan(0);
    clock.advance(gap);
    // A call at that pace is refused too: the gap grows by a quarter.
    const paced = pool.tryAcquire();
    paced?.rateLimited({ retryAfterMs: 0 });
    const wider = (pool.snapshot().keys[0]?.cooldownUntil ?? 0) - clock.now();
    expect(wider).toBeCloseTo(gap * 1.25, 0);
  });

  it('takes the unhinted 429s of calls sent at its pace, together, as one rate limit: the rest does not escalate', async () => {
    const { pool, clock } = await make(1);
    learnUnhintedPace(pool, clock);
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', reason: 'paced' });
    clock.advance(300);
    const first = pool.tryAcquire();
    clock.advance(300);
    const second = pool.tryAcquire();
    expect(first && second).toBeTruthy();
    // Both are refused, without a hint: one rate limit, one rest — the second does not double it.
    first?.rateLimited();
    const rest = pool.snapshot().keys[0];
    expect(rest?.reason).toBe('rate-limited');
    second?.rateLimited();
    expect(pool.snapshot().keys[0]?.cooldownUntil).toBe(rest?.cooldownUntil);
  });

  it('sends one call at a time again, widening with each success, when a 429 came before any success could teach a pace', async () => {
    const { pool, clock } = await make(1);
    const burst = [pool.tryAcquire(), pool.tryAcquire(), pool.tryAcquire()];
    for (const lease of burst) lease?.rateLimited();
    clock.advance(1_000);
    const first = pool.tryAcquire();
    expect(first).toBeDefined();
    expect(pool.tryAcquire()).toBeUndefined();
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'busy', reason: 'slow-start', maxConcurrent: 1 });
    first?.release();
    expect([pool.tryAcquire(), pool.tryAcquire()].every(Boolean)).toBe(true);
    expect(pool.tryAcquire()).toBeUndefined();
  });

  it('learns an unhinted pace from when a call sent after the 429 first gets through, probing one call at a time', async () => {
    const { pool, clock } = await make(1);
    const d = fourthAfterThreeThrough(pool);
    clock.advance(800);
    d?.rateLimited();
    // The window is longer than the episode so far, or the 429 would not have come: the key rests an
    // eighth of the 800 ms it lasted, then sends one probe — never more while it is out.
    const rests: number[] = [];
    for (let refused = 0; refused < 3; refused += 1) {
      const rest = restLeft(pool, clock);
      rests.push(rest);
      clock.advance(rest);
      const probe = pool.tryAcquire();
      expect(probe).toBeDefined();
      expect(pool.tryAcquire()).toBeUndefined();
      probe?.rateLimited();
    }
    // 800 / 8, then 900 / 8, then 1 012.5 / 8: each a little longer, as the episode lasts.
    expect(rests).toEqual([100, 112.5, 126.5625]);
    waitOut(pool, clock);
    // The fourth probe, 1 139.0625 / 8 later, gets through: a slot had freed 1 281.4453125 ms after
    // the episode began, and three got through in it.
    const through = pool.tryAcquire();
    through?.release();
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', reason: 'paced' });
    expect(restLeft(pool, clock)).toBeCloseTo(1_281.4453125 / 3, 6);
  });

  it("counts an unhinted episode's late successes, and lets its probe out while they are", async () => {
    const { pool, clock } = await make(1);
    const [a, b, c, d] = [pool.tryAcquire(), pool.tryAcquire(), pool.tryAcquire(), pool.tryAcquire()];
    a?.release();
    clock.advance(800);
    d?.rateLimited();
    clock.advance(100);
    // Two slow calls of the episode are still out: they say nothing of a slot now, so they hold no probe back.
    const probe = pool.tryAcquire();
    expect(probe).toBeDefined();
    expect(pool.tryAcquire()).toBeUndefined();
    probe?.release();
    // One of the episode got through in 900 ms, so far…
    expect(restLeft(pool, clock)).toBe(900);
    // …then the stragglers: three in those 900 ms, so the calls after the next go 300 ms apart.
    b?.release();
    c?.release();
    expect(gapAfterNextCall(pool, clock)).toBe(300);
  });

  it('never narrows an unhinted pace past what its last refused probe showed too fast', async () => {
    const { pool, clock } = await make(1);
    const d = fourthAfterThreeThrough(pool);
    clock.advance(800);
    d?.rateLimited();
    waitOut(pool, clock);
    // Refused 900 ms after the episode began: three calls take longer than that.
    pool.tryAcquire()?.rateLimited();
    waitOut(pool, clock);
    // Through 1 012.5 ms after it began: 337.5 ms apart, narrowing with each success…
    let gap = 0;
    for (let i = 0; i < 200; i += 1) gap = gapAfterNextCall(pool, clock);
    // …to a tenth above 300 ms, no further.
    expect(gap).toBeCloseTo(300 * 1.1, 6);
  });

  it('does not widen the pace for a bare 429 of the first call after a rest: it tested no pace', async () => {
    const { pool, clock } = await make(1);
    // Refused at the pace: the gap widens by a quarter, to 375 ms, after a one-second rest.
    refusedAtUnhintedPace(pool, clock);
    waitOut(pool, clock);
    // The first call after the rest is refused too: the slot has not freed yet; the rest escalates.
    pool.tryAcquire()?.rateLimited();
    expect(pool.snapshot().keys[0]).toMatchObject({ reason: 'rate-limited' });
    // Still 375 ms (not 468.75) between calls.
    expect(gapAfterNextCall(pool, clock)).toBe(375);
  });

  it('stays a tenth above the gap that drew an unhinted 429 (a twentieth when hinted) as successes narrow it', async () => {
    const { pool, clock } = await make(1);
    // Refused at the pace, unhinted: the gap that drew it was 300 ms.
    refusedAtUnhintedPace(pool, clock);
    let gap = 0;
    for (let i = 0; i < 200; i += 1) {
      waitOut(pool, clock);
      const lease = pool.tryAcquire();
      expect(lease).toBeDefined();
      gap = restLeft(pool, clock);
      lease?.release();
    }
    expect(gap).toBeCloseTo(300 * 1.1, 0);
  });

  it('asks no rest of a late 429 whose wait is already over', async () => {
    const { pool, clock } = await make(1);
    const lease = await pool.acquire();
    clock.advance(2_000);
    lease.rateLimited({ retryAfterMs: 1_000 });
    expect(pool.snapshot().keys[0]?.state).toBe('available');
  });
});

describe('slow start', () => {
  it('lets a new key take at most 10 leases at once until its successes widen the window', async () => {
    const { pool } = await make(1);
    const leases = Array.from({ length: 10 }, () => pool.tryAcquire());
    expect(leases.every(Boolean)).toBe(true);
    expect(pool.snapshot().keys[0]?.state).toBe('busy');
    expect(pool.tryAcquire()).toBeUndefined();
    leases[0]?.release();
    // One success: the lease's slot back, and one more.
    expect(pool.tryAcquire()).toBeDefined();
    expect(pool.tryAcquire()).toBeDefined();
    expect(pool.tryAcquire()).toBeUndefined();
  });

  it('says what caps a new key: the snapshot, the reason and the timeout all name slow start', async () => {
    const { pool, clock } = await make(1);
    const leases = Array.from({ length: 10 }, () => pool.tryAcquire());
    expect(leases.every(Boolean)).toBe(true);
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'busy', reason: 'slow-start', maxConcurrent: 10 });
    const waiting = pool.acquire({ timeoutMs: 1_000 });
    clock.advance(1_000);
    const error = await waiting.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NoAvailableKeyError);
    const message = (error as Error).message;
    expect(message).toContain('1 busy (slow-start)');
    expect(message).toContain('busy keys return as their leases settle');
    expect(message).not.toContain('none will return by itself');
    // Its successes widen the cap, and the snapshot follows.
    leases[0]?.release();
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'available', reason: null, maxConcurrent: 11 });
  });

  it('names the configured cap, not slow start, when maxConcurrent is the tighter one', async () => {
    const { pool } = await make(1, { maxConcurrentPerKey: 3 });
    for (let i = 0; i < 3; i++) expect(pool.tryAcquire()).toBeDefined();
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'busy', reason: null, maxConcurrent: 3 });
  });

  it('leaves a key with history alone', async () => {
    const storage = memoryStorage();
    const first = await make(1, { storage, flushIntervalMs: 0 });
    (await first.pool.acquire()).release();
    await first.pool.close();
    const { pool } = await make(1, { storage }, first.clock);
    const leases = Array.from({ length: 30 }, () => pool.tryAcquire());
    expect(leases.every(Boolean)).toBe(true);
  });
});

describe('budgets', () => {
  it('paces a key to its rpm and wakes the waiter exactly when the budget allows', async () => {
    const [key] = fakeKeys(1);
    const { pool, clock } = await make(0, { keys: [{ key: key as string, rpm: 600 }] });
    const first = await pool.acquire();
    expect(pool.snapshot().keys[0]).toMatchObject({
      state: 'cooling',
      reason: 'budget',
      cooldownUntil: clock.now() + 100,
    });
    const waiter = track(pool.acquire());
    clock.advance(99);
    await flushMicrotasks();
    expect(waiter.state).toBe('pending');
    clock.advance(1);
    await flushMicrotasks();
    expect(waiter.state).toBe('fulfilled');
    first.release();
  });

  it('leaves no budget reason behind when a settle, not the timer, finds the budget rest over', async () => {
    const [key] = fakeKeys(1);
    const { pool, clock } = await make(0, { keys: [{ key: key as string, rpm: 600 }] });
    // Armed before the rest's own timer, so at the rest's end it runs first: the release reaches a
    // key still in `cooling` whose deadline has passed (as a late real timer lets happen).
    let settled: string | undefined;
    clock.setTimeout(() => {
      settled = lease.release({
        headers: { 'x-ratelimit-remaining-requests': '50', 'x-ratelimit-reset-requests': '60s' },
      });
    }, 100);
    const lease = await pool.acquire();
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', reason: 'budget' });
    clock.advance(100);
    expect(settled).toBe('available');
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'available', reason: null, cooldownUntil: 0 });
  });

  it('never lets a budgeted key exceed its rpm, however many callers wait', async () => {
    const [key] = fakeKeys(1);
    const { pool, clock } = await make(0, {
      keys: [{ key: key as string, rpm: 60 }],
      acquireTimeoutMs: 60_000,
    });
    const grants: number[] = [];
    pool.on('acquired', () => grants.push(clock.now()));
    const calls = Array.from({ length: 30 }, () =>
      pool.acquire().then((lease) => {
        lease.release();
      }),
    );
    for (let t = 0; t < 30; t++) {
      clock.advance(1_000);
      await flushMicrotasks();
    }
    await Promise.all(calls);
    const gaps = grants.slice(1).map((at, i) => at - (grants[i] as number));
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1_000);
  });

  it('reserves estimated tokens and charges an overrun on release', async () => {
    const [key] = fakeKeys(1);
    const { pool, clock } = await make(0, { keys: [{ key: key as string, tpm: 60_000 }] });
    const lease = await pool.acquire({ tokens: 500 });
    // 500 tokens at 1 000 tokens/s: the meter is busy for 500 ms.
    expect(pool.snapshot().keys[0]).toMatchObject({
      state: 'cooling',
      reason: 'budget',
      cooldownUntil: clock.now() + 500,
    });
    clock.advance(500);
    lease.release({ usage: { inputTokens: 400, outputTokens: 1_100 } });
    // 1 000 tokens more than reserved: another second.
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'cooling', cooldownUntil: clock.now() + 1_000 });
  });

  it('prefers other keys while one rests for its budget', async () => {
    const keys = fakeKeys(2);
    const { pool } = await make(0, { keys: [{ key: keys[0] as string, rpm: 1 }, keys[1] as string] });
    const a = await pool.acquire();
    const b = await pool.acquire();
    const c = await pool.acquire();
    expect(a.key).toBe(keys[0]);
    expect([b.key, c.key]).toEqual([keys[1], keys[1]]);
  });

  it('rejects invalid budgets by field', async () => {
    const [key] = fakeKeys(1);
    await expect(createTestPool(0, { keys: [{ key: key as string, rpm: 0 }] })).rejects.toMatchObject({
      field: 'keys[0].rpm',
    });
    await expect(createTestPool(0, { keys: [{ key: key as string, tpm: 1.5 }] })).rejects.toMatchObject({
      field: 'keys[0].tpm',
    });
  });
});

describe('spent quotas', () => {
  it('exhausts a key until the stated reset, then probes it', async () => {
    const { pool, clock } = await make(2);
    const lease = await pool.acquire();
    expect(lease.fail(new Error('insufficient_quota'), { kind: 'quota', retryAfterMs: 60_000 })).toBe(
      'exhausted',
    );
    const key = pool.snapshot().keys.find((k) => k.keyId === lease.keyId);
    expect(key).toMatchObject({ reason: 'quota', recoveryAt: clock.now() + 60_000, consecutiveFailures: 0 });
    clock.advance(60_000);
    expect(pool.snapshot().keys.find((k) => k.keyId === lease.keyId)).toMatchObject({
      state: 'exhausted',
      probe: true,
    });
  });

  it('classifies an insufficient_quota 429 in withKey as a spent quota', async () => {
    const { pool } = await make(1);
    const response = new Response(
      JSON.stringify({
        error: {
          message: 'You exceeded your current quota',
          type: 'insufficient_quota',
          code: 'insufficient_quota',
        },
      }),
      { status: 429, headers: { 'content-type': 'application/json' } },
    );
    await pool.withKey(async () => response);
    expect(pool.snapshot().keys[0]).toMatchObject({ state: 'exhausted', reason: 'quota' });
  });
});

describe('provider-wide trouble', () => {
  it('counts a 5xx against a key once another key, called after it, succeeds', async () => {
    const { pool, clock } = await make(3, { maxFailures: 2, strategy: 'round-robin' });
    const [bad, good1, good2] = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
    good1.release({ latencyMs: 5 });
    bad.fail(new Error('500'), { kind: 'provider' });
    const badKey = () => pool.snapshot().keys.find((k) => k.keyId === bad.keyId);
    // A call that started before the error proves nothing about the provider now.
    good2.release({ latencyMs: 5 });
    expect(badKey()?.consecutiveFailures).toBe(0);
    clock.advance(50);
    let later = await pool.acquire();
    if (later.keyId === bad.keyId) later = await pool.acquire(); // hold the bad key's turn unsettled
    expect(later.keyId).not.toBe(bad.keyId);
    clock.advance(5);
    later.release({ latencyMs: 5 });
    expect(badKey()).toMatchObject({ consecutiveFailures: 1, failures: 1 });
  });

  it('backs off as a whole when most keys fail at once, and exhausts none', async () => {
    const { pool, clock } = await make(3, { maxFailures: 2 });
    const outages: number[] = [];
    pool.on('outage', (e) => outages.push(e.until - clock.now()));
    for (let round = 0; round < 3; round++) {
      const leases = [await pool.acquire(), await pool.acquire(), await pool.acquire()];
      for (const lease of leases) lease.fail(new Error('503'), { kind: 'provider' });
      expect(pool.snapshot().outage).not.toBeNull();
      // Nobody is granted a key while the pool backs off.
      expect(pool.tryAcquire()).toBeUndefined();
      clock.advance(outages[outages.length - 1] ?? 0);
      await flushMicrotasks();
    }
    expect(outages).toEqual([250, 500, 1_000]);
    expect(pool.snapshot().keys.every((k) => k.state === 'available' && k.consecutiveFailures === 0)).toBe(
      true,
    );
    expect(pool.snapshot().outage).toBeNull();
  });

  it('serves waiters again when the backoff ends', async () => {
    const { pool, clock } = await make(2);
    const leases = [await pool.acquire(), await pool.acquire()];
    for (const lease of leases) lease.fail(new Error('529 overloaded'), { kind: 'provider' });
    const waiter = track(pool.acquire({ timeoutMs: 5_000 }));
    clock.advance(249);
    await flushMicrotasks();
    expect(waiter.state).toBe('pending');
    clock.advance(1);
    await flushMicrotasks();
    expect(waiter.state).toBe('fulfilled');
  });

  it('fails fast when the backoff outlasts the caller', async () => {
    const { pool } = await make(2);
    const leases = [await pool.acquire(), await pool.acquire()];
    for (const lease of leases) lease.fail(new Error('503'), { kind: 'provider' });
    await expect(pool.acquire({ timeoutMs: 100 })).rejects.toBeInstanceOf(NoAvailableKeyError);
  });
});

describe('quota groups', () => {
  it('rests every key of the group when the provider says the shared quota is spent', async () => {
    const keys = fakeKeys(3);
    const { pool, clock } = await make(0, {
      keys: [
        { key: keys[0] as string, group: 'project-1' },
        { key: keys[1] as string, group: 'project-1' },
        { key: keys[2] as string, group: 'project-2' },
      ],
      strategy: 'round-robin',
    });
    const lease = await pool.acquire();
    lease.rateLimited({ retryAfterMs: 5_000, scope: 'group' });
    const states = pool.snapshot().keys.map((k) => [k.state, k.cooldownUntil - clock.now()]);
    expect(states).toEqual([
      ['cooling', 5_000],
      ['cooling', 5_000],
      ['available', -clock.now()],
    ]);
  });

  it('rests only the key when the scope is the key', async () => {
    const keys = fakeKeys(2);
    const { pool } = await make(0, {
      keys: keys.map((key) => ({ key, group: 'project-1' })),
      strategy: 'round-robin',
    });
    (await pool.acquire()).rateLimited({ retryAfterMs: 5_000 });
    expect(pool.snapshot().keys.map((k) => k.state)).toEqual(['cooling', 'available']);
  });
});
