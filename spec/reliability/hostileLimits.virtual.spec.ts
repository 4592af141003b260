/**
 * Figures a hostile or broken server tells that, taken as they are, stopped a credential for
 * years or ended the process: a leaky bucket's capacity of 10^15, a restore rate of 10^-9, a
 * resource name that is a property of every object. In virtual time: each asserts when the
 * next request goes, as a user sees it.
 */
import { describe, expect, it } from '@jest/globals';
import { Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import {
  createLimiter,
  describeEvent,
  providers,
  rateLimit,
  type Limiter,
  type LimiterEvent,
  type Provider,
} from '../../lib/index.js';

/** A response the server gives, as the operators read it. */
const answer = (status: number, headers: Record<string, string>, body?: unknown) =>
  new Observable<unknown>((s) => {
    s.next({ status, headers, body });
    s.complete();
  });

/**
 * Sends one request that gets `first`, then (at 1 ms) one that gets a 200: when (virtual ms) the
 * second was sent, and how each ended.
 */
function nextSendAfter(
  provider: () => Provider,
  first: Observable<unknown>,
  url: string,
  nextUrl = url,
): { sentAt: number | undefined; ends: string[]; events: LimiterEvent[] } {
  const scheduler = new TestScheduler(() => undefined);
  let sentAt: number | undefined;
  const ends: string[] = [];
  const events: LimiterEvent[] = [];
  scheduler.run(() => {
    const limiter: Limiter = createLimiter({ provider: provider(), key: 'k', scheduler, maxWaitMs: 120_000 });
    limiter.events$.subscribe((e) => events.push(e));
    const end = (name: string) => ({
      complete: () => ends.push(`${name} ok`),
      error: (e: unknown) => ends.push(`${name} ${(e as Error).name}`),
    });
    first.pipe(rateLimit(limiter, { method: 'GET', url }, { maxRetries: 0 })).subscribe(end('first'));
    scheduler.schedule(() => {
      new Observable<unknown>((s) => {
        sentAt = scheduler.now();
        s.next({ status: 200, headers: {} });
        s.complete();
      })
        .pipe(rateLimit(limiter, { method: 'GET', url: nextUrl }))
        .subscribe(end('next'));
    }, 1);
  });
  return { sentAt, ends, events };
}

describe('a leaky bucket whose figures a server makes absurd', () => {
  it('a Shopify REST 429 without Retry-After holds until one unit is back, not until the bucket is full', () => {
    const shopify = () => providers.shopify({ api: 'rest' });
    const url = '/admin/api/2024-01/products.json';
    // 40 of 40 at 2 a second: a unit is back in 0.5 s (held 20 s, until full, before).
    const full = nextSendAfter(shopify, answer(429, { 'X-Shopify-Shop-Api-Call-Limit': '40/40' }), url);
    expect(full.ends).toEqual(['first RetryLimitError', 'next ok']);
    expect(full.sentAt).toBeGreaterThanOrEqual(500);
    expect(full.sentAt).toBeLessThan(2_000);
    // A capacity of 10^15, all used: held 15 million years before, every request refused.
    const absurd = nextSendAfter(
      shopify,
      answer(429, { 'X-Shopify-Shop-Api-Call-Limit': '999999999999999/999999999999999' }),
      url,
    );
    expect(absurd.ends).toEqual(['first RetryLimitError', 'next ok']);
    expect(absurd.sentAt).toBeLessThan(2_000);
  });

  it('a Shopify GraphQL restoreRate that would take centuries to fill the bucket is not taken', () => {
    const throttle = (restoreRate: number) => ({
      extensions: { cost: { throttleStatus: { maximumAvailable: 1000, currentlyAvailable: 0, restoreRate } } },
    });
    const shopify = () => providers.shopify({ api: 'graphql', queryCost: 50 });
    for (const rate of [1e-9, 5e-324, 0.001]) {
      const out = nextSendAfter(shopify, answer(200, {}, throttle(rate)), '/admin/api/2024-01/graphql.json');
      expect(out.ends).toEqual(['first ok', 'next ok']);
      // 50 points at the plan's 50 a second.
      expect(out.sentAt).toBeLessThanOrEqual(1_100);
    }
    // A real rate is taken: 50 points at 10 a second.
    const slow = nextSendAfter(shopify, answer(200, {}, throttle(10)), '/admin/api/2024-01/graphql.json');
    expect(slow.sentAt).toBeGreaterThanOrEqual(5_000);
  });
});

describe('events of instants past what a Date holds', () => {
  it('describeEvent writes them as numbers instead of throwing (logEvents ended the process)', () => {
    const base = { at: 0, provider: 'shopify', key: 'key_0' } as const;
    const paused = { ...base, type: 'paused', until: 5e17, reason: 'reset', bucket: 'rest' } as LimiterEvent;
    expect(() => describeEvent(paused)).not.toThrow();
    expect(describeEvent(paused)).toContain('past the Date range');
  });
});

describe('a GitHub resource name that is a property of every object', () => {
  it.each(['constructor', '__proto__'])(
    'x-ratelimit-resource: %s spent is not a bucket every request waits on',
    (resource) => {
      const headers = {
        'x-ratelimit-resource': resource,
        'x-ratelimit-limit': '1',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(20 * 3600),
      };
      const out = nextSendAfter(() => providers.github(), answer(200, headers), '/search/code?q=x', '/user');
      expect(out.ends).toEqual(['first ok', 'next ok']);
      expect(out.sentAt).toBe(1);
      expect(out.events.some((e) => e.type === 'paused' || (e.type === 'limit-changed' && e.bucket === resource))).toBe(
        false,
      );
    },
  );
});

describe('a reset from before the request was sent', () => {
  /** Six requests at once; each answer says the window is spent, with `headers`. How many were sent within 500 ms. */
  function sentWithin(provider: () => Provider, headers: Record<string, string>): number {
    const scheduler = new TestScheduler(() => undefined);
    let sent = 0;
    scheduler.run(() => {
      const limiter = createLimiter({ provider: provider(), key: 'k', scheduler, maxWaitMs: 500 });
      for (let i = 0; i < 6; i++)
        new Observable<unknown>((s) => {
          sent++;
          const t = scheduler.schedule(() => {
            s.next({ status: 200, headers });
            s.complete();
          }, 20);
          return () => t.unsubscribe();
        })
          .pipe(rateLimit(limiter, { method: 'GET', url: '/x' }))
          .subscribe({ error: () => undefined });
    });
    return sent;
  }

  it.each([
    ['generic, a unix reset of 2001', () => providers.generic(), { 'x-ratelimit-reset': '1000000000' }],
    ['procore, a reset of 1970', () => providers.procore(), { 'x-rate-limit-reset': '1' }],
  ])('%s does not refill a bucket the answer says is spent', (_name, provider, reset) => {
    // The server's clock, by its `Date`, in 2026 (virtual time starts at 0): its resets are read on it.
    const spent = {
      date: 'Mon, 23 Nov 2026 12:00:00 GMT',
      'x-ratelimit-limit': '100',
      'x-ratelimit-remaining': '0',
      'x-rate-limit-limit': '3600',
      'x-rate-limit-remaining': '0',
    };
    // As an answer that tells no reset at all: the first request, then none within the wait.
    const none = sentWithin(provider, spent);
    expect(sentWithin(provider, { ...spent, ...reset })).toBe(none);
    expect(none).toBeLessThan(6);
  });
});
