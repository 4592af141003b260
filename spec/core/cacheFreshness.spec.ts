import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, Observable } from 'rxjs';
import { createLimiter, providers, rateLimit, responseLike, type ResponseLike } from '../../lib/index.js';
import { serverFreshness } from '../../lib/core/sharing.js';
import { inVirtualTime } from '../helpers/virtual.js';

/**
 * The same GET at each of `at` (virtual ms), answered in 10 ms with `headers`, through a limiter
 * whose cache keeps responses for `ttlMs`. Returns when a request was sent (not served from the
 * cache).
 */
function sentAt(headers: Record<string, string>, at: readonly number[], ttlMs = 60_000): number[] {
  return inVirtualTime(({ now }) => {
    const limiter = createLimiter({ provider: providers.generic(), key: 'k', cache: { ttlMs } });
    const sent: number[] = [];
    const get$ = new Observable<ResponseLike>((s) => {
      sent.push(now());
      const t = asyncScheduler.schedule(() => {
        s.next(responseLike(200, headers, { ok: true }));
        s.complete();
      }, 10);
      return () => t.unsubscribe();
    });
    for (const t of at)
      asyncScheduler.schedule(() => void get$.pipe(rateLimit(limiter, { url: '/a', headers: {} })).subscribe(), t);
    return sent;
  });
}

const DATE = 'Sun, 06 Nov 1994 08:49:37 GMT';

describe("the cache keeps a response no longer than the server's freshness (RFC 9111)", () => {
  it('max-age shorter than ttlMs: served from memory for max-age, then sent again', () => {
    expect(sentAt({ 'Cache-Control': 'public, max-age=1' }, [0, 500, 1500])).toEqual([0, 1500]);
  });

  it('the Age a cache on the way counted is taken off max-age', () => {
    expect(sentAt({ 'Cache-Control': 'max-age=10', Age: '9' }, [0, 500, 1500])).toEqual([0, 1500]);
  });

  it('a lower s-maxage counts, as this cache serves every caller of the limiter', () => {
    expect(sentAt({ 'Cache-Control': 'max-age=60, s-maxage=1' }, [0, 500, 1500])).toEqual([0, 1500]);
  });

  it('without max-age, Expires less Date is the lifetime', () => {
    const headers = { Date: DATE, Expires: 'Sun, 06 Nov 1994 08:49:39 GMT' };
    expect(sentAt(headers, [0, 1000, 2500])).toEqual([0, 2500]);
  });

  it('max-age wins over Expires (an Expires in the past does not stop a max-age response)', () => {
    const headers = { 'Cache-Control': 'max-age=1', Date: DATE, Expires: 'Sat, 05 Nov 1994 08:49:37 GMT' };
    expect(sentAt(headers, [0, 500, 1500])).toEqual([0, 1500]);
  });

  it('must-revalidate with a fresh lifetime is kept for that lifetime', () => {
    expect(sentAt({ 'Cache-Control': 'max-age=1, must-revalidate' }, [0, 500, 1500])).toEqual([0, 1500]);
  });

  it('a huge max-age is just capped by ttlMs', () => {
    const huge = { 'Cache-Control': `max-age=${'9'.repeat(400)}` };
    expect(sentAt(huge, [0, 500, 1500], 1000)).toEqual([0, 1500]);
    expect(sentAt({ 'Cache-Control': 'max-age=99999999999999999999' }, [0, 500, 1500], 1000)).toEqual([0, 1500]);
  });

  it('without any freshness information, ttlMs applies as before', () => {
    expect(sentAt({}, [0, 500, 1500], 1000)).toEqual([0, 1500]);
    expect(sentAt({ 'Cache-Control': 'public' }, [0, 900], 1000)).toEqual([0]);
  });

  it.each([
    ['max-age=0', { 'Cache-Control': 'max-age=0' }],
    ['must-revalidate without a lifetime', { 'Cache-Control': 'must-revalidate' }],
    ['max-age=0, must-revalidate', { 'Cache-Control': 'max-age=0, must-revalidate' }],
    ['an Age past max-age', { 'Cache-Control': 'max-age=60', Age: '60' }],
    ['an Expires in the past', { Date: DATE, Expires: 'Sat, 05 Nov 1994 08:49:37 GMT' }],
    ['Expires equal to Date', { Date: DATE, Expires: DATE }],
    ['an invalid Expires (0)', { Expires: '0' }],
    ['an invalid Expires (a year only, which Date.parse takes)', { Expires: '3000' }],
    ['two Expires joined', { Date: DATE, Expires: `${DATE}, Mon, 07 Nov 1994 08:49:37 GMT` }],
    ['an Expires over 1,000 characters', { Expires: `Mon, 07 Nov 2094 08:49:37 GMT${' '.repeat(1000)}` }],
  ])('a response with %s is not cached', (_label, headers) => {
    expect(sentAt(headers, [0, 100])).toEqual([0, 100]);
  });
});

describe('freshness headers are read as hostile', () => {
  const fresh = (headers: Record<string, string>, now = 0) => serverFreshness(responseLike(200, headers), now);

  it('max-age takes digits only: a sign, a fraction, an exponent, hex or nothing is invalid, hence stale', () => {
    for (const v of ['-1', '+5', '1.5', '1e3', '0x10', '', ' 5 5', '５', 'Infinity'])
      expect([v, fresh({ 'Cache-Control': `max-age=${v}` })]).toEqual([v, 0]);
    expect(fresh({ 'Cache-Control': 'max-age' })).toBe(0);
    expect(fresh({ 'Cache-Control': 'max-age="5"' })).toBe(5000);
    expect(fresh({ 'Cache-Control': 'MAX-AGE = 5' })).toBe(5000);
  });

  it('of several max-age the lowest counts', () => {
    expect(fresh({ 'Cache-Control': 'max-age=60, max-age=5' })).toBe(5000);
  });

  it('an Age that is no delta-seconds makes the response stale', () => {
    for (const v of ['-5', '1.5', 'abc', '5, 5', '9'.repeat(1100)])
      expect(fresh({ 'Cache-Control': 'max-age=60', Age: v })).toBe(0);
    expect(fresh({ 'Cache-Control': 'max-age=60', Age: ' 5 ' })).toBe(55_000);
  });

  it('a directive inside a quoted string is not one, and a quoted string left open is not cached', () => {
    expect(fresh({ 'Cache-Control': 'max-age=60, ext="a, max-age=1"' })).toBe(60_000);
    expect(fresh({ 'Cache-Control': 'max-age=60, ext="a, no-store' })).toBe(0);
    expect(fresh({ 'Cache-Control': 'max-age=60, ext="a\\", no-store' })).toBe(0);
  });

  it('Expires less now when there is no valid Date', () => {
    const expires = Date.parse('Sun, 06 Nov 1994 08:49:47 GMT');
    expect(fresh({ Expires: 'Sun, 06 Nov 1994 08:49:47 GMT' }, expires - 4000)).toBe(4000);
    expect(fresh({ Expires: 'Sun, 06 Nov 1994 08:49:47 GMT', Date: 'soon' }, expires - 4000)).toBe(4000);
    expect(fresh({ Expires: 'Sun, 06 Nov 1994 08:49:47 GMT', Age: '1' }, expires - 4000)).toBe(3000);
  });

  it('no freshness information: Infinity (ttlMs decides)', () => {
    expect(fresh({})).toBe(Infinity);
    expect(fresh({ 'Cache-Control': 'public' })).toBe(Infinity);
    expect(fresh({ Age: '5' })).toBe(Infinity);
  });

  it('a Cache-Control over 1,024 characters is not cached, and a long one of commas and quotes is read in linear time', () => {
    expect(fresh({ 'Cache-Control': `max-age=60,${' '.repeat(1100)}` })).toBe(0);
    const hostile = `max-age=60, ${'a="\\",'.repeat(160)}"`;
    const started = performance.now();
    for (let i = 0; i < 1000; i++) fresh({ 'Cache-Control': hostile });
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
