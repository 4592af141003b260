import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, Observable } from 'rxjs';
import {
  createLimiter,
  providers,
  rateLimit,
  responseLike,
  type CacheOptions,
  type ResponseLike,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/** One answer of the endpoint: its body and headers. */
interface Answer {
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

/**
 * GETs one after the other (`[url, answer]`, 100 ms apart, each answered in 10 ms) through a
 * limiter with `cache`, in virtual time. Returns the URLs sent (those not served from the
 * cache) and, after each request, the bytes the cache counts it holds.
 */
function run(cache: CacheOptions, requests: ReadonlyArray<readonly [string, Answer]>) {
  return inVirtualTime(() => {
    const limiter = createLimiter({ provider: providers.generic(), key: 'k', cache });
    const sent: string[] = [];
    const held: number[] = [];
    requests.forEach(([url, { body, headers }], i) => {
      const get$ = new Observable<ResponseLike>((s) => {
        sent.push(url);
        const t = asyncScheduler.schedule(() => {
          s.next(responseLike(200, headers ?? {}, body));
          s.complete();
        }, 10);
        return () => t.unsubscribe();
      });
      asyncScheduler.schedule(() => get$.pipe(rateLimit(limiter, { url, headers: {} })).subscribe(), i * 100);
      asyncScheduler.schedule(() => held.push(limiter.sharing.bytes), i * 100 + 50);
    });
    return { sent, held, entries: () => limiter.sharing.size };
  });
}

const text = (chars: number): Answer => ({ body: 'x'.repeat(chars) });
/** What the cache counts for a string body of `chars` characters: 16 bytes, and 2 a character (UTF-16). */
const counted = (chars: number): number => 16 + 2 * chars;

describe('the GET cache is bounded in bytes (cache.maxBytes)', () => {
  it('a response larger than maxBytes is not kept; a smaller one is', () => {
    const out = run({ ttlMs: 60_000, maxBytes: counted(1000) }, [
      ['/big', text(1001)],
      ['/big', text(1001)], // sent again: it was never kept
      ['/small', text(1000)],
      ['/small', text(1000)], // from the cache
    ]);
    expect(out.sent).toEqual(['/big', '/big', '/small']);
    expect(out.held).toEqual([0, 0, counted(1000), counted(1000)]);
  });

  it('many medium responses evict the oldest, and what is kept never passes the bound', () => {
    // Each counts 616 bytes: three fit in 2000.
    const out = run({ ttlMs: 60_000, maxBytes: 2000 }, [
      ['/a', text(300)],
      ['/b', text(300)],
      ['/c', text(300)],
      ['/d', text(300)], // 2464 bytes: /a, the oldest, goes
      ['/b', text(300)], // from the cache
      ['/a', text(300)], // sent again; /b goes
      ['/b', text(300)], // sent again
    ]);
    const one = counted(300);
    expect(out.sent).toEqual(['/a', '/b', '/c', '/d', '/a', '/b']);
    expect(out.held).toEqual([one, 2 * one, 3 * one, 3 * one, 3 * one, 3 * one, 3 * one]);
    expect(Math.max(...out.held)).toBeLessThanOrEqual(2000);
  });

  it('with no maxBytes, 4 MiB: a 5 MB body is not kept, a 1 MB body is', () => {
    const out = run({ ttlMs: 60_000 }, [
      ['/5mb', text(5_000_000)],
      ['/5mb', text(5_000_000)],
      ['/1mb', text(1_000_000)],
      ['/1mb', text(1_000_000)],
    ]);
    expect(out.sent).toEqual(['/5mb', '/5mb', '/1mb']);
  });

  it('expired responses leave the count when they are dropped', () => {
    const out = run({ ttlMs: 150, maxBytes: 2000 }, [
      ['/a', text(400)],
      ['/b', text(500)],
      ['/a', text(400)], // expired at 160: sent again, kept again
    ]);
    expect(out.sent).toEqual(['/a', '/b', '/a']);
    expect(out.held).toEqual([counted(400), counted(400) + counted(500), counted(400) + counted(500)]);
    expect(out.entries()).toBe(2);
  });

  // maxBytes 1000: each answer fits or not by how its size is known.
  it.each<[string, boolean, Answer]>([
    ['a string of 492 characters (1000 bytes)', true, text(492)],
    ['a string of 493 characters (1002 bytes)', false, text(493)],
    ['an ArrayBuffer of 1001 bytes', false, { body: new ArrayBuffer(1001) }],
    ['a Uint8Array of 1001 bytes', false, { body: new Uint8Array(1001) }],
    ['a Uint8Array of 10 bytes', true, { body: new Uint8Array(10) }],
    ['a Blob of 1001 bytes', false, { body: new Blob(['x'.repeat(1001)]) }],
    ['a parsed body with Content-Length 900', true, { body: { a: 1 }, headers: { 'Content-Length': '900' } }],
    ['a parsed body with Content-Length 5000', false, { body: { a: 1 }, headers: { 'Content-Length': '5000' } }],
    ['a string that says less than it is', false, { body: 'x'.repeat(2000), headers: { 'Content-Length': '10' } }],
    ['a parsed body without Content-Length, measured', true, { body: { a: 1 } }],
    ['no body and no Content-Length', true, {}],
    [
      'Content-Length that is not a number (ignored)',
      true,
      { body: { a: 1 }, headers: { 'Content-Length': '10, 10' } },
    ],
    ['a negative Content-Length (ignored)', true, { body: { a: 1 }, headers: { 'Content-Length': '-1' } }],
    [
      'a Content-Length that is not a number, on a large body',
      false,
      { body: { a: 'x'.repeat(600) }, headers: { 'Content-Length': 'x' } },
    ],
  ])('%s: kept: %s', (_name, kept, answer) => {
    const out = run({ ttlMs: 60_000, maxBytes: 1000 }, [
      ['/x', answer],
      ['/x', answer],
    ]);
    expect(out.sent).toHaveLength(kept ? 1 : 2);
  });

  it('a parsed body without Content-Length counts what its copy holds, not a fixed guess', () => {
    // The object 16 + 48, its key `a` 16 + 2, the number 16.
    const out = run({ ttlMs: 60_000, maxBytes: 65_536 }, [['/x', { body: { a: 1 } }]]);
    expect(out.held).toEqual([98]);
  });

  it.each([
    [0, /option `cache.maxBytes` must be a number >= 1, got 0/],
    [1.5, /option `cache.maxBytes` must be a whole number, got 1\.5/],
    ['4MB', /option `cache.maxBytes` must be a finite number, got "4MB"/],
    [Infinity, /option `cache.maxBytes` must be .*got Infinity/],
  ])('rejects maxBytes %p, naming it', (maxBytes, message) => {
    expect(() =>
      createLimiter({ provider: providers.generic(), key: 'k', cache: { ttlMs: 1000, maxBytes: maxBytes as number } }),
    ).toThrow(message);
  });
});
