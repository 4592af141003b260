import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, from, map, mergeMap, timer } from 'rxjs';
import { createLimiter, providers, rateLimit, responseLike, violatedPolicies } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const QUOTA_EXCEEDED = 'https://iana.org/assignments/http-problem-types#quota-exceeded';

describe('violatedPolicies: the policies an IETF problem body says were exceeded', () => {
  it('reads the names of a quota-exceeded body, parsed or as JSON text', () => {
    const body = { type: QUOTA_EXCEEDED, title: 'quota exceeded', 'violated-policies': ['daily', 'bandwidth'] };
    expect(violatedPolicies(body)).toEqual(['daily', 'bandwidth']);
    expect(violatedPolicies(JSON.stringify(body))).toEqual(['daily', 'bandwidth']);
    expect(violatedPolicies({ 'violated-policies': ['hourly'] })).toEqual(['hourly']);
  });

  it('says nothing for a body without the member, or one that is not an array of names', () => {
    for (const body of [
      undefined,
      null,
      '',
      'Too Many Requests',
      '{not json',
      42,
      { type: QUOTA_EXCEEDED },
      { 'violated-policies': 'daily' },
      { 'violated-policies': {} },
      { 'violated-policies': [] },
      { 'violated-policies': [1, null, {}, ['daily']] },
      ['daily'],
    ])
      expect(violatedPolicies(body)).toBeUndefined();
  });

  it('hostile entries are skipped: too long, control characters, non-ASCII; duplicates read once; at most 16', () => {
    expect(violatedPolicies({ 'violated-policies': ['x'.repeat(65), 'a\u0000b', 'dé', '', 'ok', 'ok'] })).toEqual([
      'ok',
    ]);
    const many = Array.from({ length: 10_000 }, (_, i) => `p${i}`);
    expect(violatedPolicies({ 'violated-policies': many })).toEqual(many.slice(0, 16));
  });

  it('a body over 64 KB is not parsed, and a throwing getter reads as nothing', () => {
    const huge = JSON.stringify({ 'violated-policies': ['daily'], pad: 'x'.repeat(70_000) });
    expect(violatedPolicies(huge)).toBeUndefined();
    const trap = Object.defineProperty({}, 'violated-policies', {
      get() {
        throw new Error('boom');
      },
    });
    expect(violatedPolicies(trap)).toBeUndefined();
  });
});

describe('generic() and ietf() on a 429 with violated-policies', () => {
  const body = { type: QUOTA_EXCEEDED, 'violated-policies': ['daily', 'default'] };

  it('hold only the buckets of the policies named; default is the profile’s default bucket', () => {
    for (const p of [providers.ietf(), providers.generic()])
      expect(p.read(responseLike(429, { 'Retry-After': '5' }, body), {})).toEqual({
        outcome: 'limited',
        buckets: [],
        retryAfter: { delayMs: 5000 },
        retrySource: 'retry-after',
        limitedBy: ['daily', 'default'],
      });
  });

  it('with resourceHeader, the default policy is the resource’s bucket', () => {
    const p = providers.generic({ resourceHeader: 'x-ratelimit-resource' });
    const r = p.read(responseLike(429, { 'x-ratelimit-resource': 'search', RateLimit: '"default";r=0;t=30' }, body), {
      url: '/search',
    });
    expect(r.limitedBy).toEqual(['daily', 'search']);
  });

  it('is not read on an answer that is not rate limited', () => {
    expect(providers.ietf().read(responseLike(200, {}, body), {}).limitedBy).toBeUndefined();
  });
});

describe('a 429 naming its violated policy holds that bucket only', () => {
  it('a refused search waits for the search window; core requests go on', () => {
    const { sent, limiter, refusals } = inVirtualTime(({ now }) => {
      let searches = 0;
      const refusals: number[] = [];
      // An API that names each answer's resource and reports its IETF fields; its search
      // capacity drops to 2 without warning, and the third search is refused with a problem body.
      const request = (path: string) =>
        defer(() => {
          const search = path.startsWith('/search');
          const n = search ? ++searches : 0;
          const refused = search && n === 3 && now() < 30_000;
          if (refused) refusals.push(now());
          const headers = {
            'x-ratelimit-resource': search ? 'search' : 'core',
            'RateLimit-Policy': search ? '"default";q=10;w=30' : '"default";q=5000;w=3600',
            RateLimit: search
              ? `"default";r=${refused ? 0 : 10 - n};t=${Math.ceil((30_000 - now()) / 1000)}`
              : '"default";r=4000;t=3000',
          };
          return timer(20).pipe(
            map(() =>
              responseLike(
                refused ? 429 : 200,
                headers,
                refused ? { type: QUOTA_EXCEEDED, 'violated-policies': ['default'] } : undefined,
              ),
            ),
          );
        });
      const limiter = createLimiter({
        provider: providers.generic({ resourceHeader: 'x-ratelimit-resource' }),
        key: 'violated',
      });
      const sent: Array<{ path: string; status: number; at: number }> = [];
      // Learn both routes first, then send 4 searches, and 20 core requests after the refusal.
      const paths = [
        '/search?q=0',
        '/core/0',
        ...Array.from({ length: 24 }, (_, i) => (i < 4 ? `/search?q=${i + 1}` : `/core/${i}`)),
      ];
      from(paths)
        .pipe(
          mergeMap((path, i) =>
            timer(i < 2 ? i * 100 : i < 6 ? 1000 : 1500, asyncScheduler).pipe(
              mergeMap(() => request(path).pipe(rateLimit(limiter, { method: 'GET', url: path }))),
              map((r) => ({ path, status: r.status, at: now() })),
            ),
          ),
        )
        .subscribe((s) => sent.push(s));
      return { sent, limiter, refusals };
    });
    const core = sent.filter((s) => s.path.startsWith('/core'));
    const search = sent.filter((s) => s.path.startsWith('/search'));
    expect(refusals).toHaveLength(1);
    expect(core).toHaveLength(21);
    expect(core.every((s) => s.status === 200 && s.at < 2000)).toBe(true);
    // The refused search is sent again once the search window has ended (30 s), not before.
    expect(search).toHaveLength(5);
    expect(search.every((s) => s.status === 200)).toBe(true);
    expect(search.filter((s) => s.at >= 30_000)).toHaveLength(1);
    expect(search.filter((s) => s.at > 2000 && s.at < 30_000)).toEqual([]);
    expect(limiter.snapshot.pausedUntil).toBeNull();
  });
});
