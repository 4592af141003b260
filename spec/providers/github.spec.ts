import { describe, expect, it } from '@jest/globals';
import { Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import {
  createLimiter,
  githubResource,
  providers,
  rateLimit,
  responseLike,
  type RequestInfo,
} from '../../lib/index.js';

const gh = providers.github();
const read = (status: number, headers: Record<string, string>, request: RequestInfo = {}, body?: unknown) =>
  gh.read(responseLike(status, headers, body), request);
const names = (request: RequestInfo, p = gh) => p.buckets(request).map((b) => b.name);
const RESET = '1767225600';
const primary = (resource: string, remaining: string, limit = '5000') => ({
  'x-ratelimit-limit': limit,
  'x-ratelimit-remaining': remaining,
  'x-ratelimit-reset': RESET,
  'x-ratelimit-used': String(Number(limit) - Number(remaining)),
  'x-ratelimit-resource': resource,
});

describe('providers.github: which budget a request counts against', () => {
  it.each([
    ['https://api.github.com/repos/octo/hello/issues?page=2', 'core'],
    ['/search/issues?q=bug', 'search'],
    ['/search/code?q=x', 'code_search'],
    ['/graphql', 'graphql'],
    ['https://ghe.example.com/api/v3/search/repositories?q=x', 'search'],
    ['https://ghe.example.com/api/graphql', 'graphql'],
    ['/repos/octo/hello/dependency-graph/snapshots', 'dependency_snapshots'],
    ['/repos/octo/hello/dependency-graph/sbom', 'dependency_sbom'],
    ['https://ghe.example.com/api/v3/repos/octo/hello/dependency-graph/sbom', 'dependency_sbom'],
    ['/repos/octo/hello/code-scanning/sarifs', 'code_scanning_upload'],
    ['/scim/v2/organizations/octo/Users', 'scim'],
  ])('%s counts against %s', (url, resource) => {
    expect(githubResource({ url })).toBe(resource);
  });

  it('a read counts against its resource only; a write also against the content-creation limits', () => {
    expect(names({ method: 'GET', url: '/repos/o/r/issues' })).toEqual(['core', 'points:rest']);
    expect(names({ method: 'POST', url: '/repos/o/r/issues' })).toEqual([
      'core',
      'content:minute',
      'content:hour',
      'points:rest',
    ]);
    expect(names({ method: 'GET', url: '/search/code' })).toEqual(['code_search', 'points:rest']);
    // GraphQL is always a POST: it is not counted as content creation.
    expect(names({ method: 'POST', url: '/graphql' })).toEqual(['graphql', 'points:graphql']);
  });

  it('documented hints: 5,000 an hour for core, 30 a minute for search, 80 a minute and 500 an hour of writes', () => {
    const [core, minute, hour] = gh.buckets({ method: 'POST', url: '/user/repos' });
    expect(core).toEqual({ name: 'core', limit: 5000, windowMs: 3_600_000 });
    expect(minute).toEqual({ name: 'content:minute', limit: 80, windowMs: 60_000, rolling: true });
    expect(hour).toEqual({ name: 'content:hour', limit: 500, windowMs: 3_600_000, rolling: true });
    expect(gh.buckets({ url: '/search/issues' })).toEqual([
      { name: 'search', limit: 30, windowMs: 60_000 },
      { name: 'points:rest', limit: 900, windowMs: 60_000, rolling: true },
    ]);
  });

  it('content creation can be fixed windows (for a shared store) or left out', () => {
    const fixed = providers.github({ contentCreation: 'fixed' }).buckets({ method: 'PATCH', url: '/repos/o/r' });
    expect(fixed.every((b) => b.rolling === undefined)).toBe(true);
    expect(names({ method: 'PATCH', url: '/repos/o/r' }, providers.github({ contentCreation: false }))).toEqual([
      'core',
      'points:rest',
    ]);
  });

  it('secondary points (on unless turned off): 900 a minute for REST, 2,000 for GraphQL; a REST write costs 5, a read 1', () => {
    const p = providers.github({ secondaryPoints: true });
    expect(names({ method: 'GET', url: '/repos/o/r' }, p)).toEqual(['core', 'points:rest']);
    expect(names({ method: 'POST', url: '/graphql' }, p)).toEqual(['graphql', 'points:graphql']);
    const [, , , rest] = p.buckets({ method: 'POST', url: '/repos/o/r/issues' });
    expect(rest).toEqual({ name: 'points:rest', limit: 900, windowMs: 60_000, rolling: true });
    const points = (method: string, url = '/repos/o/r/issues') =>
      p.buckets({ method, url }).map((b) => p.cost?.({ method, url }, b) ?? 1);
    // Per bucket, in order: the resource, (content creation), the points.
    expect(points('GET')).toEqual([1, 1]);
    expect(points('HEAD')).toEqual([1, 1]);
    expect(points('OPTIONS')).toEqual([1, 1]);
    for (const write of ['POST', 'PATCH', 'PUT', 'DELETE']) expect(points(write)).toEqual([1, 1, 1, 5]);
    expect(points('POST', '/graphql')).toEqual([1, 1]);
    // On by default; `secondaryPoints: false` leaves them out.
    expect(names({ method: 'GET', url: '/repos/o/r' })).toEqual(['core', 'points:rest']);
    expect(names({ method: 'GET', url: '/repos/o/r' }, providers.github({ secondaryPoints: false }))).toEqual(['core']);
  });

  it('a limiter on github with secondary points takes 5 of them for a write', () => {
    const limiter = createLimiter({
      provider: providers.github({ secondaryPoints: true }),
      key: 'github-points',
      coldStartConcurrency: 10,
    });
    const handlers = { granted: () => undefined, rejected: () => undefined };
    limiter.acquire({ method: 'GET', url: '/repos/o/r' }, handlers);
    limiter.acquire({ method: 'POST', url: '/repos/o/r/issues' }, handlers);
    expect(limiter.snapshot.buckets.find((b) => b.name === 'points:rest')).toMatchObject({
      remaining: 894,
      inFlight: 6,
    });
    void limiter.close();
  });

  it('hints override by bucket name (a GitHub App with 15,000 an hour)', () => {
    expect(providers.github({ hints: { core: { limit: 15_000 } } }).buckets({ url: '/user' })[0]).toMatchObject({
      limit: 15_000,
    });
  });

  it('a bad option names the field', () => {
    expect(() => providers.github({ hints: { cores: { limit: 1 } } })).toThrow(/hints\.cores/);
    expect(() => providers.github({ contentCreation: 'sliding' as never })).toThrow(/contentCreation/);
    expect(() => providers.github({ extraBuckets: [{ name: 'core' }] })).toThrow(/extraBuckets/);
  });
});

describe('providers.github: reading responses', () => {
  it('reads the primary counters into the bucket GitHub names in x-ratelimit-resource', () => {
    expect(read(200, primary('search', '29', '30'), { url: '/search/issues' })).toEqual({
      outcome: 'ok',
      buckets: [{ name: 'search', limit: 30, remaining: 29, reset: { at: 1_767_225_600_000 } }],
    });
  });

  it('x-ratelimit-used and -remaining give the limit when the limit header is missing', () => {
    const r = read(200, { 'x-ratelimit-remaining': '4990', 'x-ratelimit-used': '10', 'x-ratelimit-resource': 'core' });
    expect(r.buckets).toEqual([{ name: 'core', limit: 5000, remaining: 4990 }]);
  });

  it('a hostile or empty resource name falls back to the URL’s resource', () => {
    for (const resource of ['core\r\nx', 'x'.repeat(10_000), '', 'a b'])
      expect(read(200, primary(resource, '1'), { url: '/search/issues' }).buckets[0]?.name).toBe('search');
  });

  it('a 403 with x-ratelimit-remaining: 0 is the primary limit: wait for the reset', () => {
    expect(
      read(403, primary('core', '0'), { url: '/user' }, { message: 'API rate limit exceeded for user ID 1.' }),
    ).toMatchObject({
      outcome: 'limited',
      retryAfter: { at: 1_767_225_600_000 },
      retrySource: 'reset',
      limitedBy: 'core',
    });
  });

  it('a 403 or 429 with retry-after is a secondary limit: wait that long', () => {
    for (const status of [403, 429])
      expect(read(status, { ...primary('core', '4000'), 'retry-after': '60' }, { method: 'POST' })).toMatchObject({
        outcome: 'limited',
        retryAfter: { delayMs: 60_000 },
        retrySource: 'retry-after',
      });
  });

  it('a secondary limit with neither retry-after nor remaining 0: wait one minute, as the doc says', () => {
    const body = {
      message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
    };
    expect(read(403, primary('core', '4000'), {}, body)).toMatchObject({
      outcome: 'limited',
      retryAfter: { delayMs: 60_000 },
    });
    expect(read(429, {})).toMatchObject({ outcome: 'limited', retryAfter: { delayMs: 60_000 } });
  });

  it('a 403 that is not rate limiting (a permission error) does not pause anything', () => {
    const body = { message: 'Resource not accessible by integration' };
    expect(read(403, primary('core', '4999'), { url: '/repos/o/r/hooks' }, body)).toEqual({
      outcome: 'ok',
      buckets: [{ name: 'core', limit: 5000, remaining: 4999, reset: { at: 1_767_225_600_000 } }],
    });
    expect(read(403, {}, {}, 'Forbidden')).toEqual({ outcome: 'ok', buckets: [] });
  });
});

describe('providers.github: a resource the URL does not show', () => {
  const sbom = { method: 'GET', url: 'https://api.github.com/repos/o/r/dependency-graph/sbom' };
  const imports = { method: 'GET', url: 'https://api.github.com/repos/o/r/import' };
  const issues = { method: 'GET', url: 'https://api.github.com/repos/o/r/issues' };

  it('dependency_sbom, code_scanning_autofix and source_import are resources of their own', () => {
    expect(names(sbom)).toEqual(['dependency_sbom', 'points:rest']);
    expect(() =>
      providers.github({ hints: { code_scanning_autofix: { limit: 10 }, source_import: {} } }),
    ).not.toThrow();
  });

  it('counters of a resource the profile does not list go to a bucket of that name, and the route counts there', () => {
    const p = providers.github();
    const r = p.read(responseLike(200, primary('made_up', '0', '100')), imports);
    // Not core's: 100 with none left would have replaced core's 5,000.
    expect(r.buckets).toEqual([{ name: 'made_up', limit: 100, remaining: 0, reset: { at: 1_767_225_600_000 } }]);
    expect(names(imports, p)).toEqual(['made_up', 'points:rest']);
    // A route is a method and a path: a write there is learnt from its own answer, and keeps the
    // content-creation limits.
    const write = { method: 'POST', url: imports.url };
    expect(names(write, p)).toEqual(['core', 'content:minute', 'content:hour', 'points:rest']);
    p.read(responseLike(201, primary('made_up', '0', '100')), write);
    expect(names(write, p)).toEqual(['made_up', 'content:minute', 'content:hour', 'points:rest']);
    // Every other route still counts against core (and the REST points): no learnt bucket every
    // request counts against.
    expect(names(issues, p)).toEqual(['core', 'points:rest']);
    expect(names({ method: 'GET', url: 'https://api.github.com/repos/o/r/import/authors' }, p)).toEqual([
      'core',
      'points:rest',
    ]);
    // Another server's routes are its own.
    expect(names({ method: 'GET', url: 'https://ghe.example.com/api/v3/repos/o/r/import' }, p)).toEqual([
      'core',
      'points:rest',
    ]);
  });

  it('a listed resource named for a route its URL does not show moves the route there; core again moves it back', () => {
    const p = providers.github();
    const autofix = { method: 'POST', url: '/repos/o/r/code-scanning/alerts/3/autofix' };
    expect(names(autofix, p)).toEqual(['core', 'content:minute', 'content:hour', 'points:rest']);
    expect(p.read(responseLike(201, primary('code_scanning_autofix', '9', '10')), autofix).buckets[0]?.name).toBe(
      'code_scanning_autofix',
    );
    expect(names(autofix, p)).toEqual(['code_scanning_autofix', 'content:minute', 'content:hour', 'points:rest']);
    expect(p.read(responseLike(201, primary('core', '4000')), autofix).buckets[0]?.name).toBe('core');
    expect(names(autofix, p)).toEqual(['core', 'content:minute', 'content:hour', 'points:rest']);
  });

  it('a 403 that spends an unlisted resource holds that resource, not core', () => {
    const p = providers.github();
    const r = p.read(
      responseLike(403, primary('made_up', '0', '100'), { message: 'API rate limit exceeded' }),
      imports,
    );
    expect(r).toMatchObject({ outcome: 'limited', limitedBy: 'made_up', retrySource: 'reset' });
  });

  it('a name it may not learn (the caller’s own bucket, a property of every object, past 32 resources) gives no counters', () => {
    const p = providers.github({ extraBuckets: [{ name: 'daily', limit: 10, windowMs: 86_400_000 }] });
    expect(p.read(responseLike(200, primary('daily', '0', '1')), imports).buckets).toEqual([]);
    expect(p.read(responseLike(200, primary('default', '0', '1')), imports).buckets).toEqual([]);
    expect(p.read(responseLike(200, primary('constructor', '0', '1')), imports).buckets).toEqual([]);
    expect(names(imports, p)).toEqual(['core', 'points:rest', 'daily']);
    const q = providers.github();
    for (let i = 0; i < 40; i++)
      q.read(responseLike(200, primary(`made_up_${String.fromCharCode(97 + (i % 26))}${i}`, '1', '100')), {
        url: `https://api.github.com/r${i}`,
      });
    expect(q.read(responseLike(200, primary('one_more', '0', '1')), imports).buckets).toEqual([]);
    expect(names(imports, q)).toEqual(['core', 'points:rest']);
  });

  it('a limiter keeps core’s budget when an unlisted resource of 100 is spent: core requests go, that route waits', () => {
    const p = providers.github();
    const scheduler = new TestScheduler(() => undefined);
    const log: string[] = [];
    const start = Date.UTC(2026, 0, 1);
    const headers = (resource: string, limit: number, remaining: number, resetMs: number, at: number) => ({
      date: new Date(start + at).toUTCString(),
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(remaining),
      'x-ratelimit-reset': String(Math.floor((start + resetMs) / 1000)),
      'x-ratelimit-resource': resource,
    });
    const steps: Array<[number, RequestInfo, Record<string, string>]> = [
      [0, issues, headers('core', 5000, 4990, 3_000_000, 0)],
      [100, sbom, headers('dependency_sbom', 100, 0, 1_800_000, 100)],
      [200, imports, headers('source_import', 100, 0, 1_800_000, 200)],
      [1000, issues, headers('core', 5000, 4988, 3_000_000, 1000)],
      [1100, imports, headers('source_import', 100, 99, 5_400_000, 1_800_000)],
      [1200, issues, headers('core', 5000, 4987, 3_000_000, 1200)],
    ];
    let limiter!: ReturnType<typeof createLimiter>;
    scheduler.run(() => {
      limiter = createLimiter({ provider: p, key: 'gh-unlisted', scheduler, maxWaitMs: 3_600_000 });
      steps.forEach(([at, info, h], i) =>
        scheduler.schedule(() => {
          new Observable((s) => {
            log.push(`#${i} sent@${scheduler.now()}`);
            s.next(responseLike(200, h));
            s.complete();
          })
            .pipe(rateLimit(limiter, info, { maxRetries: 0 }))
            .subscribe({ error: (e: Error) => log.push(`#${i} ${e.name}@${scheduler.now()}`) });
        }, at),
      );
    });
    // Core requests go at once; the second import waits for source_import's reset (30 min, and
    // the limiter's guard), not for core's.
    expect(log.filter((l) => !l.includes('sent'))).toEqual([]);
    expect(log).toContain('#3 sent@1000');
    expect(log).toContain('#5 sent@1200');
    const second = Number(log.find((l) => l.startsWith('#4 sent@'))?.split('@')[1]);
    expect(second).toBeGreaterThanOrEqual(1_800_000);
    expect(second).toBeLessThan(1_900_000);
    const buckets = Object.fromEntries(limiter.snapshot.buckets.map((b) => [b.name, b]));
    // (dependency_sbom's bucket, idle past its reset, has been evicted by then.)
    expect(buckets['core']).toMatchObject({ limit: 5000, remaining: 4987 });
    expect(buckets['source_import']).toMatchObject({ limit: 100, remaining: 99 });
    void limiter.close();
  });
});
