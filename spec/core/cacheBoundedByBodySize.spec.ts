import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, Observable } from 'rxjs';
import { createLimiter, providers, rateLimit, responseLike, type ResponseLike } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// A chunked answer has no Content-Length, and a parsed JSON body no size of its own: the cache
// once counted such a body 64 KiB, whatever it held, so 2 MiB bodies "filled" 4 MiB at 60 of
// them. Each now counts what the cache's copy of it holds, measured as it is copied.

/**
 * What the cache counts for a JSON-like body, by the rules `CacheOptions.maxBytes` documents:
 * 16 bytes a value, 48 more an object or array, 2 a character of strings and keys.
 */
function counted(body: unknown): number {
  if (typeof body === 'string') return 16 + 2 * body.length;
  if (typeof body !== 'object' || body === null) return 16;
  if (Array.isArray(body)) return body.reduce((n: number, v) => n + counted(v), 64);
  return Object.entries(body).reduce((n, [k, v]) => n + counted(k) + counted(v), 64);
}

/** The parsed JSON body of page `page` of a listing: 1,000 records. */
function page(page: number) {
  return { items: Array.from({ length: 1000 }, (_, i) => ({ id: i, name: `item ${page}-${i}` })) };
}

/**
 * GETs one after the other (`[url, body]`, 100 ms apart, each answered in 10 ms without
 * Content-Length, as a chunked answer is) through a limiter with a cache of `maxBytes`, in
 * virtual time. Returns the URLs sent (those not served from the cache), after each request the
 * bytes the cache counts and the entries it keeps, and the errors the requests ended with.
 */
function run(maxBytes: number, requests: ReadonlyArray<readonly [string, unknown]>) {
  return inVirtualTime(() => {
    const limiter = createLimiter({ provider: providers.generic(), key: 'k', cache: { ttlMs: 60_000, maxBytes } });
    const sent: string[] = [];
    const held: Array<[bytes: number, entries: number]> = [];
    const errors: unknown[] = [];
    requests.forEach(([url, body], i) => {
      const get$ = new Observable<ResponseLike>((s) => {
        sent.push(url);
        const t = asyncScheduler.schedule(() => {
          s.next(responseLike(200, { 'content-type': 'application/json' }, body));
          s.complete();
        }, 10);
        return () => t.unsubscribe();
      });
      asyncScheduler.schedule(
        () => get$.pipe(rateLimit(limiter, { url, headers: {} })).subscribe({ error: (e: unknown) => errors.push(e) }),
        i * 100,
      );
      asyncScheduler.schedule(() => held.push([limiter.sharing.bytes, limiter.sharing.size]), i * 100 + 50);
    });
    return { sent, held, errors };
  });
}

describe('the GET cache counts the body it holds, so maxBytes bounds it (chunked answers)', () => {
  it('parsed bodies without Content-Length count what they hold: the oldest go, and the count stays within maxBytes', () => {
    const one = counted(page(0)); // about 160 KB, over twice the 64 KiB once counted
    const maxBytes = 200_000; // one page fits, two do not; three fitted at 64 KiB each
    expect(one).toBeGreaterThan(2 * 65_536);
    expect(one).toBeLessThanOrEqual(maxBytes);
    const out = run(maxBytes, [
      ['/p0', page(0)],
      ['/p1', page(1)], // /p0 goes
      ['/p2', page(2)], // /p1 goes
      ['/p2', page(2)], // from the cache
      ['/p0', page(0)], // sent again: it went
    ]);
    expect(out.sent).toEqual(['/p0', '/p1', '/p2', '/p0']);
    expect(out.errors).toEqual([]);
    // Every page the same size but its digits: each count is the page's own, one entry at a time.
    expect(out.held).toEqual([
      [counted(page(0)), 1],
      [counted(page(1)), 1],
      [counted(page(2)), 1],
      [counted(page(2)), 1],
      [counted(page(0)), 1],
    ]);
    for (const [bytes] of out.held) expect(bytes).toBeLessThanOrEqual(maxBytes);
  });

  it('a body far beyond maxBytes is not cached, and its walk stops near maxBytes', () => {
    // A million numbers (16 MB counted) against 100 KB: old accounting kept it as 64 KiB.
    let reads = 0;
    const numbers = new Array<number>(1_000_000).fill(7);
    const counting = new Proxy(numbers, {
      get(target, key, receiver) {
        if (key !== 'length') reads++;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    const out = run(100_000, [
      ['/huge', { items: counting }],
      ['/huge', { items: counting }], // sent again: never kept
    ]);
    expect(out.sent).toEqual(['/huge', '/huge']);
    expect(out.held).toEqual([
      [0, 0],
      [0, 0],
    ]);
    // Each of the two walks takes at most 100,000 / 16 values before it gives up (the one
    // subscriber gets the body itself: no copy of it is made for it).
    expect(reads).toBeLessThanOrEqual((2 * 100_000) / 16);
    expect(out.errors).toEqual([]);
  });

  it('a body whose parts are shared 2^64 ways (a transform made it) is refused within maxBytes, not walked forever', () => {
    // Each level holds the one below twice: 2^64 paths through 65 objects. A getter counts the
    // walk's steps and, far past what maxBytes allows, throws: the walk never got there.
    let reads = 0;
    let level: object = { leaf: 1 };
    for (let i = 0; i < 64; i++) {
      const below = level;
      const read = () => {
        if (++reads > 100_000) throw new Error('the walk did not stop');
        return below;
      };
      level = {};
      Object.defineProperty(level, 'a', { get: read, enumerable: true });
      Object.defineProperty(level, 'b', { get: read, enumerable: true });
    }
    const out = run(100_000, [['/dag', level]]);
    expect(out.sent).toEqual(['/dag']);
    expect(out.held).toEqual([[0, 0]]);
    expect(out.errors).toEqual([]);
    // Each object visited takes 64 + 2 × 18 bytes of the 100,000.
    expect(reads).toBeLessThanOrEqual(100_000 / 100);
  });
});
