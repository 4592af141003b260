import { describe, expect, it } from '@jest/globals';
import { atlassianEndpoint, providers, responseLike, type RequestInfo } from '../../lib/index.js';

const jira = providers.atlassian();
const read = (status: number, headers: Record<string, string>, request: RequestInfo = {}, p = jira) =>
  p.read(responseLike(status, headers), request);
const names = (request: RequestInfo, p = jira) => p.buckets(request).map((b) => b.name);
/** 12:20 UTC: the points quota resets at 13:00. */
const DATE = 'Thu, 01 Jan 2026 12:20:00 GMT';
const ISSUE = { method: 'GET', url: 'https://acme.atlassian.net/rest/api/3/issue/ABC-123?fields=summary' };
const EDIT = { method: 'PUT', url: '/rest/api/3/issue/ABC-123' };

describe('providers.atlassian: which budgets a request counts against', () => {
  it('the points quota, and the burst limit of its endpoint and method (issue keys and ids as :id)', () => {
    expect(names(ISSUE)).toEqual(['quota', 'burst:GET /rest/api/3/issue/:id']);
    expect(names({ method: 'GET', url: '/rest/api/3/issue/10042' })).toEqual(names(ISSUE));
    expect(names(EDIT)).toEqual(['quota', 'burst:PUT /rest/api/3/issue/:id']);
    expect(atlassianEndpoint({ url: '/wiki/api/v2/pages/123/children' })).toBe('GET /wiki/api/v2/pages/:id/children');
  });

  it('documented hints: 65,000 points an hour; GET and POST 100 a second, PUT and DELETE 50, spread evenly', () => {
    const [quota, burst] = jira.buckets(EDIT);
    expect(quota).toEqual({ name: 'quota', limit: 65_000, windowMs: 3_600_000, quota: true });
    expect(burst).toEqual({ name: 'burst:PUT /rest/api/3/issue/:id', limit: 50, windowMs: 1000, pacing: 'smooth' });
    expect(jira.buckets(ISSUE)[1]?.limit).toBe(100);
  });

  it('API-token traffic has no points quota; endpoints and methods may have limits of their own', () => {
    expect(names(ISSUE, providers.atlassian({ auth: 'api-token' }))).toEqual(['burst:GET /rest/api/3/issue/:id']);
    const p = providers.atlassian({
      endpoints: { 'GET /rest/api/3/issue/{issueIdOrKey}': 150 },
      burstPerSecond: { PUT: 20 },
      hints: { burst: { pacing: 'burst' } },
    });
    expect(p.buckets(ISSUE)[1]).toMatchObject({ limit: 150, pacing: 'burst' });
    expect(p.buckets(EDIT)[1]).toMatchObject({ limit: 20 });
  });

  it('a bad option names the field', () => {
    expect(() => providers.atlassian({ auth: 'basic' as never })).toThrow(/auth/);
    expect(() => providers.atlassian({ burstPerSecond: { GET: 0 } })).toThrow(/burstPerSecond\.GET/);
    expect(() => providers.atlassian({ burstPerSecond: { TRACE: 1 } as never })).toThrow(/TRACE/);
    expect(() => providers.atlassian({ endpoints: { 'not a key': 5 } })).toThrow(/endpoints/);
    expect(() => providers.atlassian({ hints: { hourly: { limit: 1 } } })).toThrow(/hints\.hourly/);
    expect(() => providers.atlassian({ extraBuckets: [{ name: 'burst:GET /x' }] })).toThrow(/extraBuckets/);
  });
});

describe('providers.atlassian: reading responses', () => {
  it('the points quota from RateLimit-Policy and RateLimit, resetting at the top of the UTC hour', () => {
    const r = read(
      200,
      {
        'RateLimit-Policy': '"global-app-quota";q=65000;w=3600',
        RateLimit: '"global-app-quota";r=11000;t=600',
        'X-RateLimit-NearLimit': 'true',
        Date: DATE,
      },
      ISSUE,
    );
    expect(r).toEqual({
      outcome: 'ok',
      buckets: [{ name: 'quota', limit: 65_000, remaining: 11_000, windowMs: 3_600_000, reset: { inMs: 600_000 } }],
    });
  });

  it('well within the quota (no r): the limit and window, reset at the next UTC hour; the Beta- forms too', () => {
    const r = read(
      200,
      {
        'Beta-RateLimit-Policy': '"global-app-quota";q=65000;w=3600,"jira-burst-based";q=100;w=1',
        'Beta-RateLimit': '"global-app-quota";t=200,"jira-burst-based";r=90;t=1',
        Date: DATE,
      },
      ISSUE,
    );
    expect(r.buckets).toEqual([
      { name: 'quota', limit: 65_000, windowMs: 3_600_000, reset: { at: Date.UTC(2026, 0, 1, 13) } },
      { name: 'burst:GET /rest/api/3/issue/:id', limit: 100, remaining: 90, windowMs: 1000, reset: { inMs: 1000 } },
    ]);
  });

  it('enforced fields win over their Beta- forms', () => {
    const r = read(200, {
      'Beta-RateLimit-Policy': '"global-app-quota";q=1;w=1',
      'RateLimit-Policy': '"tenant-app-quota";q=120000;w=3600',
    });
    expect(r.buckets[0]).toMatchObject({ name: 'quota', limit: 120_000, windowMs: 3_600_000 });
  });

  it('a 429 for the burst limit holds back only that endpoint, until Retry-After', () => {
    const r = read(
      429,
      {
        'Retry-After': '1',
        'X-RateLimit-Limit': '350',
        'X-RateLimit-Remaining': '0',
        'X-RateLimit-Reset': '2026-01-01T01:01:01Z',
        'RateLimit-Reason': 'jira-burst-based',
      },
      ISSUE,
    );
    expect(r).toEqual({
      outcome: 'limited',
      buckets: [
        {
          name: 'burst:GET /rest/api/3/issue/:id',
          limit: 350,
          remaining: 0,
          reset: { at: Date.UTC(2026, 0, 1, 1, 1, 1) },
        },
      ],
      retryAfter: { delayMs: 1000 },
      retrySource: 'retry-after',
      limitedBy: 'burst:GET /rest/api/3/issue/:id',
    });
  });

  it('a 429 for the quota (Jira or Confluence) holds back the quota; without Retry-After, until its reset', () => {
    for (const reason of [
      'jira-quota-global-based',
      'jira-quota-tenant-based',
      'confluence-quota-global-based',
      'conf-global-based',
    ]) {
      const r = read(429, { 'RateLimit-Reason': reason, 'X-RateLimit-Reset': '2026-01-01T13:00Z', Date: DATE }, ISSUE);
      expect(r).toMatchObject({
        outcome: 'limited',
        limitedBy: 'quota',
        retryAfter: { at: Date.UTC(2026, 0, 1, 13) },
        retrySource: 'reset',
      });
    }
    expect(read(429, { 'RateLimit-Reason': 'jira-quota-global-based', Date: DATE })).toMatchObject({
      retryAfter: { at: Date.UTC(2026, 0, 1, 13) },
    });
  });

  it('without a Date (hidden from cross-origin scripts) the quota resets at the top of the hour of the limiter’s clock', () => {
    const now = Date.UTC(2026, 0, 1, 12, 45);
    const ok = jira.read(
      responseLike(200, {
        'RateLimit-Policy': '"global-app-quota";q=65000;w=3600',
        RateLimit: '"global-app-quota";r=100',
      }),
      ISSUE,
      now,
    );
    expect(ok.buckets[0]).toEqual({
      name: 'quota',
      limit: 65_000,
      remaining: 100,
      windowMs: 3_600_000,
      reset: { inMs: 15 * 60_000 },
    });
    const limited = jira.read(responseLike(429, { 'RateLimit-Reason': 'jira-quota-global-based' }), ISSUE, now);
    expect(limited).toMatchObject({ outcome: 'limited', limitedBy: 'quota', retrySource: 'reset' });
    expect(limited.retryAfter).toEqual({ delayMs: 15 * 60_000 });
  });

  it('a 429 for the per-issue write limit holds back writes to that issue only', () => {
    expect(read(429, { 'RateLimit-Reason': 'jira-per-issue-on-write', 'Retry-After': '2' }, EDIT)).toMatchObject({
      limitedBy: 'issue:ABC-123',
      retryAfter: { delayMs: 2000 },
    });
  });

  it('a 429 with an unknown or hostile reason pauses everything', () => {
    for (const reason of ['', 'made-up', 'x'.repeat(10_000), 'JIRA-BURST-BASED\r\nx', '-burst-based!']) {
      const r = read(429, { 'RateLimit-Reason': reason, 'Retry-After': '5' }, ISSUE);
      expect(r).toMatchObject({ outcome: 'limited', retryAfter: { delayMs: 5000 } });
      expect(r.limitedBy).toBeUndefined();
    }
  });

  it.each([
    ['garbage', 'abc', 'q=;;', 'r=x'],
    ['negative', '-5', '"global-app-quota";q=-1;w=-3600', '"global-app-quota";r=-5;t=-1'],
    ['NaN', 'NaN', '"global-app-quota";q=NaN;w=NaN', '"global-app-quota";r=NaN'],
    [
      'huge',
      '9'.repeat(400),
      `"global-app-quota";q=${'9'.repeat(400)};w=${'9'.repeat(400)}`,
      `"global-app-quota";r=1;t=${'9'.repeat(15)}`,
    ],
  ])('hostile values (%s) are ignored or capped, never a crash', (_, count, policy, limit) => {
    const r = read(429, {
      'X-RateLimit-Limit': count,
      'X-RateLimit-Remaining': count,
      'X-RateLimit-Reset': count,
      'RateLimit-Policy': policy,
      RateLimit: limit,
      'Beta-RateLimit-Policy': policy,
      'Beta-RateLimit': limit,
      'RateLimit-Reason': 'jira-burst-based',
      'Retry-After': count,
    });
    expect(r.outcome).toBe('limited');
    for (const b of r.buckets) {
      for (const n of [b.limit, b.remaining, b.windowMs])
        if (n !== undefined) expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
      if (b.windowMs !== undefined) expect(b.windowMs).toBeLessThanOrEqual(86_400_000);
      if (b.reset && 'inMs' in b.reset) expect(b.reset.inMs).toBeLessThanOrEqual(86_400_000);
    }
  });

  it('X-RateLimit-* on an answer that is not a 429 are the request rate, even when the numbers match the quota', () => {
    const r = read(
      200,
      {
        'RateLimit-Policy': '"global-app-quota";q=100;w=3600',
        'X-RateLimit-Limit': '100',
        'X-RateLimit-Remaining': '99',
        Date: DATE,
      },
      ISSUE,
    );
    expect(r.buckets).toEqual([
      { name: 'quota', limit: 100, windowMs: 3_600_000, reset: { at: Date.UTC(2026, 0, 1, 13) } },
      { name: 'burst:GET /rest/api/3/issue/:id', limit: 100, remaining: 99 },
    ]);
  });

  it('API-token traffic reads no quota, and a quota 429 then pauses everything', () => {
    const p = providers.atlassian({ auth: 'api-token' });
    const r = read(
      429,
      { 'RateLimit-Policy': '"global-app-quota";q=65000;w=3600', 'RateLimit-Reason': 'jira-quota-global-based' },
      ISSUE,
      p,
    );
    expect(r.buckets).toEqual([]);
    expect(r.limitedBy).toBeUndefined();
  });

  it('fields of a response served from a cache are not read', () => {
    expect(read(200, { Age: '30', 'RateLimit-Policy': '"global-app-quota";q=65000;w=3600' }).buckets).toEqual([]);
  });
});
