/** One caller waiting for a key. */
export interface Waiter {
  readonly requestId: number;
  /** Higher is served first. */
  readonly priority: number;
  /** When it started waiting (epoch ms). */
  readonly since: number;
  /** When it gives up (epoch ms), `Infinity` for never. */
  readonly deadline: number;
  /** Tokens it expects to use (budget reservation), 0 when unknown. */
  readonly tokens: number;
}

interface Level {
  readonly priority: number;
  items: Array<Waiter | undefined>;
  head: number;
  live: number;
}

/**
 * Waiters in priority order, FIFO within a priority. A FIFO per priority level (with a moving
 * head index, compacted lazily) makes enqueue, dequeue and the common cancel O(1) amortised; the
 * levels are few, so finding the highest non-empty one is a short scan of a sorted array.
 */
export class WaiterQueue {
  readonly #levels: Level[] = [];
  readonly #where = new Map<number, { level: number; index: number }>();

  get size(): number {
    return this.#where.size;
  }

  push(waiter: Waiter): void {
    let levelIndex = this.#levels.findIndex((level) => level.priority <= waiter.priority);
    if (levelIndex === -1 || (this.#levels[levelIndex]?.priority ?? Number.NaN) !== waiter.priority) {
      const at = levelIndex === -1 ? this.#levels.length : levelIndex;
      this.#levels.splice(at, 0, { priority: waiter.priority, items: [], head: 0, live: 0 });
      for (const location of this.#where.values()) if (location.level >= at) location.level++;
      levelIndex = at;
    }
    const level = this.#levels[levelIndex] as Level;
    this.#where.set(waiter.requestId, { level: levelIndex, index: level.items.length });
    level.items.push(waiter);
    level.live++;
  }

  /** The next waiter to serve, without removing it. */
  peek(): Waiter | undefined {
    for (const level of this.#levels) {
      if (level.live === 0) continue;
      while (level.head < level.items.length && level.items[level.head] === undefined) level.head++;
      // Drop the served prefix once it dominates, so a queue that never empties stays bounded.
      if (level.head > 1024 && level.head * 2 > level.items.length) {
        level.items.splice(0, level.head);
        level.head = 0;
        level.items.forEach((waiter, index) => {
          const location = waiter ? this.#where.get(waiter.requestId) : undefined;
          if (location) location.index = index;
        });
      }
      return level.items[level.head];
    }
    return undefined;
  }

  shift(): Waiter | undefined {
    const waiter = this.peek();
    if (waiter) this.remove(waiter.requestId);
    return waiter;
  }

  remove(requestId: number): Waiter | undefined {
    const location = this.#where.get(requestId);
    if (!location) return undefined;
    this.#where.delete(requestId);
    const level = this.#levels[location.level] as Level;
    const waiter = level.items[location.index];
    level.items[location.index] = undefined;
    level.live--;
    if (level.live === 0) {
      level.items.length = 0;
      level.head = 0;
    }
    return waiter;
  }

  /** Removes and returns every waiter, in service order. */
  drain(): Waiter[] {
    const all: Waiter[] = [];
    for (let waiter = this.shift(); waiter; waiter = this.shift()) all.push(waiter);
    return all;
  }
}
