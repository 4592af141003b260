/**
 * A request that can go at once, with nothing else waiting, is admitted without passing through
 * the queue (engine.ts, `drainAlone`). What users see must be what the queue gave: the order of
 * grants and events, requests queued from inside a handler, the `resumed` after a pause, and
 * `state$`/`events$`, whose subjects are now made on first subscription.
 */
import { describe, expect, it } from '@jest/globals';
import { asyncScheduler } from 'rxjs';
import {
  createLimiter,
  defineProvider,
  responseLike,
  type LimiterEvent,
  type LimiterSnapshot,
  type Permit,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const roomy = defineProvider({
  name: 'roomy',
  buckets: [{ name: 'main', limit: 1_000, windowMs: 60_000 }],
  read: () => ({ outcome: 'ok', buckets: [] }),
});
const ok = responseLike(200, {});
const info = { method: 'GET', url: '/v1/items' };

describe('a request admitted at once', () => {
  it('queued from inside a granted handler, waits for that handler to return, announced as queued', () => {
    inVirtualTime(() => {
      const limiter = createLimiter({ provider: roomy, key: 'k', scheduler: asyncScheduler });
      const seen: string[] = [];
      limiter.events$.subscribe((e) => seen.push(`event ${e.type}`));
      limiter.acquire(info, {
        granted: (p) => {
          seen.push('granted 1');
          limiter.acquire(info, {
            granted: (q) => {
              seen.push('granted 2');
              q.release();
            },
            rejected: () => seen.push('rejected 2'),
          });
          seen.push('handler 1 returns');
          p.observe(ok);
          p.release();
        },
        rejected: () => seen.push('rejected 1'),
      });
      expect(seen).toEqual([
        'event admitted',
        'granted 1',
        'event queued',
        'handler 1 returns',
        'event response',
        'event admitted',
        'granted 2',
      ]);
    });
  });

  it('after a pause has ended, is announced resumed before it is admitted', () => {
    const seen: string[] = [];
    let grantedAt: number | undefined;
    inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: roomy, key: 'k', scheduler: asyncScheduler, permitTimeoutMs: 0 });
      limiter.events$.subscribe((e) => seen.push(e.type));
      limiter.pause(1_000);
      asyncScheduler.schedule(() => {
        limiter.acquire(info, { granted: () => (grantedAt = now()), rejected: () => undefined });
      }, 1_500);
    });
    expect(grantedAt).toBe(1_500);
    expect(seen).toEqual(['paused', 'resumed', 'admitted']);
  });

  it('is shown in state$ to a subscriber, who gets the latest snapshot on subscribing', () => {
    inVirtualTime(() => {
      const limiter = createLimiter({ provider: roomy, key: 'k', scheduler: asyncScheduler });
      const snapshots: LimiterSnapshot[] = [];
      const sub = limiter.state$.subscribe((s) => snapshots.push(s));
      expect(snapshots.map((s) => s.inFlight)).toEqual([0]);
      let permit: Permit | undefined;
      limiter.acquire(info, { granted: (p) => (permit = p), rejected: () => undefined });
      expect(snapshots.at(-1)?.inFlight).toBe(1);
      const late: LimiterSnapshot[] = [];
      limiter.state$.subscribe((s) => late.push(s)).unsubscribe();
      expect(late.map((s) => s.inFlight)).toEqual([1]);
      permit?.release();
      expect(snapshots.at(-1)?.inFlight).toBe(0);
      expect(snapshots.at(-1)?.totals.sent).toBe(1);
      sub.unsubscribe();
    });
  });

  it('state$ and events$ subscribed after close complete at once, without a value', async () => {
    const limiter = createLimiter({ provider: roomy, key: 'closed-limiter' });
    await limiter.close();
    const got: Array<LimiterSnapshot | LimiterEvent> = [];
    let completed = 0;
    limiter.state$.subscribe({ next: (s) => got.push(s), complete: () => completed++ });
    limiter.events$.subscribe({ next: (e) => got.push(e), complete: () => completed++ });
    expect(got).toEqual([]);
    expect(completed).toBe(2);
  });

  it('state$ and events$ subscribed before close complete with it', async () => {
    const limiter = createLimiter({ provider: roomy, key: 'closing-limiter' });
    const states: LimiterSnapshot[] = [];
    let completed = 0;
    limiter.state$.subscribe({ next: (s) => states.push(s), complete: () => completed++ });
    limiter.events$.subscribe({ complete: () => completed++ });
    await limiter.close();
    expect(states).toHaveLength(1);
    expect(completed).toBe(2);
  });
});
