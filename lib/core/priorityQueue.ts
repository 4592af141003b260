/**
 * A priority queue of waiting requests: higher priority first, first-in-first-out within a
 * priority, O(1) removal of any entry (unsubscribe), and no retained memory once emptied.
 * Priorities are few in practice, so each level is a doubly linked list and levels are kept
 * sorted in a small array.
 */
export interface QueueNode<T> {
  readonly value: T;
  readonly priority: number;
  /** @internal */ prev: QueueNode<T> | undefined;
  /** @internal */ next: QueueNode<T> | undefined;
  /** @internal */ level: Level<T> | undefined;
}

/** @internal A priority level of a {@link PriorityQueue}. */
export interface Level<T> {
  readonly priority: number;
  head: QueueNode<T> | undefined;
  tail: QueueNode<T> | undefined;
}

export class PriorityQueue<T> {
  private levels: Level<T>[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  push(value: T, priority = 0): QueueNode<T> {
    return this.link({ value, priority, prev: undefined, next: undefined, level: undefined });
  }

  /**
   * Appends a node the caller made (a waiter can be its own node: one object per waiting
   * request). The node must not be in a queue.
   */
  link(node: QueueNode<T>): QueueNode<T> {
    const level = this.levelFor(node.priority);
    node.prev = level.tail;
    node.next = undefined;
    node.level = level;
    if (level.tail) level.tail.next = node;
    else level.head = node;
    level.tail = node;
    this.count++;
    return node;
  }

  /** Removes `node`; a node already removed is ignored, so cancellation can race admission. */
  remove(node: QueueNode<T>): boolean {
    const level = node.level;
    if (!level) return false;
    if (node.prev) node.prev.next = node.next;
    else level.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else level.tail = node.prev;
    node.prev = node.next = node.level = undefined;
    this.count--;
    if (!level.head) {
      const i = this.levels.indexOf(level);
      if (i >= 0) this.levels.splice(i, 1);
    }
    return true;
  }

  /** Entries in admission order. Safe against removal of the current entry while iterating. */
  *[Symbol.iterator](): IterableIterator<QueueNode<T>> {
    for (const level of [...this.levels]) {
      let node = level.head;
      while (node) {
        const next = node.next;
        yield node;
        node = next;
      }
    }
  }

  peek(): QueueNode<T> | undefined {
    return this.levels[0]?.head;
  }

  /** @internal Its priority levels, highest first (live: a level emptied is spliced out). */
  get levelList(): readonly Level<T>[] {
    return this.levels;
  }

  /** Removes and returns every entry (used when the limiter fails them all at once). */
  drain(): T[] {
    const out: T[] = [];
    for (const node of this) {
      out.push(node.value);
      // Detached, so a late remove() of a drained node is a no-op, not a corruption.
      node.prev = node.next = node.level = undefined;
    }
    this.levels = [];
    this.count = 0;
    return out;
  }

  private levelFor(priority: number): Level<T> {
    // Levels sorted by descending priority; binary search keeps push O(log levels).
    let lo = 0;
    let hi = this.levels.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const level = this.levels[mid];
      if (level === undefined) break;
      if (level.priority === priority) return level;
      if (level.priority > priority) lo = mid + 1;
      else hi = mid;
    }
    const level: Level<T> = { priority, head: undefined, tail: undefined };
    this.levels.splice(lo, 0, level);
    return level;
  }
}
