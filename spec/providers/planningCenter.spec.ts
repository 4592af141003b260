import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, map, timer } from 'rxjs';
import {
  createLimiter,
  responseLike,
  throttleByHeaders,
  type LimiterSnapshot,
  type ResponseLike,
} from '../../lib/index.js';
import { isHighOffset, planningCenter } from '../../lib/providers/planningCenter.js';
import { inVirtualTime } from '../helpers/virtual.js';

// Verbatim from seeds/planning-center-rate-limits.txt (sample 429 headers and body).
const SAMPLE_429 = {
  'content-type': 'application/json',
  'content-length': '122',
  'x-pco-api-request-rate-count': '118',
  'x-pco-api-request-rate-limit': '100',
  'x-pco-api-request-rate-period': '20 seconds',
  'retry-after': '19',
};
const SAMPLE_BODY = `{
"errors": [
{
"code": "429",
"detail": "Rate limit exceeded: 118 of 100 requests per 20 seconds"
}
]
}`;
const ME = { method: 'GET', url: 'https://api.planningcenteronline.com/people/v2/me' };
const HIGH = { method: 'GET', url: '/people/v2/people?per_page=100&offset=30100' };

const pco = (status: number, headers: Record<string, string>, body?: unknown, info = ME) =>
  planningCenter().read(responseLike(status, headers, body), info);
const counts = (count: string, limit = '100', period = '20 seconds') => ({
  'X-PCO-API-Request-Rate-Limit': limit,
  'X-PCO-API-Request-Rate-Period': period,
  'X-PCO-API-Request-Rate-Count': count,
});

describe('providers.planningCenter: reading responses', () => {
  it('reads the documented 429: a count above the limit leaves 0, Retry-After 19 s, every stream pauses', () => {
    for (const body of [SAMPLE_BODY, JSON.parse(SAMPLE_BODY) as unknown]) {
      const r = pco(429, SAMPLE_429, body);
      expect(r).toEqual({
        outcome: 'limited',
        buckets: [{ name: 'default', limit: 100, remaining: 0, windowMs: 20_000 }],
        retryAfter: { delayMs: 19_000 },
        retrySource: 'retry-after',
      });
      expect(r).not.toHaveProperty('limitedBy');
    }
  });

  it('takes limit, count and period from the body when the headers lack them', () => {
    expect(pco(429, { 'retry-after': '19' }, SAMPLE_BODY)).toEqual({
      outcome: 'limited',
      buckets: [{ name: 'default', limit: 100, remaining: 0, windowMs: 20_000 }],
      retryAfter: { delayMs: 19_000 },
      retrySource: 'retry-after',
    });
    expect(pco(429, {}, JSON.parse(SAMPLE_BODY) as unknown)).toEqual({
      outcome: 'limited',
      buckets: [{ name: 'default', limit: 100, remaining: 0, windowMs: 20_000 }],
    });
  });

  it.each([
    [
      'count 1: the window started with this request',
      counts('1'),
      { limit: 100, remaining: 99, windowMs: 20_000, reset: { inMs: 20_000 } },
    ],
    [
      'count 37: no reset (the limiter keeps its own window)',
      counts('37'),
      { limit: 100, remaining: 63, windowMs: 20_000 },
    ],
    ['count equal to the limit', counts('100'), { limit: 100, remaining: 0, windowMs: 20_000 }],
    [
      'a changed limit and period',
      counts('1', '50', '1 minute'),
      { limit: 50, remaining: 49, windowMs: 60_000, reset: { inMs: 60_000 } },
    ],
    ['a count without limit', { 'X-PCO-API-Request-Rate-Count': '5' }, undefined],
    ['a limit without count', { 'X-PCO-API-Request-Rate-Limit': '100' }, { limit: 100 }],
  ])('reads %s', (_, headers, expected) => {
    expect(pco(200, headers)).toEqual({ outcome: 'ok', buckets: expected ? [{ name: 'default', ...expected }] : [] });
  });

  it('gives a high-offset request its reading in the high-offset bucket', () => {
    expect(pco(200, counts('1', '75'), undefined, HIGH).buckets).toEqual([
      { name: 'high-offset', limit: 75, remaining: 74, windowMs: 20_000, reset: { inMs: 20_000 } },
    ]);
  });

  it('says nothing for garbage and never throws on any body', () => {
    const hostile = new Proxy(
      {},
      {
        get: () => {
          throw new Error('boom');
        },
      },
    );
    expect(pco(200, counts('many', 'lots', 'a while'))).toEqual({ outcome: 'ok', buckets: [] });
    for (const body of [
      '{"errors": 5}',
      '{"errors": [{"detail": 7}, null]}',
      { errors: [{ detail: 'Rate limit exceeded' }] },
      hostile,
      '{oops',
      'x'.repeat(100_000),
      undefined,
    ]) {
      expect(pco(429, { 'retry-after': 'soon' }, body)).toEqual({ outcome: 'limited', buckets: [] });
    }
  });
});

describe('providers.planningCenter: buckets and options', () => {
  const DEFAULT = { name: 'default', limit: 100, windowMs: 20_000 };
  const HIGH_OFFSET = { name: 'high-offset', limit: 75, windowMs: 20_000 };

  it.each([
    ['no URL', {}, [DEFAULT]],
    ['a plain GET', ME, [DEFAULT]],
    ['offset 30,000 (not above)', { url: '/people/v2/people?offset=30000' }, [DEFAULT]],
    ['offset 30,001', { url: '/people/v2/people?offset=30001' }, [DEFAULT, HIGH_OFFSET]],
    [
      'a high offset among other params, absolute URL',
      { url: 'https://api.planningcenteronline.com/people/v2/people?per_page=100&offset=45000&order=name' },
      [DEFAULT, HIGH_OFFSET],
    ],
    ['an offset only in the fragment', { url: '/people/v2/people#offset=45000' }, [DEFAULT]],
    ['a non-numeric offset', { url: '/people/v2/people?offset=lots' }, [DEFAULT]],
    ['another param named like offset', { url: '/people/v2/people?page_offset=45000' }, [DEFAULT]],
  ])('%s', (_, info, expected) => {
    expect(planningCenter().buckets(info)).toEqual(expected);
  });

  it('isHighOffset reads the query', () => {
    expect(isHighOffset(HIGH.url)).toBe(true);
    expect(isHighOffset(undefined)).toBe(false);
    expect(isHighOffset('/x?offset=%ZZ')).toBe(false);
  });

  it('takes hints by bucket name and extra buckets', () => {
    const p = planningCenter({
      hints: { 'high-offset': { limit: 50 }, default: { windowMs: 10_000 } },
      extraBuckets: [{ name: 'mine', limit: 1 }],
    });
    expect(p.name).toBe('planning-center');
    expect(p.buckets(HIGH)).toEqual([
      { ...DEFAULT, windowMs: 10_000 },
      { ...HIGH_OFFSET, limit: 50 },
      { name: 'mine', limit: 1 },
    ]);
  });

  it.each([
    [{ hints: { hourly: {} } }, /option `hints\.hourly` must be keyed by a bucket name \("default", "high-offset"\)/],
    [{ hints: { default: { limit: 1.5 } } }, /option `hints\.default\.limit`/],
    [{ extraBuckets: [{ name: 'default' }] }, /option `extraBuckets\.0\.name`/],
    [{ extraBuckets: [{ name: 'x', pacing: 'fast' }] }, /option `extraBuckets\.0\.pacing`/],
    [{ limit: 5 }, /unknown option `limit`/],
  ])('rejects bad options with a TypeError naming them (%j)', (options, message) => {
    expect(() => planningCenter(options as never)).toThrow(TypeError);
    expect(() => planningCenter(options as never)).toThrow(message);
  });
});

describe('providers.planningCenter with a limiter (virtual time)', () => {
  it('starts the window at a count of 1, and a 429 pauses every stream for Retry-After', () => {
    const { first, limited, sent } = inVirtualTime(() => {
      const limiter = createLimiter({ provider: planningCenter(), key: 'pco-token' });
      const sent: Array<[string, number]> = [];
      const call = (res: ResponseLike, info: { url: string }) =>
        defer(() => {
          sent.push([info.url, asyncScheduler.now()]);
          return timer(10).pipe(map(() => res));
        }).pipe(throttleByHeaders(limiter, info));
      const out: { first?: LimiterSnapshot; limited?: LimiterSnapshot } = {};
      call(responseLike(200, counts('1')), ME).subscribe();
      asyncScheduler.schedule(() => {
        out.first = limiter.snapshot;
        call(responseLike(429, SAMPLE_429, SAMPLE_BODY), HIGH).subscribe();
      }, 100);
      asyncScheduler.schedule(() => {
        out.limited = limiter.snapshot;
        call(responseLike(200, counts('1')), ME).subscribe();
      }, 200);
      return {
        get first() {
          return out.first;
        },
        get limited() {
          return out.limited;
        },
        sent,
      };
    });
    // The first response (at 10 ms) says count 1: the window ends 20 s after it.
    expect(first?.buckets).toEqual([
      expect.objectContaining({
        name: 'default',
        limit: 100,
        remaining: 99,
        resetAt: 20_010,
        windowMs: 20_000,
        source: 'headers',
      }),
    ]);
    // The 429 answered at 110 ms: nothing goes for 19 s, not even a request on another bucket.
    expect(limited?.pausedUntil).toBe(110 + 19_000);
    expect(limited?.pauseReason).toBe('retry-after');
    expect(limited?.buckets.find((b) => b.name === 'high-offset')).toMatchObject({ limit: 100, remaining: 0 });
    expect(sent.map(([, t]) => t)).toEqual([0, 100, 110 + 19_000]);
  });
});
