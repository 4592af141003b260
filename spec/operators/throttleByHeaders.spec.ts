import { describe, expect, it } from '@jest/globals';
import { TestScheduler } from 'rxjs/testing';
import { createLimiter, providers, responseLike, throttleByHeaders } from '../../lib/index.js';

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
const res = (remaining: number, resetSeconds: number) =>
  responseLike(200, {
    'X-RateLimit-Limit': '2',
    'X-RateLimit-Remaining': String(remaining),
    'X-RateLimit-Reset': String(resetSeconds),
  });

describe('throttleByHeaders', () => {
  it('delays the subscription until the bucket has room, and passes values through unchanged', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const limiter = createLimiter({
        provider: providers.generic({ resetUnit: 'seconds-left' }),
        key: 'k',
        resetGuardMs: 100,
      });
      const [ra, rb, rc] = [res(1, 1), res(0, 1), res(1, 1)];
      const a = cold('--(a|)', { a: ra });
      const b = cold('--(b|)', { b: rb });
      const c = cold('--(c|)', { c: rc });
      expectObservable(a.pipe(throttleByHeaders(limiter))).toBe('--(a|)', { a: ra });
      // b waits for a's answer (cold start: one request until the headers speak).
      expectObservable(b.pipe(throttleByHeaders(limiter))).toBe('----(b|)', { b: rb });
      // c waits for the window to reset: 1 s after a's answer at 2 ms (the first reading of the
      // window is kept), plus the 100 ms guard.
      expectObservable(c.pipe(throttleByHeaders(limiter))).toBe('1104ms (c|)', { c: rc });
      expectSubscriptions(a.subscriptions).toBe('^-!');
      expectSubscriptions(b.subscriptions).toBe('--^-!');
      expectSubscriptions(c.subscriptions).toBe('1102ms ^-!');
    });
  });

  it('unsubscribing while queued never subscribes to the request', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const limiter = createLimiter({ provider: providers.generic(), key: 'k' });
      const first = cold('-----(a|)', { a: responseLike(200, {}) });
      const second = cold('-(b|)', { b: responseLike(200, {}) });
      expectObservable(first.pipe(throttleByHeaders(limiter))).toBe('-----(a|)', { a: expect.anything() });
      expectObservable(second.pipe(throttleByHeaders(limiter)), '^--!').toBe('');
      expectSubscriptions(second.subscriptions).toBe([]);
    });
  });

  it('unsubscribing in flight unsubscribes the request and frees its place', () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const limiter = createLimiter({ provider: providers.generic(), key: 'k', maxConcurrent: 1 });
      const slow = cold('----------(a|)', { a: responseLike(200, {}) });
      const next = cold('-(b|)', { b: responseLike(200, {}) });
      expectObservable(slow.pipe(throttleByHeaders(limiter)), '^--!').toBe('');
      expectObservable(next.pipe(throttleByHeaders(limiter))).toBe('----(b|)', { b: expect.anything() });
      expectSubscriptions(slow.subscriptions).toBe('^--!');
      expectSubscriptions(next.subscriptions).toBe('---^!');
    });
  });
});
