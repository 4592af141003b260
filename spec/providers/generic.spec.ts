import { describe, expect, it } from '@jest/globals';
import { providers, resourceName, responseLike } from '../../lib/index.js';

const read = (
  p: ReturnType<typeof providers.generic>,
  status: number,
  headers: Record<string, string>,
  body?: unknown,
) => p.read(responseLike(status, headers, body), {});

describe('providers.generic', () => {
  const p = providers.generic();

  it.each([
    [
      'X-RateLimit-* with unix seconds',
      { 'X-RateLimit-Limit': '3600', 'X-RateLimit-Remaining': '3599', 'X-RateLimit-Reset': '1466182244' },
      { limit: 3600, remaining: 3599, reset: { at: 1466182244000 } },
    ],
    [
      'X-Rate-Limit-* (Procore spelling)',
      { 'X-Rate-Limit-Limit': '3600', 'X-Rate-Limit-Remaining': '3599', 'X-Rate-Limit-Reset': '1466182244' },
      { limit: 3600, remaining: 3599, reset: { at: 1466182244000 } },
    ],
    [
      'seconds left (Pipedrive)',
      { 'x-ratelimit-limit': '40', 'x-ratelimit-remaining': '39', 'x-ratelimit-reset': '2' },
      { limit: 40, remaining: 39, reset: { inMs: 2000 } },
    ],
    [
      'unix ms',
      { 'x-ratelimit-remaining': '5', 'x-ratelimit-reset': '1466182244123' },
      { remaining: 5, reset: { at: 1466182244123 } },
    ],
    [
      'ISO 8601 reset',
      { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '2026-01-01T00:00:00Z' },
      { remaining: 0, reset: { at: Date.UTC(2026, 0, 1) } },
    ],
  ])('reads %s', (_, headers, expected) => {
    expect(read(p, 200, headers)).toEqual({ outcome: 'ok', buckets: [{ name: 'default', ...expected }] });
  });

  it('reads the IETF fields (draft 8+) with one bucket per policy', () => {
    const r = read(p, 200, {
      'RateLimit-Policy': '"default";q=100;w=10, "daily";q=1000;w=86400',
      RateLimit: '"default";r=50;t=5, "daily";r=900;t=3600',
    });
    expect(r.buckets).toEqual([
      { name: 'default', limit: 100, remaining: 50, reset: { inMs: 5000 }, windowMs: 10_000 },
      { name: 'daily', limit: 1000, remaining: 900, reset: { inMs: 3_600_000 }, windowMs: 86_400_000 },
    ]);
  });

  it('reads the draft-7 RateLimit dictionary with its own limit and window', () => {
    expect(read(p, 200, { RateLimit: 'limit=100;w=60, remaining=50, reset=5' }).buckets).toEqual([
      { name: 'default', limit: 100, remaining: 50, reset: { inMs: 5000 }, windowMs: 60_000 },
    ]);
  });

  it('reads the older RateLimit-Limit/-Remaining/-Reset trio', () => {
    expect(
      read(p, 200, { 'RateLimit-Limit': '10', 'RateLimit-Remaining': '1', 'RateLimit-Reset': '7' }).buckets,
    ).toEqual([{ name: 'default', limit: 10, remaining: 1, reset: { inMs: 7000 } }]);
  });

  it('marks 429 as limited and reads Retry-After in both forms', () => {
    expect(read(p, 429, { 'Retry-After': '19' })).toEqual({
      outcome: 'limited',
      buckets: [],
      retryAfter: { delayMs: 19_000 },
      retrySource: 'retry-after',
    });
    expect(read(p, 429, { 'Retry-After': 'Wed, 21 Oct 2015 07:28:00 GMT' }).retryAfter).toEqual({
      at: Date.UTC(2015, 9, 21, 7, 28),
    });
  });

  it('says nothing for garbage headers instead of throwing', () => {
    expect(
      read(p, 200, {
        'X-RateLimit-Limit': 'lots',
        'X-RateLimit-Remaining': 'NaN',
        'X-RateLimit-Reset': 'soon',
        'Retry-After': '-5',
      }),
    ).toEqual({ outcome: 'ok', buckets: [] });
  });

  it('takes other header names and statuses when told', () => {
    const custom = providers.generic({
      headers: { limit: 'x-acme-limit', remaining: 'x-acme-left' },
      limitedStatuses: [429, 503],
    });
    expect(read(custom, 503, { 'x-acme-limit': '9', 'x-acme-left': '0' })).toEqual({
      outcome: 'limited',
      buckets: [{ name: 'default', limit: 9, remaining: 0 }],
    });
  });

  it('hints come from the options', () => {
    expect(providers.generic({ limit: 10, windowMs: 1000, pacing: 'smooth' }).buckets({})).toEqual([
      { name: 'default', limit: 10, windowMs: 1000, pacing: 'smooth' },
    ]);
  });
});

describe('providers.ietf', () => {
  it('ignores X-RateLimit-* and reads only the IETF fields', () => {
    const p = providers.ietf();
    expect(p.read(responseLike(200, { 'X-RateLimit-Remaining': '5' }), {})).toEqual({ outcome: 'ok', buckets: [] });
    expect(
      p.read(responseLike(200, { 'RateLimit-Policy': '"permit";q=100;w=60', RateLimit: '"permit";r=0;t=10' }), {})
        .buckets,
    ).toEqual([{ name: 'permit', limit: 100, remaining: 0, reset: { inMs: 10_000 }, windowMs: 60_000 }]);
  });

  it("refuses generic()'s own options with a TypeError naming each, instead of ignoring them", () => {
    // A user who expects a bucket per resource (or other header names) from ietf() would get
    // neither, silently; the error says which options and where they belong.
    const withOptions = (o: object) => () => providers.ietf(o as never);
    expect(withOptions({ resourceHeader: 'x-ratelimit-resource' })).toThrow(TypeError);
    expect(withOptions({ resourceHeader: 'x-ratelimit-resource' })).toThrow(
      /providers\.ietf: option `resourceHeader` .*providers\.generic\(\{ resourceHeader \}\)/,
    );
    expect(withOptions({ resetUnit: 'unix-seconds' })).toThrow(/option `resetUnit`/);
    expect(withOptions({ headers: { limit: 'x-acme-limit' } })).toThrow(/option `headers`/);
    // Several at once: every one is named.
    expect(withOptions({ headers: {}, resourceHeader: 'x-r', limit: 5 })).toThrow(
      /`headers`.*`resourceHeader`.*providers\.generic\(\{ headers, resourceHeader \}\)/,
    );
    // Even an `undefined` value: the key was written, so the caller meant something by it.
    expect(withOptions({ resourceHeader: undefined })).toThrow(/option `resourceHeader`/);
    // Any other unknown option, as everywhere.
    expect(withOptions({ resourceHeaders: 'x' })).toThrow(/providers\.ietf: unknown option `resourceHeaders`/);
  });

  it('takes the options it shares with generic()', () => {
    const p = providers.ietf({
      name: 'acme',
      limit: 10,
      windowMs: 1000,
      pacing: 'smooth',
      limitedStatuses: [429, 503],
    });
    expect(p.name).toBe('acme');
    expect(p.buckets({})).toEqual([{ name: 'default', limit: 10, windowMs: 1000, pacing: 'smooth' }]);
    expect(p.read(responseLike(503, {}), {}).outcome).toBe('limited');
    expect(() => providers.ietf({ limit: -1 })).toThrow(/providers\.ietf: option `limit`/);
  });
});

describe('X-RateLimit-Retry-After, read like Retry-After', () => {
  const p = providers.generic();

  it('a delay in seconds is a wait, and a Unix time (Symfony writes one) is an instant', () => {
    expect(read(p, 429, { 'X-RateLimit-Retry-After': '30' })).toMatchObject({
      outcome: 'limited',
      retryAfter: { delayMs: 30_000 },
      retrySource: 'retry-after',
    });
    expect(read(p, 429, { 'X-RateLimit-Retry-After': '1760000000' }).retryAfter).toEqual({ at: 1_760_000_000_000 });
    expect(read(p, 429, { 'X-RateLimit-Retry-After': '2026-01-01T00:00:00Z' }).retryAfter).toEqual({
      at: Date.UTC(2026, 0, 1),
    });
  });

  it('Retry-After wins when both are sent', () => {
    expect(read(p, 429, { 'Retry-After': '5', 'X-RateLimit-Retry-After': '60' }).retryAfter).toEqual({
      delayMs: 5000,
    });
  });

  it('garbage or a negative value is no retry time', () => {
    for (const v of ['-1', 'soon', '1e9', '0x10', ''])
      expect(read(p, 429, { 'X-RateLimit-Retry-After': v }).retryAfter).toBeUndefined();
  });

  it('every profile that reads Retry-After reads it too', () => {
    const r = providers.procore().read(responseLike(429, { 'X-RateLimit-Retry-After': '7' }), {});
    expect(r.retryAfter).toEqual({ delayMs: 7000 });
  });
});

describe('rate-limit fields of a response served from a cache', () => {
  const ietfFields = { 'RateLimit-Policy': '"default";q=100;w=60', RateLimit: '"default";r=3;t=10' };

  it('are ignored when Age says a cache held the response (IETF and X-RateLimit-* alike)', () => {
    expect(read(providers.ietf(), 200, { ...ietfFields, Age: '120' }).buckets).toEqual([]);
    expect(read(providers.generic(), 200, { ...ietfFields, Age: '1' }).buckets).toEqual([]);
    expect(
      read(providers.generic(), 200, { 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': '30', Age: '5' }).buckets,
    ).toEqual([]);
  });

  it('are read with Age: 0 (just fetched) and on a 304 revalidated by the origin', () => {
    expect(read(providers.ietf(), 200, { ...ietfFields, Age: '0' }).buckets).toHaveLength(1);
    expect(read(providers.ietf(), 304, ietfFields).buckets).toEqual([
      { name: 'default', limit: 100, remaining: 3, reset: { inMs: 10_000 }, windowMs: 60_000 },
    ]);
  });

  it('are ignored when Cache-Status says a cache answered from its store (hit)', () => {
    expect(read(providers.ietf(), 200, { ...ietfFields, 'Cache-Status': 'ExampleCDN; hit; ttl=30' }).buckets).toEqual(
      [],
    );
    expect(
      read(providers.generic(), 200, { 'X-RateLimit-Remaining': '0', 'Cache-Status': 'Origin; fwd=miss, CDN; hit' })
        .buckets,
    ).toEqual([]);
  });

  it('are read when Cache-Status says every cache went to the origin, or is malformed', () => {
    expect(
      read(providers.ietf(), 200, { ...ietfFields, 'Cache-Status': 'ExampleCDN; fwd=uri-miss' }).buckets,
    ).toHaveLength(1);
    expect(read(providers.ietf(), 200, { ...ietfFields, 'Cache-Status': 'hit;;' }).buckets).toHaveLength(1);
  });

  it('an unreadable Age is not taken as cached', () => {
    expect(read(providers.ietf(), 200, { ...ietfFields, Age: 'old' }).buckets).toHaveLength(1);
  });

  it('a 429 from a cache still limits, without counters', () => {
    expect(read(providers.generic(), 429, { 'X-RateLimit-Remaining': '0', Age: '3', 'Retry-After': '2' })).toEqual({
      outcome: 'limited',
      buckets: [],
      retryAfter: { delayMs: 2000 },
      retrySource: 'retry-after',
    });
  });
});

describe('generic({ resourceHeader }): the bucket is the resource the response names', () => {
  const gh = () => providers.generic({ resourceHeader: 'x-ratelimit-resource' });
  const counters = { 'x-ratelimit-limit': '30', 'x-ratelimit-remaining': '29', 'x-ratelimit-reset': '1466182244' };
  const search = { method: 'GET', url: 'https://api.github.com/search/issues?q=bug' };

  it('reads the numbers into a bucket named after the resource', () => {
    const p = gh();
    expect(p.read(responseLike(200, { ...counters, 'X-RateLimit-Resource': 'Search' }), search).buckets).toEqual([
      { name: 'search', limit: 30, remaining: 29, reset: { at: 1466182244000 } },
    ]);
  });

  it('a route goes through default, one at a time, until a response names its resource; then counts against it', () => {
    const p = gh();
    expect(p.buckets(search)).toEqual([{ name: 'default', limit: 1 }]);
    p.read(responseLike(200, { ...counters, 'x-ratelimit-resource': 'search' }), search);
    // Same method and path (query and ids aside): the same route.
    expect(p.buckets({ method: 'GET', url: 'https://API.github.com/search/issues?q=other' })).toEqual([
      { name: 'search' },
    ]);
    expect(p.buckets({ method: 'POST', url: 'https://api.github.com/search/issues' })).toEqual([
      { name: 'default', limit: 1 },
    ]);
    expect(p.buckets({ method: 'GET', url: 'https://api.github.com/repos/o/r' })).toEqual([
      { name: 'default', limit: 1 },
    ]);
  });

  it("one provider for many servers (a pool of self-hosted instances): one server's names stay its own", () => {
    const p = gh();
    const at = (host: string, path: string) => ({ method: 'GET', url: `https://${host}${path}` });
    // One tenant's server names its search route, then 40 made-up resources.
    p.read(responseLike(200, { ...counters, 'x-ratelimit-resource': 'search' }), at('git.tenant-a.example', '/search'));
    for (let i = 0; i < 40; i++)
      p.read(
        responseLike(200, { ...counters, 'x-ratelimit-resource': `junk${i}` }),
        at('git.tenant-a.example', `/j${i}`),
      );
    // Another tenant's server: its route is not counted against what the first one named…
    expect(p.buckets(at('git.tenant-b.example', '/search'))).toEqual([{ name: 'default', limit: 1 }]);
    // … and its own honest resource is learnt, not filed under default for want of room.
    const read = p.read(
      responseLike(200, { ...counters, 'x-ratelimit-resource': 'core' }),
      at('git.tenant-b.example', '/user'),
    );
    expect(read.buckets[0]?.name).toBe('core');
    expect(p.buckets(at('git.tenant-b.example', '/user'))).toEqual([{ name: 'core' }]);
  });

  it('remembers at most 256 servers, forgetting the one that named a resource longest ago', () => {
    const p = gh();
    const at = (i: number) => ({ url: `https://host${i}.example/user` });
    for (let i = 0; i <= 256; i++) p.read(responseLike(200, { ...counters, 'x-ratelimit-resource': 'core' }), at(i));
    expect(p.buckets(at(0))).toEqual([{ name: 'default', limit: 1 }]);
    expect(p.buckets(at(1))).toEqual([{ name: 'core' }]);
    expect(p.buckets(at(256))).toEqual([{ name: 'core' }]);
    // A URL whose host is megabytes long is read without a parse of it, as no server of its own.
    const huge = { url: `https://${'h'.repeat(2_000_000)}/user` };
    expect(() => p.read(responseLike(200, { ...counters, 'x-ratelimit-resource': 'core' }), huge)).not.toThrow();
    expect(p.buckets(at(256))).toEqual([{ name: 'core' }]);
  });

  it('the hints in the options are each resource’s; a response without the header reads into default', () => {
    const p = providers.generic({ resourceHeader: 'x-ratelimit-resource', limit: 60, windowMs: 60_000 });
    p.read(responseLike(200, { ...counters, 'x-ratelimit-resource': 'core' }), { url: '/user' });
    expect(p.buckets({ url: '/user' })).toEqual([{ name: 'core', limit: 60, windowMs: 60_000 }]);
    expect(p.read(responseLike(200, counters), { url: '/other' }).buckets).toEqual([
      { name: 'default', limit: 30, remaining: 29, reset: { at: 1466182244000 } },
    ]);
  });

  it('a hostile resource name is no resource: too long, spaces, control characters, empty', () => {
    for (const bad of ['x'.repeat(65), 'a b', 'core\u0000', '', '   ', '-core', 'séarch', 'a'.repeat(10_000)]) {
      const p = gh();
      expect(p.read(responseLike(200, { ...counters, 'x-ratelimit-resource': bad }), search).buckets[0]?.name).toBe(
        'default',
      );
      expect(p.buckets(search)).toEqual([{ name: 'default', limit: 1 }]);
    }
    expect(resourceName(' Code_Search ')).toBe('code_search');
    expect(resourceName('x'.repeat(64))).toBe('x'.repeat(64));
  });

  it('at most 32 resources: readings naming more go to default, and their routes are not learnt', () => {
    const p = gh();
    for (let i = 0; i < 40; i++) {
      const r = p.read(responseLike(200, { ...counters, 'x-ratelimit-resource': `r${i}` }), { url: `/r${i}` });
      expect(r.buckets[0]?.name).toBe(i < 32 ? `r${i}` : 'default');
    }
    expect(p.buckets({ url: '/r31' })).toEqual([{ name: 'r31' }]);
    expect(p.buckets({ url: '/r32' })).toEqual([{ name: 'default', limit: 1 }]);
  });

  it('remembers at most 1,024 routes, forgetting the one learnt longest ago', () => {
    const p = gh();
    for (let i = 0; i <= 1024; i++)
      p.read(responseLike(200, { ...counters, 'x-ratelimit-resource': 'core' }), { url: `/a${i}` });
    expect(p.buckets({ url: '/a0' })).toEqual([{ name: 'default', limit: 1 }]);
    expect(p.buckets({ url: '/a1' })).toEqual([{ name: 'core' }]);
    expect(p.buckets({ url: '/a1024' })).toEqual([{ name: 'core' }]);
  });

  it('a response served from a cache teaches nothing', () => {
    const p = gh();
    expect(
      p.read(responseLike(200, { ...counters, 'x-ratelimit-resource': 'search', Age: '5' }), search).buckets,
    ).toEqual([]);
    expect(p.buckets(search)).toEqual([{ name: 'default', limit: 1 }]);
  });

  it('a bad header name is refused, naming the option', () => {
    expect(() => providers.generic({ resourceHeader: 'x resource' })).toThrow(/resourceHeader/);
    expect(() => providers.generic({ resourceHeader: '' })).toThrow(/resourceHeader/);
  });
});
