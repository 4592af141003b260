/**
 * The limiter's queue: waiting requests grouped by the buckets they need (`GroupedQueue`), each
 * group a {@link PriorityQueue}, the groups ordered in heaps.
 */
import { Heap } from './heap.js';
import { PriorityQueue, type Level, type QueueNode } from './priorityQueue.js';

/** What a visitor of {@link GroupedQueue.visit} decides about the head it was shown. */
export type VisitResult = 'removed' | 'skip-group' | 'stop';

/**
 * The entries of a {@link GroupedQueue} that need one set of buckets, with where the group is:
 * ready to be looked at, or parked on a {@link Lot} until something there changes. It is its
 * own {@link PriorityQueue} of entries: one object, not two, on the way to its head, which is
 * read at every admission (out of the CPU's caches at 10,000 tenants).
 */
export class Group<T, M> extends PriorityQueue<T> {
  /** @internal Position in the heap it is in (the ready heap or its lot's). */ at = -1;
  /** @internal Position in the deadline heap. */ deadlineAt = -1;
  /** @internal The lot it is parked on, if any. */ lot: Lot<T, M> | undefined = undefined;
  /** @internal The lot it was taken from when that lot woke (see {@link GroupedQueue.wake}). */ from:
    Lot<T, M> | undefined = undefined;
  /**
   * @internal Parked, when it is looked at again at the latest: the earliest deadline of its
   * entries (Infinity: none).
   */ deadline = Infinity;
  /**
   * @internal An entry was linked behind a later one of its priority (a request moved here by
   * `regroup.ts`): {@link GroupedQueue.expire} reads the whole group, not each level's first.
   */ unordered = false;

  constructor(
    readonly key: string,
    /** What the owner keeps with the group (the limiter: its buckets). */
    readonly meta: M,
  ) {
    super();
  }

  /** The first entry. */
  get head(): QueueNode<T> | undefined {
    return this.peek();
  }
}

/**
 * Groups parked on one thing that must change before any of them can go (the limiter: one
 * empty bucket). Woken by time (`wakeAt`) or by the owner, one group at a time in global
 * order while the thing lets them through.
 */
export class Lot<T, M> {
  /** @internal */ groups: Heap<Group<T, M>>;
  /** @internal */ wakeAt = Infinity;
  /** @internal */ timeAt = -1;
  /**
   * @internal At or before the earliest deadline of the groups parked here (a bound: kept as
   * groups leave, until none is left), for its owner to wake it when a wait known later
   * passes it (the limiter: `LocalAdmission.recheck`).
   */ minDeadline = Infinity;

  constructor(before: (a: Group<T, M>, b: Group<T, M>) => boolean) {
    this.groups = new Heap(
      before,
      GROUP_INDEX as { get(g: Group<T, M>): number; set(g: Group<T, M>, i: number): void },
    );
  }

  get size(): number {
    return this.groups.size;
  }
}

const GROUP_INDEX = {
  get: (g: Group<unknown, unknown>) => g.at,
  set: (g: Group<unknown, unknown>, i: number) => {
    g.at = i;
  },
};

const LOT_INDEX = {
  get: (l: Lot<unknown, unknown>) => l.timeAt,
  set: (l: Lot<unknown, unknown>, i: number) => {
    l.timeAt = i;
  },
};

const DEADLINE_INDEX = {
  get: (g: Group<unknown, unknown>) => g.deadlineAt,
  set: (g: Group<unknown, unknown>, i: number) => {
    g.deadlineAt = i;
  },
};

const wakesFirst = (a: { wakeAt: number }, b: { wakeAt: number }) => a.wakeAt < b.wakeAt;
const endsFirst = (a: { deadline: number }, b: { deadline: number }) => a.deadline < b.deadline;

type Before = (a: Group<unknown, unknown>, b: Group<unknown, unknown>) => boolean;

/** The order of groups by their heads, for each order of values: one function for every limiter's queue. */
const beforeByOrder = /* @__PURE__ */ new WeakMap<(value: never) => number, Before>();

function beforeOf<T, M>(order: (value: T) => number): (a: Group<T, M>, b: Group<T, M>) => boolean {
  let before = beforeByOrder.get(order);
  if (before === undefined) {
    before = (a, b) => {
      const x = a.head;
      const y = b.head;
      if (!x || !y) return x !== undefined;
      return x.priority > y.priority || (x.priority === y.priority && order(x.value as T) < order(y.value as T));
    };
    beforeByOrder.set(order, before);
  }
  return before;
}

/** What the owner of a {@link GroupedQueue} hears when a group starts or stops existing. */
export interface GroupHooks<M> {
  opened?(meta: M): void;
  closed?(meta: M): void;
}

type Entry<T> = { node: QueueNode<T>; group: string };

/**
 * Waiting requests grouped by the set of buckets they need. Within a group, order is by
 * priority then arrival; across groups, heads come in the same global order.
 *
 * Each group is in one place: the ready heap (ordered by its head), or parked on a lot (an
 * empty bucket) with, when its wait has no known end, a deadline. A parked group is not looked
 * at again until its lot wakes (the bucket has room, or its time came) or its deadline passes,
 * so each admission costs O(log groups), however many groups wait.
 */
export class GroupedQueue<T, M = undefined> {
  private readonly groups = new Map<string, Group<T, M>>();
  /**
   * The group last found, open: a request is looked up by its group about three times (the
   * limiter's grouping, the admission, the queue), and a tenant's requests are mostly of one
   * group. The map's table is then not read (at 10,000 tenants, out of the CPU's caches).
   */
  private lastGroup: Group<T, M> | undefined = undefined;
  private count = 0;
  /**
   * At or below the lowest priority waiting (a bound: kept as entries leave, until the queue
   * empties), so that `lowest` reads no group when nothing waits at a lower priority.
   */
  private floor = Infinity;
  private readonly before: (a: Group<T, M>, b: Group<T, M>) => boolean;
  private readonly ready: Heap<Group<T, M>>;
  // Their orders are the same for every queue: one set of functions, not one per tenant's limiter.
  private readonly lotTimes = new Heap<Lot<T, M>>(
    wakesFirst,
    LOT_INDEX as { get(l: Lot<T, M>): number; set(l: Lot<T, M>, i: number): void },
  );
  private readonly deadlines = new Heap<Group<T, M>>(
    endsFirst,
    DEADLINE_INDEX as { get(g: Group<T, M>): number; set(g: Group<T, M>, i: number): void },
  );

  constructor(
    private readonly order: (value: T) => number,
    private readonly hooks: GroupHooks<M> = {},
  ) {
    this.before = beforeOf(order);
    this.ready = new Heap(
      this.before,
      GROUP_INDEX as { get(g: Group<T, M>): number; set(g: Group<T, M>, i: number): void },
    );
  }

  get size(): number {
    return this.count;
  }

  /** A new lot, ordered like this queue. */
  lot(): Lot<T, M> {
    return new Lot<T, M>(this.before);
  }

  push(group: string, value: T, priority: number, meta?: M): Entry<T> {
    return {
      node: this.link(group, { value, priority, prev: undefined, next: undefined, level: undefined }, meta),
      group,
    };
  }

  /**
   * Appends a node the caller made (see {@link PriorityQueue.link}); remove it with
   * `remove({ node, group })`. `meta` is kept with a group this creates.
   */
  link(group: string, node: QueueNode<T>, meta?: M): QueueNode<T> {
    let g = this.find(group);
    const opened = !g;
    if (!g) {
      g = new Group<T, M>(group, meta as M);
      this.groups.set(group, g);
      this.lastGroup = g;
    }
    const head = g.head;
    this.count++;
    if (node.priority < this.floor) this.floor = node.priority;
    g.link(node);
    // Linked behind an entry queued after it: its deadline may come before theirs, and the
    // group's, if parked, is looked at again.
    const prev = node.prev;
    const unordered = prev !== undefined && this.order(prev.value) > this.order(node.value);
    if (unordered) g.unordered = true;
    if (opened) {
      this.ready.push(g);
      this.hooks.opened?.(g.meta);
    } else if (g.head !== head || unordered) this.headChanged(g);
    return node;
  }

  /** Is any entry of `group` waiting? */
  has(group: string): boolean {
    return this.find(group) !== undefined;
  }

  /** The group named `group`, if any entry waits in it. */
  group(group: string): Group<T, M> | undefined {
    return this.count === 0 ? undefined : this.find(group);
  }

  remove(entry: Entry<T>): boolean {
    const g = this.find(entry.group);
    return g !== undefined && this.removeFrom(g, entry.node);
  }

  /**
   * `remove` of a node of `g`, a group in the queue (as `nextReady` shows it): no entry object
   * made and no visit to the map of groups (a table of each queue's own, out of the CPU's
   * caches at 10,000 tenants) per admission.
   */
  removeFrom(g: Group<T, M>, node: QueueNode<T>): boolean {
    const head = g.head;
    if (!g.remove(node)) return false;
    this.count--;
    if (g.size === 0) this.close(g);
    else if (g.head !== head) this.headChanged(g);
    return true;
  }

  /** The first `max` entries of one group, in admission order (left in the queue). */
  head(group: string, max: number): Array<{ value: T; entry: Entry<T> }> {
    const out: Array<{ value: T; entry: Entry<T> }> = [];
    const g = this.groups.get(group);
    if (!g) return out;
    for (const node of g) {
      if (out.length >= max) break;
      out.push({ value: node.value, entry: { node, group } });
    }
    return out;
  }

  /** Every waiting entry, group by group (a copy: the caller may move or remove them). */
  entries(): Array<{ value: T; entry: Entry<T> }> {
    const out: Array<{ value: T; entry: Entry<T> }> = [];
    for (const [group, g] of this.groups) for (const node of g) out.push({ value: node.value, entry: { node, group } });
    return out;
  }

  /**
   * The entry that comes last in global order (the lowest priority, then the latest by the
   * queue's order), if its priority is below `priority`: what a more important entry pushes
   * out of a full queue. O(groups) when an entry waits below `priority`, else mostly O(1).
   */
  lowest(priority: number): Entry<T> | undefined {
    if (this.floor >= priority) return undefined;
    let last: QueueNode<T> | undefined;
    let group = '';
    let floor = Infinity;
    for (const g of this.groups.values()) {
      const level = g.levelList[g.levelList.length - 1];
      if (level === undefined) continue;
      if (level.priority < floor) floor = level.priority;
      if (level.priority >= priority || (last !== undefined && level.priority > last.priority)) continue;
      let node = level.tail as QueueNode<T>;
      // Linked behind later ones (see `Group.unordered`): the latest may be anywhere in the level.
      if (g.unordered)
        for (let n = level.head; n; n = n.next) if (this.order(n.value) > this.order(node.value)) node = n;
      if (last === undefined || node.priority < last.priority || this.order(node.value) > this.order(last.value)) {
        last = node;
        group = g.key;
      }
    }
    this.floor = floor;
    return last && { node: last, group };
  }

  /** Removes and returns every entry. */
  drain(): T[] {
    const out: T[] = [];
    const groups = [...this.groups.values()];
    this.floor = Infinity;
    this.groups.clear();
    this.lastGroup = undefined;
    this.ready.clear();
    this.lotTimes.clear();
    this.deadlines.clear();
    for (const g of groups) {
      if (g.lot) {
        g.lot.groups.clear();
        g.lot.minDeadline = Infinity;
      }
      g.lot = g.from = undefined;
      out.push(...g.drain());
    }
    this.count = 0;
    for (const g of groups) this.hooks.closed?.(g.meta);
    return out;
  }

  /** Every group (live: a group emptied leaves it). */
  allGroups(): IterableIterator<Group<T, M>> {
    return this.groups.values();
  }

  /** The ready groups, in heap order (live: read it before changing the queue). */
  readyGroups(): readonly Group<T, M>[] {
    return this.ready.members;
  }

  /**
   * Removes from `g` each entry whose deadline (`deadlineOf`) is at or before `now`, or before
   * `cutoff`, into `out` (the caller fails them, after: a handler may queue more); its head too
   * unless `keepHead`. Returns the earliest deadline of the entries left (Infinity: none).
   *
   * Within a priority level entries are in arrival order, so deadlines (arrival plus one
   * `maxWaitMs`) never decrease along it: each level is read up to its first entry kept, which
   * costs O(levels) when nothing expires (priorities are few), plus one step per entry removed.
   * A group `unordered` (see there) is read whole.
   */
  expire(
    g: Group<T, M>,
    deadlineOf: (value: T) => number,
    now: number,
    cutoff: number,
    out: T[],
    keepHead: boolean,
  ): number {
    const head = g.head;
    const levels = g.levelList;
    const whole = g.unordered;
    let min = Infinity;
    let headGone = false;
    // From the last level: one emptied is spliced out, and the levels before it keep their places.
    for (let i = levels.length - 1; i >= 0; i--) {
      let node = (levels[i] as Level<T>).head;
      while (node) {
        const next = node.next;
        const d = deadlineOf(node.value);
        const expired = d <= now || d < cutoff;
        if (expired && !(keepHead && node === head)) {
          g.remove(node);
          this.count--;
          out.push(node.value);
          if (node === head) headGone = true;
        } else {
          if (d < min) min = d;
          // A head kept though expired: those behind it are read on.
          if (!whole && !expired) break;
        }
        node = next;
      }
    }
    if (g.size === 0) this.close(g);
    else if (headGone) this.headChanged(g);
    return min;
  }

  /** The ready group whose head comes first, if any (left where it is). */
  nextReady(): Group<T, M> | undefined {
    return this.ready.peek();
  }

  /**
   * Parks a ready group on `lot` until the lot wakes, or until `deadline` (its head's wait with
   * no known end runs out; Infinity: none). A group taken from another lot that is still
   * letting groups through hands over to that lot's next group.
   */
  park(g: Group<T, M>, lot: Lot<T, M>, deadline = Infinity): void {
    this.handOver(g, lot);
    this.ready.remove(g);
    g.lot = lot;
    lot.groups.push(g);
    g.deadline = deadline;
    if (deadline < lot.minDeadline) lot.minDeadline = deadline;
    if (deadline < Infinity) this.deadlines.push(g);
  }

  /** After a ready group was dealt with and stays ready: its lot of origin lets the next one through. */
  settled(g: Group<T, M>): void {
    this.handOver(g, undefined);
  }

  /** Sets when `lot` wakes by itself (Infinity: only when its owner wakes it). */
  wakeLotAt(lot: Lot<T, M>, at: number): void {
    if (at === lot.wakeAt && (at === Infinity || this.lotTimes.has(lot))) return;
    this.lotTimes.remove(lot);
    lot.wakeAt = at;
    if (at < Infinity && lot.size > 0) this.lotTimes.push(lot);
  }

  /**
   * Lets the first group of `lot` through (it becomes ready); each one, once dealt with, lets
   * the next through, until one is parked here again. So a bucket that has room for a few
   * costs a few looks, not one per group parked on it.
   */
  wake(lot: Lot<T, M>): void {
    this.lotTimes.remove(lot);
    lot.wakeAt = Infinity;
    const g = lot.groups.peek();
    if (!g) return;
    this.unpark(g);
    g.from = lot;
  }

  /** A lot whose wake time is at or before `now`, taken off the time heap; undefined when none. */
  dueLot(now: number): Lot<T, M> | undefined {
    const lot = this.lotTimes.peek();
    if (!lot || lot.wakeAt > now) return undefined;
    this.lotTimes.pop();
    lot.wakeAt = Infinity;
    return lot;
  }

  /** Makes ready a parked group whose deadline is at or before `now`; false when none. */
  wakeDue(now: number): boolean {
    const g = this.deadlines.peek();
    if (!g || g.deadline > now) return false;
    this.unpark(g);
    return true;
  }

  /** The earliest wake time or deadline (Infinity: none). */
  nextWake(): number {
    return Math.min(this.lotTimes.peek()?.wakeAt ?? Infinity, this.deadlines.peek()?.deadline ?? Infinity);
  }

  /**
   * Shows group heads in global order (priority, then `order`) to `visit`, which removes the
   * head (`removed`: the group's next head is shown in turn), keeps it and skips its group for
   * the rest of this scan (`skip-group`), or ends the scan (`stop`). Looks at every group,
   * parked or not (O(log groups) per head shown).
   */
  visit(visit: (value: T, entry: Entry<T>) => VisitResult): void {
    const index = new Map<Group<T, M>, number>();
    const active = new Heap<Group<T, M>>(this.before, {
      get: (g) => index.get(g) ?? -1,
      set: (g, i) => {
        index.set(g, i);
      },
    });
    for (const g of this.groups.values()) active.push(g);
    for (let g = active.peek(); g; g = active.peek()) {
      const node = g.head;
      if (!node || this.groups.get(g.key) !== g) {
        active.pop();
        continue;
      }
      const result = visit(node.value, { node, group: g.key });
      if (result === 'stop') return;
      // A visitor that says "removed" without removing would loop forever: treat it as a skip.
      if (result === 'skip-group' || node.level !== undefined) active.pop();
      else active.update(g);
    }
  }

  private unpark(g: Group<T, M>): void {
    const lot = g.lot;
    if (!lot) return;
    lot.groups.remove(g);
    this.deadlines.remove(g);
    g.deadline = Infinity;
    g.lot = undefined;
    if (lot.size === 0) {
      this.lotTimes.remove(lot);
      lot.minDeadline = Infinity;
    }
    this.ready.push(g);
  }

  /** `g` leaves the lot it was let through from (now parked on `to`, or settled): the next one goes. */
  private handOver(g: Group<T, M>, to: Lot<T, M> | undefined): void {
    const from = g.from;
    if (!from) return;
    g.from = undefined;
    // Parked where it came from: that lot has no more room.
    if (from !== to) this.wake(from);
  }

  private headChanged(g: Group<T, M>): void {
    if (g.lot) {
      // Its new head may have a different deadline, or none: it is looked at again.
      this.unpark(g);
    } else this.ready.update(g);
  }

  /** The open group `key`, if any. */
  private find(key: string): Group<T, M> | undefined {
    const last = this.lastGroup;
    if (last !== undefined && last.key === key) return last;
    const g = this.groups.get(key);
    if (g !== undefined) this.lastGroup = g;
    return g;
  }

  private close(g: Group<T, M>): void {
    this.groups.delete(g.key);
    if (this.lastGroup === g) this.lastGroup = undefined;
    this.ready.remove(g);
    this.deadlines.remove(g);
    if (g.lot) {
      g.lot.groups.remove(g);
      if (g.lot.size === 0) {
        this.lotTimes.remove(g.lot);
        g.lot.minDeadline = Infinity;
      }
    }
    g.lot = undefined;
    this.handOver(g, undefined);
    this.hooks.closed?.(g.meta);
  }
}
