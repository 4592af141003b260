import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler, defer, map, timer } from 'rxjs';
import {
  createLimiter,
  isHubspotSearch,
  nextMidnight,
  providers,
  responseLike,
  throttleByHeaders,
  type RequestInfo,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const hs = providers.hubspot();
const read = (status: number, headers: Record<string, string>, request: RequestInfo = {}, body?: unknown, p = hs) =>
  p.read(responseLike(status, headers, body), request);
const names = (request: RequestInfo, p = hs) => p.buckets(request).map((b) => b.name);
/** Thu, 01 Jan 2026 12:00:00 GMT: 07:00 in New York, 13:00 in Paris, 21:00 in Tokyo. */
const NOON_UTC = 'Thu, 01 Jan 2026 12:00:00 GMT';
const SEARCH = { method: 'POST', url: 'https://api.hubapi.com/crm/v3/objects/contacts/search' };
const HEADERS = {
  'X-HubSpot-RateLimit-Daily': '250000',
  'X-HubSpot-RateLimit-Daily-Remaining': '249990',
  'X-HubSpot-RateLimit-Interval-Milliseconds': '10000',
  'X-HubSpot-RateLimit-Max': '100',
  'X-HubSpot-RateLimit-Remaining': '97',
  Date: NOON_UTC,
};

describe('providers.hubspot: which budgets a request counts against', () => {
  it('every request counts against the 10-second burst limit and the daily limit; a CRM search also against search', () => {
    expect(names({ method: 'GET', url: '/crm/v3/objects/contacts/42' })).toEqual(['interval', 'daily']);
    expect(names(SEARCH)).toEqual(['interval', 'daily', 'search']);
    expect(isHubspotSearch({ method: 'GET', url: '/crm/v3/objects/contacts/search' })).toBe(false);
  });

  it('documented hints by tier: a rolling 10 s, a rolling search second and a daily quota; a public app has no daily limit', () => {
    expect(hs.buckets({})).toEqual([
      { name: 'interval', limit: 100, windowMs: 10_000, rolling: true },
      { name: 'daily', limit: 250_000, windowMs: 86_400_000, quota: true },
    ]);
    expect(
      providers
        .hubspot({ tier: 'enterprise' })
        .buckets({})
        .map((b) => b.limit),
    ).toEqual([190, 1_000_000]);
    expect(providers.hubspot({ app: 'public' }).buckets({})).toEqual([
      { name: 'interval', limit: 110, windowMs: 10_000, rolling: true },
    ]);
    expect(providers.hubspot().buckets(SEARCH)[2]).toEqual({ name: 'search', limit: 5, windowMs: 1000, rolling: true });
  });

  it('a bad option names the field: an unknown time zone, tier or bucket', () => {
    expect(() => providers.hubspot({ timeZone: 'America/Nowhere' })).toThrow(/timeZone.*IANA time zone/s);
    expect(() => providers.hubspot({ timeZone: 'x'.repeat(10_000) })).toThrow(/timeZone/);
    expect(() => providers.hubspot({ tier: 'gold' as never })).toThrow(/tier/);
    expect(() => providers.hubspot({ hints: { secondly: { limit: 1 } } })).toThrow(/hints\.secondly/);
    expect(() => providers.hubspot({ extraBuckets: [{ name: 'daily' }] })).toThrow(/extraBuckets/);
  });
});

describe('providers.hubspot: the daily limit resets at midnight in the account’s time zone', () => {
  it.each([
    ['UTC', Date.UTC(2026, 0, 2, 0)],
    ['America/New_York', Date.UTC(2026, 0, 2, 5)],
    ['Europe/Paris', Date.UTC(2026, 0, 1, 23)],
    ['Asia/Tokyo', Date.UTC(2026, 0, 1, 15)],
    ['Asia/Kolkata', Date.UTC(2026, 0, 1, 18, 30)],
  ])('%s', (timeZone, midnight) => {
    const r = read(200, HEADERS, {}, undefined, providers.hubspot({ timeZone }));
    expect(r.buckets).toContainEqual({
      name: 'daily',
      limit: 250_000,
      remaining: 249_990,
      reset: { at: midnight },
      windowMs: 86_400_000,
    });
  });

  it('follows a daylight-saving change between now and midnight', () => {
    // 2026-03-08 is the US spring-forward day: New York is UTC-5 at 01:00 and UTC-4 at midnight after.
    expect(nextMidnight(Date.UTC(2026, 2, 8, 6), 'America/New_York')).toBe(Date.UTC(2026, 2, 9, 4));
    // 2026-11-01, fall back: UTC-4 in the morning, UTC-5 at the next midnight.
    expect(nextMidnight(Date.UTC(2026, 10, 1, 12), 'America/New_York')).toBe(Date.UTC(2026, 10, 2, 5));
  });

  it('where the clock springs forward at midnight, the day begins at 01:00: that instant, never an hour early or none', () => {
    // Santiago 2026-09-06, Beirut 2026-03-29, Havana 2026-03-08: 23:59:59 is followed by 01:00.
    for (const at of [
      Date.UTC(2026, 8, 6, 2, 59, 59),
      Date.UTC(2026, 8, 6, 3, 0, 1),
      Date.UTC(2026, 8, 6, 3, 59, 59),
    ]) {
      expect(nextMidnight(at, 'America/Santiago')).toBe(Date.UTC(2026, 8, 6, 4));
    }
    expect(nextMidnight(Date.UTC(2026, 2, 28, 21, 0, 1), 'Asia/Beirut')).toBe(Date.UTC(2026, 2, 28, 22));
    expect(nextMidnight(Date.UTC(2026, 2, 8, 4, 30), 'America/Havana')).toBe(Date.UTC(2026, 2, 8, 5));
  });

  it('in any zone, at any instant, the first second of the next day of that zone', () => {
    const zones = [
      'UTC',
      'America/New_York',
      'America/Santiago',
      'Asia/Beirut',
      'America/Havana',
      'Australia/Lord_Howe',
      'Asia/Kolkata',
      'Pacific/Chatham',
      'America/Asuncion',
    ];
    const day = (at: number, zone: string) => new Intl.DateTimeFormat('en-CA', { timeZone: zone }).format(at);
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.integer({ min: Date.UTC(2025, 0, 1), max: Date.UTC(2028, 0, 1) }),
        (zone, at) => {
          const t = nextMidnight(at, zone);
          expect(t).toBeDefined();
          const m = t as number;
          expect(m).toBeGreaterThan(at);
          expect(m % 1000).toBe(0);
          expect(day(m - 1000, zone)).toBe(day(at, zone));
          expect(day(m, zone)).not.toBe(day(at, zone));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('just before and at midnight: the next one, never the present instant', () => {
    expect(nextMidnight(Date.UTC(2026, 0, 1, 23, 59, 59, 999), 'UTC')).toBe(Date.UTC(2026, 0, 2));
    expect(nextMidnight(Date.UTC(2026, 0, 2), 'UTC')).toBe(Date.UTC(2026, 0, 3));
    expect(nextMidnight(Number.NaN, 'UTC')).toBeUndefined();
    expect(nextMidnight(0, 'Not/AZone')).toBeUndefined();
  });

  it('without a Date header (hidden from cross-origin scripts) it resets at the next midnight of the limiter’s clock', () => {
    const { Date: _, ...noDate } = HEADERS;
    const ny = providers.hubspot({ timeZone: 'America/New_York' });
    // 22:00 UTC is 17:00 in New York: its midnight is 05:00 UTC, 7 hours on.
    const now = Date.UTC(2026, 0, 1, 22);
    expect(ny.read(responseLike(200, noDate), {}, now).buckets[1]).toEqual({
      name: 'daily',
      limit: 250_000,
      remaining: 249_990,
      reset: { inMs: 7 * 3_600_000 },
      windowMs: 86_400_000,
    });
    // A 429 of the daily policy: held back until then, not paused for a guess.
    const limited = ny.read(responseLike(429, noDate, { policyName: 'DAILY' }), {}, now);
    expect(limited).toMatchObject({ outcome: 'limited', limitedBy: 'daily', retryAfter: { delayMs: 7 * 3_600_000 } });
  });

  it('a daily limit spent without a Date reopens at the limiter’s midnight in virtual time, not a day on', () => {
    const { Date: _, ...noDate } = HEADERS;
    const GET = { method: 'GET', url: '/crm/v3/objects/contacts/42' };
    // The limiter runs in virtual time from 1970-01-01 00:00 UTC; the request goes at 20:00.
    const resumeIn = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: providers.hubspot(), key: 'hubspot-account', maxWaitMs: 0 });
      const out = { ms: Number.NaN };
      asyncScheduler.schedule(() => {
        defer(() =>
          timer(10).pipe(map(() => responseLike(200, { ...noDate, 'X-HubSpot-RateLimit-Daily-Remaining': '0' }))),
        )
          .pipe(throttleByHeaders(limiter, GET))
          .subscribe();
        asyncScheduler.schedule(() => (out.ms = limiter.resumeAt(GET) - now()), 20);
      }, 20 * 3_600_000);
      return out;
    }).ms;
    expect(resumeIn).toBeGreaterThanOrEqual(4 * 3_600_000 - 20);
    expect(resumeIn).toBeLessThan(4 * 3_600_000 + 2000);
  });
});

describe('providers.hubspot: reading responses', () => {
  it('reads the burst limit with its window in ms', () => {
    expect(read(200, HEADERS).buckets[0]).toEqual({ name: 'interval', limit: 100, remaining: 97, windowMs: 10_000 });
  });

  it('a public app ignores daily headers (it declares no daily bucket)', () => {
    expect(read(200, HEADERS, {}, undefined, providers.hubspot({ app: 'public' })).buckets.map((b) => b.name)).toEqual([
      'interval',
    ]);
  });

  it.each([
    ['garbage', 'abc'],
    ['negative', '-5'],
    ['NaN', 'NaN'],
    ['huge', '9'.repeat(400)],
    ['fractional', '1.5'],
    ['zero window', '0'],
    ['a window past a day', String(86_400_001)],
  ])('hostile values (%s) are ignored, never a crash', (_, value) => {
    const r = read(200, {
      'X-HubSpot-RateLimit-Max': value,
      'X-HubSpot-RateLimit-Remaining': value,
      'X-HubSpot-RateLimit-Interval-Milliseconds': value,
      'X-HubSpot-RateLimit-Daily': value,
      'X-HubSpot-RateLimit-Daily-Remaining': value,
    });
    for (const b of r.buckets) {
      for (const n of [b.limit, b.remaining, b.windowMs])
        if (n !== undefined) expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
      if (b.windowMs !== undefined) expect(b.windowMs).toBeLessThanOrEqual(86_400_000);
    }
    expect(r.outcome).toBe('ok');
  });

  it('a 429 with policyName TEN_SECONDLY_ROLLING holds back the burst limit only', () => {
    const body = { status: 'error', errorType: 'RATE_LIMIT', policyName: 'TEN_SECONDLY_ROLLING' };
    expect(read(429, { ...HEADERS, 'X-HubSpot-RateLimit-Remaining': '0' }, {}, body)).toMatchObject({
      outcome: 'limited',
      limitedBy: 'interval',
    });
    // The body may come as text, as the fetch adapter reads it.
    expect(read(429, {}, {}, JSON.stringify(body))).toMatchObject({ limitedBy: 'interval' });
  });

  it('a 429 with policyName DAILY waits for the account’s midnight, and only on the daily budget', () => {
    const p = providers.hubspot({ timeZone: 'America/New_York' });
    expect(read(429, HEADERS, {}, { policyName: 'DAILY' }, p)).toMatchObject({
      outcome: 'limited',
      limitedBy: 'daily',
      retryAfter: { at: Date.UTC(2026, 0, 2, 5) },
      retrySource: 'reset',
    });
  });

  it('Retry-After wins over the computed time', () => {
    expect(read(429, { ...HEADERS, 'Retry-After': '3' }, {}, { policyName: 'DAILY' })).toMatchObject({
      retryAfter: { delayMs: 3000 },
      retrySource: 'retry-after',
      limitedBy: 'daily',
    });
  });

  it('a 429 on a search is the search limit; an unknown or hostile policy pauses everything', () => {
    expect(read(429, {}, SEARCH, { message: 'You have reached your secondly limit.' })).toMatchObject({
      limitedBy: 'search',
    });
    for (const policyName of ['MADE_UP', 'daily', 'x'.repeat(10_000), 42, null]) {
      const r = read(429, {}, {}, { policyName });
      expect(r.outcome).toBe('limited');
      expect(r.limitedBy).toBeUndefined();
    }
    expect(read(429, {}, {}, '{"policyName": "DAILY"')).toMatchObject({ outcome: 'limited' });
  });
});
