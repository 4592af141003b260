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

/** What a visitor of {@link GroupedQueue.visit} decides about the head it was shown. */
export type VisitResult = 'removed' | 'skip-group' | 'stop';

/**
 * Waiting requests grouped by the set of buckets they need. Within a group, order is by
 * priority then arrival; across groups, heads are visited in the same global order. A group
 * whose head cannot go is skipped as a whole, so one scan costs O(groups + admitted), not
 * O(queue length), however many requests wait behind an empty bucket.
 */
export class GroupedQueue<T> {
  private readonly groups = new Map<string, PriorityQueue<T>>();
  private count = 0;

  constructor(private readonly order: (value: T) => number) {}

  get size(): number {
    return this.count;
  }

  push(group: string, value: T, priority: number): { node: QueueNode<T>; group: string } {
    return { node: this.link(group, { value, priority, prev: undefined, next: undefined, level: undefined }), group };
  }

  /** Appends a node the caller made (see {@link PriorityQueue.link}); remove it with `remove({ node, group })`. */
  link(group: string, node: QueueNode<T>): QueueNode<T> {
    let q = this.groups.get(group);
    if (!q) {
      q = new PriorityQueue<T>();
      this.groups.set(group, q);
    }
    this.count++;
    return q.link(node);
  }

  /** Is any entry of `group` waiting? */
  has(group: string): boolean {
    return this.groups.has(group);
  }

  /** The first entry of `group`, if any (left in the queue). */
  first(group: string): T | undefined {
    return this.groups.get(group)?.peek()?.value;
  }

  remove(entry: { node: QueueNode<T>; group: string }): boolean {
    const q = this.groups.get(entry.group);
    if (!q || !q.remove(entry.node)) return false;
    this.count--;
    if (q.size === 0) this.groups.delete(entry.group);
    return true;
  }

  /** The first `max` entries of one group, in admission order (left in the queue). */
  head(group: string, max: number): Array<{ value: T; entry: { node: QueueNode<T>; group: string } }> {
    const out: Array<{ value: T; entry: { node: QueueNode<T>; group: string } }> = [];
    const q = this.groups.get(group);
    if (!q) return out;
    for (const node of q) {
      if (out.length >= max) break;
      out.push({ value: node.value, entry: { node, group } });
    }
    return out;
  }

  /** Removes and returns every entry. */
  drain(): T[] {
    const out: T[] = [];
    for (const q of this.groups.values()) out.push(...q.drain());
    this.groups.clear();
    this.count = 0;
    return out;
  }

  /**
   * Shows group heads in global order (priority, then `order`) to `visit`, which removes the
   * head (`removed`: the group's next head is shown in turn), keeps it and skips its group for
   * the rest of this scan (`skip-group`), or ends the scan (`stop`).
   */
  visit(visit: (value: T, entry: { node: QueueNode<T>; group: string }) => VisitResult): void {
    const active = new Map<string, PriorityQueue<T>>(this.groups);
    while (active.size) {
      let best: [string, QueueNode<T>] | undefined;
      for (const [g, q] of active) {
        const head = q.peek();
        if (!head) {
          active.delete(g);
          continue;
        }
        if (
          !best ||
          head.priority > best[1].priority ||
          (head.priority === best[1].priority && this.order(head.value) < this.order(best[1].value))
        ) {
          best = [g, head];
        }
      }
      if (!best) return;
      const [group, node] = best;
      const result = visit(node.value, { node, group });
      if (result === 'stop') return;
      // A visitor that says "removed" without removing would loop forever: treat it as a skip.
      if (result === 'skip-group' || node.level !== undefined) active.delete(group);
    }
  }
}
