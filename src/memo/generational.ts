// A cache that keeps only what the last round used. Between two compiles of a cell most
// inputs are unchanged and their results are reused; whatever a round did not ask for is
// dropped when it ends, so memory stays one round's worth however long the agent runs.
interface Entry<V> {
  readonly dependencies: readonly unknown[];
  readonly value: V;
}

const sameItems = (a: readonly unknown[], b: readonly unknown[]) => a.length === b.length && a.every((item, i) => item === b[i]);

export class GenerationalCache<K, V> {
  private previous = new Map<K, Entry<V>>();
  private current = new Map<K, Entry<V>>();

  /** The value for `key`, made again unless it was made from the very same (===) dependencies. */
  get(key: K, dependencies: readonly unknown[], make: () => V): V {
    const entry = this.current.get(key) ?? this.previous.get(key);
    if (entry !== undefined && sameItems(entry.dependencies, dependencies)) {
      this.current.set(key, entry);
      return entry.value;
    }
    const value = make();
    this.current.set(key, { dependencies, value });
    return value;
  }

  /** The value last made for `key`, whatever it was made from (kept for the next round too). */
  last(key: K): V | undefined {
    const entry = this.current.get(key) ?? this.previous.get(key);
    if (entry !== undefined) this.current.set(key, entry);
    return entry?.value;
  }

  endRound(): void {
    this.previous = this.current;
    this.current = new Map();
  }

  /** Entries kept: those of the round under way, and those the last round used. */
  get size(): number {
    let size = this.current.size;
    for (const key of this.previous.keys()) if (!this.current.has(key)) size++;
    return size;
  }
}
