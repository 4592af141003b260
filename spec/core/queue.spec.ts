import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { PriorityQueue } from '../../lib/core/priorityQueue.js';
import { GroupedQueue } from '../../lib/core/queue.js';

describe('PriorityQueue', () => {
  it('orders by priority, then by arrival, and removes any node in O(1)', () => {
    const q = new PriorityQueue<string>();
    q.push('a', 0);
    const b = q.push('b', 0);
    q.push('c', 2);
    q.push('d', -1);
    q.push('e', 2);
    expect(q.remove(b)).toBe(true);
    expect(q.remove(b)).toBe(false);
    expect([...q].map((n) => n.value)).toEqual(['c', 'e', 'a', 'd']);
    expect(q.size).toBe(4);
  });

  it('matches a reference model under any sequence of pushes and removals', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: -3, max: 3 }), fc.nat()), { maxLength: 200 }),
        (ops) => {
          const q = new PriorityQueue<number>();
          const model: Array<{ v: number; p: number; node: ReturnType<typeof q.push> }> = [];
          let id = 0;
          for (const [push, p, pick] of ops) {
            if (push || model.length === 0) {
              const v = id++;
              model.push({ v, p, node: q.push(v, p) });
            } else {
              const [gone] = model.splice(pick % model.length, 1);
              q.remove(gone!.node);
            }
          }
          const expected = [...model].sort((x, y) => y.p - x.p || x.v - y.v).map((x) => x.v);
          expect([...q].map((n) => n.value)).toEqual(expected);
          expect(q.size).toBe(model.length);
          expect(q.peek()?.value).toBe(expected[0]);
        },
      ),
    );
  });

  it('drain empties it', () => {
    const q = new PriorityQueue<number>();
    for (let i = 0; i < 10; i++) q.push(i, i % 3);
    expect(q.drain()).toHaveLength(10);
    expect(q.size).toBe(0);
    expect(q.peek()).toBeUndefined();
  });
});

describe('GroupedQueue', () => {
  it('visits heads across groups in global priority-then-arrival order when each is removed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('a', 'b', 'c'), fc.integer({ min: 0, max: 2 })), { maxLength: 100 }),
        (items) => {
          const q = new GroupedQueue<{ id: number; p: number }>((v) => v.id);
          items.forEach(([g, p], id) => q.push(g, { id, p }, p));
          const seen: number[] = [];
          q.visit((v, entry) => {
            q.remove(entry);
            seen.push(v.id);
            return 'removed';
          });
          const expected = items
            .map(([, p], id) => ({ id, p }))
            .sort((x, y) => y.p - x.p || x.id - y.id)
            .map((x) => x.id);
          expect(seen).toEqual(expected);
          expect(q.size).toBe(0);
        },
      ),
    );
  });

  it('skip-group skips the rest of that group only', () => {
    const q = new GroupedQueue<string>((v) => Number(v.slice(1)));
    ['a0', 'a1', 'a2'].forEach((v) => q.push('a', v, 0));
    ['b3', 'b4'].forEach((v) => q.push('b', v, 0));
    const seen: string[] = [];
    q.visit((v, entry) => {
      seen.push(v);
      if (v.startsWith('a')) return 'skip-group';
      q.remove(entry);
      return 'removed';
    });
    expect(seen).toEqual(['a0', 'b3', 'b4']);
    expect(q.size).toBe(3);
  });
});

describe('GroupedQueue.expire', () => {
  it('removes exactly the entries past `now` or before `cutoff` (the head if asked) and returns the earliest left', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.nat({ max: 50 })), { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        fc.nat({ max: 60 }),
        fc.nat({ max: 60 }),
        fc.boolean(),
        (pushes, shuffled, now, cutoff, keepHead) => {
          // Deadlines rise with the arrival order (`order`), as the limiter's do; `shuffled`: the
          // entries are linked out of that order (requests moved by a regroup).
          let deadline = 0;
          const entries = pushes.map(([priority, step], i) => {
            const arrival = shuffled ? (i * 37) % 41 : i;
            return { arrival, priority, deadline: shuffled ? arrival : (deadline += step) };
          });
          const order = new Map(entries.map((e) => [e, e.arrival]));
          type E = (typeof entries)[number];
          const q = new GroupedQueue<E>((e) => order.get(e) as number);
          for (const e of entries) q.push('g', e, e.priority);
          const g = q.group('g');
          if (!g) throw new Error('no group');
          const head = g.head?.value;
          const out: E[] = [];
          const min = q.expire(g, (e) => e.deadline, now, cutoff, out, keepHead);
          const gone = (e: E) => (e.deadline <= now || e.deadline < cutoff) && !(keepHead && e === head);
          expect(new Set(out)).toEqual(new Set(entries.filter(gone)));
          const left = entries.filter((e) => !gone(e));
          expect(q.size).toBe(left.length);
          expect(min).toBe(left.length === 0 ? Infinity : Math.min(...left.map((e) => e.deadline)));
        },
      ),
      { numRuns: 300, seed: 3 },
    );
  });
});
