import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler } from 'rxjs';
import { GroupedQueue } from '../../lib/core/queue.js';
import {
  createLimiter,
  defineProvider,
  isQueueFullError,
  responseLike,
  sharedAdmission,
  type Limiter,
  type LimiterStore,
  type StoreGrant,
  type StoreSession,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const ok = responseLike(200, {});
const onePerSecond = defineProvider({
  name: 'one-per-second',
  buckets: [{ name: 'default', limit: 1, windowMs: 1000 }],
  read: () => ({ outcome: 'ok', buckets: [] }),
});

/** Sends requests named by `[name, priority]` through `limiter`, noting what each came to. */
function sender(limiter: Limiter, now: () => number) {
  const outcomes: string[] = [];
  const refused: string[] = [];
  limiter.events$.subscribe((e) => {
    if (e.type === 'queue-full') refused.push(String(e.request.priority));
  });
  const send = (name: string, priority: number) =>
    limiter.acquire(
      { priority },
      {
        granted: (p) => {
          outcomes.push(`${name} went in second ${Math.floor(now() / 1000)}`);
          p.observe(ok);
          p.release();
        },
        rejected: (e) => outcomes.push(`${name} ${isQueueFullError(e) ? 'QueueFullError' : e.name}`),
      },
    );
  return { send, outcomes, refused };
}

describe('maxQueue: a more important request takes the place of the least important one waiting', () => {
  it('at the cap, a higher priority pushes out the lowest one waiting (the latest among equals), which fails with QueueFullError; an equal or lower one is refused', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: onePerSecond, key: 'k', maxQueue: 3 });
      const { send, outcomes, refused } = sender(limiter, now);
      send('first', 0); // goes at once; the others wait a window each
      send('a', 0);
      send('b', 1);
      send('c', 0);
      send('d', 2); // the queue holds 3: pushes out c (priority 0, queued after a)
      send('e', 0); // no priority below 0 waits: refused
      send('f', 1); // pushes out a, the last priority 0 left
      send('g', -1); // the lowest of all: refused
      const queued = limiter.snapshot.queued;
      return { outcomes, refused, queued };
    });
    expect(out.queued).toBe(3);
    expect(out.outcomes).toEqual([
      'first went in second 0',
      'c QueueFullError',
      'e QueueFullError',
      'a QueueFullError',
      'g QueueFullError',
      // The ones kept go in priority order, then arrival, a window apart.
      'd went in second 1',
      'b went in second 2',
      'f went in second 3',
    ]);
    // Each one failed is told as the refusal is: a `queue-full` event for that request.
    expect(out.refused).toEqual(['0', '0', '0', '-1']);
  });

  it('a request that can go at once at the cap still goes, and pushes out nobody', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: onePerSecond, key: 'k', maxQueue: 0 });
      const { send, outcomes } = sender(limiter, now);
      send('first', 5);
      send('second', 5);
      asyncScheduler.schedule(() => send('third', 0), 1500);
      return outcomes;
    });
    expect(out).toEqual(['first went in second 0', 'second QueueFullError', 'third went in second 1']);
  });
});

/** A session that answers each `acquire` only when the test says so, granting what was asked. */
function heldSession(calls: number[], answers: Array<() => void>): StoreSession {
  let lease = 0;
  return {
    acquire: (_buckets, count) => {
      calls.push(count);
      return new Promise<StoreGrant>((resolve) =>
        answers.push(() =>
          resolve({
            leases: Array.from({ length: count }, () => `lease-${++lease}`),
            waitMs: undefined,
            blockedBy: undefined,
            pause: undefined,
            buckets: [],
          }),
        ),
      );
    },
    observe: () => {},
    release: () => {},
    pause: () => {},
    exhaust: () => {},
    onChange: () => () => {},
    close: () => Promise.resolve(),
  };
}

describe('maxQueue with a shared store (asynchronous admission)', () => {
  it('at the cap, a higher priority pushes out the lowest one waiting; an equal one is refused at once, asking the store nothing', async () => {
    const calls: number[] = [];
    const answers: Array<() => void> = [];
    const store: LimiterStore = { kind: 'held', admission: sharedAdmission(), open: () => heldSession(calls, answers) };
    const limiter = createLimiter({ provider: onePerSecond, key: 'shared-cap', store, maxQueue: 3 });
    const { send, outcomes, refused } = sender(limiter, () => 0);
    send('a', 0); // the store is asked for it, and has not answered
    send('b', 1);
    send('c', 0);
    send('d', 2); // pushes out c
    send('e', 0); // refused
    expect(outcomes).toEqual(['c QueueFullError', 'e QueueFullError']);
    expect(refused).toEqual(['0', '0']);
    expect(limiter.snapshot.queued).toBe(3);
    expect(calls).toEqual([1]);
    // The store answers: its grants go to the queue's head, in priority order, and none is lost.
    while (answers.length > 0) {
      answers.shift()?.();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    expect(outcomes.slice(2)).toEqual(['d went in second 0', 'b went in second 0', 'a went in second 0']);
    await limiter.close();
  });
});

describe('GroupedQueue.lowest', () => {
  it('finds the entry that comes last (lowest priority, then latest) below a priority, under any pushes and removals', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(fc.boolean(), fc.constantFrom('x', 'y', 'z'), fc.integer({ min: -2, max: 2 }), fc.nat(), fc.nat(9)),
        ),
        fc.integer({ min: -3, max: 3 }),
        fc.boolean(),
        (ops, below, inOrder) => {
          // Entries linked behind later ones too (a request moved by regroup.ts): `late` of 9.
          const q = new GroupedQueue<number>((v) => v);
          const model: Array<{ v: number; p: number; entry: ReturnType<typeof q.push> }> = [];
          let id = 0;
          for (const [push, g, p, pick, late] of ops) {
            if (push || model.length === 0) {
              const v = inOrder ? id : (id - late) * 10 + late; // unique: late < 10
              id++;
              model.push({ v, p, entry: q.push(g, v, p) });
            } else {
              const [gone] = model.splice(pick % model.length, 1);
              q.remove(gone!.entry);
            }
            const expected = model
              .filter((m) => m.p < below)
              .sort((a, b) => b.p - a.p || a.v - b.v)
              .at(-1)?.v;
            expect(q.lowest(below)?.node.value).toBe(expected);
          }
        },
      ),
    );
  });
});
