/**
 * Requests that cost more than one unit: admission takes `cost` units of every bucket, a cost
 * no window can hold fails at once, a bad cost is a TypeError naming the field, a provider may
 * compute the cost, a permit may reconcile it after the response, and a costly request waiting
 * for room is not overtaken for ever by cheaper ones behind it.
 */
import { describe, expect, it } from '@jest/globals';
import { asyncScheduler } from 'rxjs';
import {
  createLimiter,
  defineProvider,
  isCostExceedsLimitError,
  responseLike,
  type Limiter,
  type Permit,
  type RateLimitError,
  type RequestInfo,
  type ResponseReading,
  rollingWindows,
} from '../../lib/index.js';
import { withRetryCost } from '../../lib/core/resend.js';
import { inVirtualTime } from '../helpers/virtual.js';

const quiet = { outcome: 'ok' as const, buckets: [] };
const tenPerSecond = defineProvider({
  name: 'ten-per-second',
  buckets: [{ name: 'units', limit: 10, windowMs: 1000 }],
  read: () => quiet,
});
const minuteAndHour = defineProvider({
  name: 'minute-and-hour',
  buckets: [
    { name: 'minute', limit: 10, windowMs: 60_000 },
    { name: 'hour', limit: 100, windowMs: 3_600_000 },
  ],
  read: () => quiet,
});

/** Acquires, recording when each request was granted or how it failed. */
function recorder(limiter: Limiter, now: () => number, releaseAfterMs?: number) {
  const granted: Array<{ tag: string; at: number; permit: Permit }> = [];
  const rejected: Array<{ tag: string; error: RateLimitError }> = [];
  const ask = (tag: string, info: RequestInfo) =>
    limiter.acquire(info, {
      granted: (permit) => {
        granted.push({ tag, at: now(), permit });
        if (releaseAfterMs !== undefined) asyncScheduler.schedule(() => permit.release(), releaseAfterMs);
      },
      rejected: (error) => rejected.push({ tag, error }),
    });
  return { granted, rejected, ask };
}

/** A key per limiter: limiters of one provider and key in a process share their buckets. */
let keys = 0;
const key = () => `cost-${++keys}`;

const remaining = (limiter: Limiter, name: string) => limiter.snapshot.buckets.find((b) => b.name === name)?.remaining;
const inFlight = (limiter: Limiter, name: string) => limiter.snapshot.buckets.find((b) => b.name === name)?.inFlight;

describe('request cost', () => {
  it('a request of cost 5 takes 5 units: two fill a window of 10, the third waits for the next', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: tenPerSecond, key: key(), coldStartConcurrency: 10 });
      const r = recorder(limiter, now);
      for (const tag of ['a', 'b', 'c']) r.ask(tag, { url: `/${tag}`, cost: 5 });
      const left = remaining(limiter, 'units');
      const held = inFlight(limiter, 'units');
      for (const g of [...r.granted]) g.permit.release();
      asyncScheduler.schedule(() => undefined, 2000);
      return { r, left, held };
    });
    expect(out.left).toBe(0);
    expect(out.held).toBe(10);
    expect(out.r.granted.map((g) => [g.tag, g.at])).toEqual([
      ['a', 0],
      ['b', 0],
      // The window opened by the first send ends at 1000, plus the reset guard.
      ['c', 1050],
    ]);
  });

  it('a per-bucket cost takes that many of the named bucket and one of the others', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: minuteAndHour, key: key() });
      const r = recorder(limiter, now);
      r.ask('a', { cost: { minute: 4 } });
      return { minute: remaining(limiter, 'minute'), hour: remaining(limiter, 'hour'), granted: r.granted.length };
    });
    expect(out).toEqual({ minute: 6, hour: 99, granted: 1 });
  });

  it('a release gives back every unit the request held', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: tenPerSecond, key: key() });
      const r = recorder(limiter, now);
      r.ask('a', { cost: 7 });
      const before = inFlight(limiter, 'units');
      r.granted[0]?.permit.release();
      return { before, after: inFlight(limiter, 'units') };
    });
    expect(out).toEqual({ before: 7, after: 0 });
  });

  it('a cost above a bucket’s limit fails at once with CostExceedsLimitError naming bucket, cost and limit', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: minuteAndHour, key: key() });
      const r = recorder(limiter, now);
      r.ask('big', { cost: { minute: 11 } });
      return { r, queued: limiter.snapshot.queued, sent: limiter.snapshot.totals.sent };
    });
    expect(out.r.granted).toEqual([]);
    expect(out.queued).toBe(0);
    expect(out.sent).toBe(0);
    const error = out.r.rejected[0]?.error;
    expect(isCostExceedsLimitError(error)).toBe(true);
    expect(error).toMatchObject({ name: 'CostExceedsLimitError', bucket: 'minute', cost: 11, limit: 10 });
    expect(error?.message).toContain('"minute"');
    expect(error?.message).toContain('11');
  });

  it('a waiting request whose bucket learns a limit below its cost fails then, not at the reset', () => {
    const learnt = defineProvider({
      name: 'learnt',
      buckets: [{ name: 'units', limit: 10, windowMs: 1000 }],
      read: () => ({ outcome: 'ok', buckets: [{ name: 'units', limit: 4, remaining: 0, reset: { inMs: 900 } }] }),
    });
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: learnt, key: key() });
      const r = recorder(limiter, now);
      r.ask('first', { cost: 10 });
      r.ask('second', { cost: 6 });
      asyncScheduler.schedule(() => {
        r.granted[0]?.permit.observe(responseLike(200, {}));
        r.granted[0]?.permit.release();
      }, 100);
      return r;
    });
    expect(out.granted.map((g) => g.tag)).toEqual(['first']);
    expect(out.rejected.map((x) => [x.tag, x.error.name])).toEqual([['second', 'CostExceedsLimitError']]);
  });

  it('a quota bucket with fewer units left than the cost fails the request before it is queued', () => {
    const daily = defineProvider({
      name: 'daily-cost',
      buckets: [{ name: 'day', limit: 10, windowMs: 86_400_000, quota: true }],
      read: () => quiet,
    });
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: daily, key: key(), coldStartConcurrency: 10, maxWaitMs: 60_000 });
      const r = recorder(limiter, now);
      r.ask('first', { cost: 7 });
      return {
        small: limiter.checkQuota({ cost: 3 }),
        big: limiter.checkQuota({ cost: 4 }),
      };
    });
    // 3 left: a request of 3 may go on; one of 4 would wait a day, past maxWaitMs.
    expect(out.small).toBeUndefined();
    expect(out.big).toMatchObject({ name: 'QuotaExhaustedError', bucket: 'day' });
  });

  it.each([
    ['NaN', Number.NaN, '`cost`'],
    ['0', 0, '`cost`'],
    ['a negative number', -1, '`cost`'],
    ['Infinity', Infinity, '`cost`'],
    ['past the cap', 2e6, '`cost`'],
    ['a string', '5', '`cost`'],
    ['a bad per-bucket value', { minute: 0 }, '`cost["minute"]`'],
  ])('a cost that is %s is a TypeError naming the field', (_what, cost, field) => {
    const limiter = createLimiter({ provider: minuteAndHour, key: key() });
    const handlers = { granted: () => undefined, rejected: () => undefined };
    expect(() => limiter.acquire({ cost } as unknown as RequestInfo, handlers)).toThrow(TypeError);
    expect(() => limiter.acquire({ cost } as unknown as RequestInfo, handlers)).toThrow(field);
    expect(limiter.snapshot.queued).toBe(0);
    void limiter.close();
  });

  it('a provider computes the cost per bucket; the request’s own cost wins', () => {
    const writes = defineProvider({
      name: 'writes',
      buckets: [
        { name: 'points', limit: 100, windowMs: 60_000 },
        { name: 'hour', limit: 1000, windowMs: 3_600_000 },
      ],
      read: () => quiet,
      cost: (request, bucket) => (bucket.name === 'points' && request.method === 'POST' ? 5 : undefined),
    });
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: writes, key: key(), coldStartConcurrency: 10 });
      const r = recorder(limiter, now);
      r.ask('get', { method: 'GET' });
      r.ask('post', { method: 'POST' });
      r.ask('own', { method: 'POST', cost: 2 });
      return { points: remaining(limiter, 'points'), hour: remaining(limiter, 'hour') };
    });
    // 1 + 5 + 2 points; the hour bucket: 1 + 1 + 2 (a number applies to every bucket).
    expect(out).toEqual({ points: 92, hour: 996 });
  });

  it('permit.reconcile turns an estimate into the actual cost: the difference comes back at once', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: tenPerSecond, key: key(), coldStartConcurrency: 10 });
      const r = recorder(limiter, now);
      r.ask('estimated', { cost: 8 });
      r.ask('next', { cost: 5 });
      const waiting = r.granted.length;
      r.granted[0]?.permit.reconcile(3);
      return { waiting, granted: r.granted.map((g) => g.tag), held: inFlight(limiter, 'units') };
    });
    expect(out.waiting).toBe(1);
    // 8 estimated, 3 actual: 7 left, so the second (5) goes at once.
    expect(out.granted).toEqual(['estimated', 'next']);
    expect(out.held).toBe(8);
  });

  it('a provider that reads the actual cost from the response reconciles the permit', () => {
    const graphql = defineProvider({
      name: 'graphql',
      buckets: [{ name: 'points', limit: 100, windowMs: 60_000 }],
      read: (res) => {
        const actual = Number(res.header('x-actual-cost'));
        return { outcome: 'ok', buckets: [], ...(actual > 0 ? { cost: actual } : {}) };
      },
    });
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: graphql, key: key() });
      const r = recorder(limiter, now);
      r.ask('query', { method: 'POST', cost: 50 });
      const before = remaining(limiter, 'points');
      r.granted[0]?.permit.observe(responseLike(200, { 'x-actual-cost': '12' }));
      const after = remaining(limiter, 'points');
      r.granted[0]?.permit.release();
      return { before, after, held: inFlight(limiter, 'units') ?? inFlight(limiter, 'points') };
    });
    expect(out).toEqual({ before: 50, after: 88, held: 0 });
  });

  it('a costly request at the head is not overtaken for ever by cheap ones arriving behind it (sliding window)', () => {
    const sliding = defineProvider({
      name: 'sliding',
      buckets: [{ name: 'units', limit: 10, windowMs: 1000, rolling: true }],
      bucketKinds: [rollingWindows],
      read: () => quiet,
    });
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: sliding, key: key(), coldStartConcurrency: 10, maxWaitMs: 60_000 });
      const r = recorder(limiter, now, 10);
      // A cheap request every 200 ms, each answered 10 ms after it goes: half the budget, so
      // each fits when it comes, and the sliding window never has the 8 units free at once.
      for (let t = 0; t < 10_000; t += 200) asyncScheduler.schedule(() => r.ask(`cheap@${t}`, { url: '/cheap' }), t);
      asyncScheduler.schedule(() => r.ask('costly', { url: '/costly', cost: 8 }), 1550);
      return r;
    });
    const costly = out.granted.find((g) => g.tag === 'costly');
    expect(costly).toBeDefined();
    // The cheap ones behind it wait: within about one window it has its 8 units.
    expect((costly?.at ?? Infinity) - 1550).toBeLessThanOrEqual(1200);
    expect(out.rejected).toEqual([]);
  });
});

describe('the cost a rate limit tells for sending the request again (retryCost)', () => {
  const limited = (retryCost: Record<string, number>): ResponseReading => ({
    outcome: 'limited',
    buckets: [],
    retryCost,
  });
  const buckets = () => [{ name: 'graphql' }, { name: 'extra' }];

  it('replaces the cost of the buckets it names; the others keep theirs', () => {
    expect(withRetryCost({ method: 'POST' }, limited({ graphql: 250 }), buckets).cost).toEqual({ graphql: 250 });
    expect(withRetryCost({ cost: { graphql: 50, extra: 3 } }, limited({ graphql: 250 }), buckets).cost).toEqual({
      graphql: 250,
      extra: 3,
    });
    // One number for every bucket: spelled out per bucket, the told one replaced.
    expect(withRetryCost({ cost: 7 }, limited({ graphql: 250 }), buckets).cost).toEqual({ graphql: 250, extra: 7 });
  });

  it('keeps everything else of the request, and the request itself when nothing usable is told', () => {
    const info: RequestInfo = { method: 'POST', url: '/graphql.json', priority: 2, cost: 50 };
    expect(withRetryCost(info, limited({ graphql: 250 }), buckets)).toMatchObject({
      method: 'POST',
      url: '/graphql.json',
      priority: 2,
    });
    expect(withRetryCost(info, undefined, buckets)).toBe(info);
    expect(withRetryCost(info, { outcome: 'ok', buckets: [], retryCost: { graphql: 250 } }, buckets)).toBe(info);
    // Not costs: 0, negative, NaN, past MAX_COST, not numbers.
    const junk = { a: 0, b: -1, c: Number.NaN, d: 2e6, e: '5' } as unknown as Record<string, number>;
    expect(withRetryCost(info, limited(junk), buckets)).toBe(info);
  });

  it('takes at most 16 bucket names from a reading, and survives a profile whose buckets() throws', () => {
    const many = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`b${i}`, 1]));
    expect(Object.keys(withRetryCost({}, limited(many), buckets).cost as object)).toHaveLength(16);
    const throwing = () => {
      throw new Error('profile bug');
    };
    expect(withRetryCost({ cost: 3 }, limited({ graphql: 9 }), throwing).cost).toEqual({ graphql: 9 });
  });
});
