/**
 * A binary min-heap whose members know their own position, so any member can be removed or
 * re-keyed in O(log n). `before(a, b)`: `a` comes out first.
 */
export class Heap<T> {
  private readonly items: T[] = [];

  constructor(
    private readonly before: (a: T, b: T) => boolean,
    private readonly index: { get(x: T): number; set(x: T, i: number): void },
  ) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  /** The members, in heap order (not sorted; live: read it before changing the heap). */
  get members(): readonly T[] {
    return this.items;
  }

  has(x: T): boolean {
    const i = this.index.get(x);
    return i >= 0 && this.items[i] === x;
  }

  push(x: T): void {
    this.items.push(x);
    this.index.set(x, this.items.length - 1);
    this.up(this.items.length - 1);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.remove(top);
    return top;
  }

  remove(x: T): boolean {
    if (!this.has(x)) return false;
    const i = this.index.get(x);
    const last = this.items.pop() as T;
    this.index.set(x, -1);
    if (last !== x) {
      this.items[i] = last;
      this.index.set(last, i);
      this.down(this.up(i));
    }
    return true;
  }

  /** Restores order after `x`'s key changed. */
  update(x: T): void {
    if (this.has(x)) this.down(this.up(this.index.get(x)));
  }

  /** Removes and returns every member, in no order. */
  clear(): T[] {
    const out = this.items.splice(0);
    for (const x of out) this.index.set(x, -1);
    return out;
  }

  private up(i: number): number {
    const x = this.items[i] as T;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = this.items[parent] as T;
      if (!this.before(x, p)) break;
      this.items[i] = p;
      this.index.set(p, i);
      i = parent;
    }
    this.items[i] = x;
    this.index.set(x, i);
    return i;
  }

  private down(i: number): void {
    const n = this.items.length;
    const x = this.items[i] as T;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.before(this.items[r] as T, this.items[l] as T) ? r : l;
      const child = this.items[c] as T;
      if (!this.before(child, x)) break;
      this.items[i] = child;
      this.index.set(child, i);
      i = c;
    }
    this.items[i] = x;
    this.index.set(x, i);
  }
}
