import { describe, expect, it } from '@jest/globals';
import { Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { createLimiter, providers, rateLimit, responseLike, type Provider, type RequestInfo } from '../../lib/index.js';

const rest = providers.shopify({ api: 'rest' });
const gql = providers.shopify({ api: 'graphql' });
const read = (
  p: Provider,
  status: number,
  headers: Record<string, string>,
  body?: unknown,
  request: RequestInfo = {},
) => p.read(responseLike(status, headers, body), request);

/** A GraphQL Admin API answer as its docs show it. */
const answer = (over: Record<string, unknown> = {}, errors?: unknown) => ({
  data: { shop: { name: 'x' } },
  ...(errors === undefined ? {} : { errors }),
  extensions: {
    cost: {
      requestedQueryCost: 101,
      actualQueryCost: 46,
      throttleStatus: { maximumAvailable: 1000.0, currentlyAvailable: 954, restoreRate: 50.0 },
      ...over,
    },
  },
});

describe('providers.shopify: buckets by API and plan', () => {
  it('REST: one leaky bucket of requests, 40 restoring 2 a second on Standard; each request costs 1', () => {
    expect(rest.buckets({ url: '/admin/api/2024-10/products.json' })).toEqual([
      { name: 'rest', limit: 40, restorePerSecond: 2 },
    ]);
    expect(rest.cost).toBeUndefined();
  });

  it('GraphQL: one leaky bucket of points, 1,000 restoring 50 a second on Standard; a query costs 50 unless told', () => {
    const [bucket] = gql.buckets({ method: 'POST', url: '/admin/api/2024-10/graphql.json' });
    expect(bucket).toEqual({ name: 'graphql', limit: 1000, restorePerSecond: 50 });
    expect(gql.cost?.({}, bucket!)).toBe(50);
    expect(providers.shopify({ queryCost: 12 }).cost?.({}, bucket!)).toBe(12);
  });

  it('higher plans start from larger buckets that restore faster', () => {
    const of = (api: 'rest' | 'graphql', plan: 'advanced' | 'plus' | 'enterprise') =>
      providers.shopify({ api, plan }).buckets({})[0];
    expect(of('rest', 'advanced')).toMatchObject({ limit: 80, restorePerSecond: 4 });
    expect(of('rest', 'plus')).toMatchObject({ limit: 400, restorePerSecond: 20 });
    expect(of('rest', 'enterprise')).toMatchObject({ limit: 800, restorePerSecond: 40 });
    expect(of('graphql', 'plus')).toMatchObject({ limit: 20_000, restorePerSecond: 1000 });
  });

  it('hints override the capacity and the restore rate; extra buckets are added', () => {
    const p = providers.shopify({
      api: 'rest',
      hints: { rest: { limit: 20, restorePerSecond: 1 } },
      extraBuckets: [{ name: 'mine', limit: 5, windowMs: 1000 }],
    });
    expect(p.buckets({})).toEqual([
      { name: 'rest', limit: 20, restorePerSecond: 1 },
      { name: 'mine', limit: 5, windowMs: 1000 },
    ]);
  });

  it('a bad option names the field: api, plan, query cost, bucket names', () => {
    expect(() => providers.shopify({ api: 'soap' as never })).toThrow(/api/);
    expect(() => providers.shopify({ plan: 'gold' as never })).toThrow(/plan/);
    expect(() => providers.shopify({ queryCost: 0 })).toThrow(/queryCost/);
    expect(() => providers.shopify({ queryCost: 1001 })).toThrow(/queryCost/);
    expect(() => providers.shopify({ hints: { minute: { limit: 1 } } })).toThrow(/hints\.minute/);
    expect(() => providers.shopify({ hints: { rest: { restorePerSecond: -1 } } })).toThrow(/restorePerSecond/);
    expect(() => providers.shopify({ extraBuckets: [{ name: 'graphql' }] })).toThrow(/extraBuckets/);
  });
});

describe('providers.shopify: REST answers', () => {
  it('X-Shopify-Shop-Api-Call-Limit: 32/40 reads as 8 available of 40', () => {
    expect(read(rest, 200, { 'X-Shopify-Shop-Api-Call-Limit': '32/40' })).toEqual({
      outcome: 'ok',
      buckets: [{ name: 'rest', limit: 40, remaining: 8 }],
    });
  });

  it('an over-full bucket reads as none available', () => {
    expect(read(rest, 200, { 'X-Shopify-Shop-Api-Call-Limit': '41/40' }).buckets).toEqual([
      { name: 'rest', limit: 40, remaining: 0 },
    ]);
  });

  it('a 429 holds the bucket for Retry-After (Shopify writes it as 2.0)', () => {
    expect(read(rest, 429, { 'X-Shopify-Shop-Api-Call-Limit': '40/40', 'Retry-After': '2.0' })).toEqual({
      outcome: 'limited',
      buckets: [{ name: 'rest', limit: 40, remaining: 0 }],
      limitedBy: 'rest',
      retryAfter: { delayMs: 2000 },
      retrySource: 'retry-after',
    });
  });

  it.each([['lots'], ['32'], ['32/0'], ['-1/40'], ['9'.repeat(2000)]])(
    'a header it cannot read (%j) says nothing',
    (v) => {
      expect(read(rest, 200, { 'X-Shopify-Shop-Api-Call-Limit': v })).toEqual({ outcome: 'ok', buckets: [] });
    },
  );
});

describe('providers.shopify: GraphQL answers', () => {
  it('reads throttleStatus from the body: capacity, what is available, the restore rate; and the actual cost', () => {
    expect(read(gql, 200, {}, answer())).toEqual({
      outcome: 'ok',
      buckets: [{ name: 'graphql', limit: 1000, remaining: 954, restorePerSecond: 50 }],
      cost: 46,
    });
  });

  it('reads a body given as JSON text the same way', () => {
    expect(read(gql, 200, {}, JSON.stringify(answer()))).toEqual(read(gql, 200, {}, answer()));
  });

  it('an actual cost of 0 (a query that touched nothing) leaves the estimate for the readings to correct', () => {
    expect(read(gql, 200, {}, answer({ actualQueryCost: 0 }))).not.toHaveProperty('cost');
  });

  it('a THROTTLED error in a 200 body holds the bucket until the requested cost has come back', () => {
    const body = answer(
      { actualQueryCost: null, throttleStatus: { maximumAvailable: 1000, currentlyAvailable: 20, restoreRate: 50 } },
      [{ message: 'Throttled', extensions: { code: 'THROTTLED' } }],
    );
    expect(read(gql, 200, {}, body)).toEqual({
      outcome: 'limited',
      buckets: [{ name: 'graphql', limit: 1000, remaining: 20, restorePerSecond: 50 }],
      limitedBy: 'graphql',
      // The query never ran: sending it again (a mutation too) applies it once.
      notProcessed: true,
      // Sent again, it takes the 101 points it asked for, not the limiter's estimate.
      retryCost: { graphql: 101 },
      // (101 − 20) / 50 s.
      retryAfter: { delayMs: 1620 },
      retrySource: 'body',
    });
  });

  it('a THROTTLED answer without the figures to time it holds the bucket, not saying how long', () => {
    const body = { errors: [{ message: 'Throttled', extensions: { code: 'THROTTLED' } }] };
    expect(read(gql, 200, {}, body)).toEqual({
      outcome: 'limited',
      buckets: [],
      limitedBy: 'graphql',
      notProcessed: true,
    });
  });

  it('wants the body of every 2xx for GraphQL (a throttle is a 200), and of none for REST', () => {
    expect(gql.readsBody?.(200, {})).toBe(true);
    expect(gql.readsBody?.(204, {})).toBe(true);
    expect(gql.readsBody?.(500, {})).toBe(false);
    expect(rest.readsBody).toBeUndefined();
  });

  it('the older form, a "Throttled" message with no code, counts too; other errors do not', () => {
    expect(read(gql, 200, {}, answer({}, [{ message: 'Throttled' }]))).toMatchObject({
      outcome: 'limited',
      notProcessed: true,
    });
    expect(read(gql, 200, {}, answer({}, [{ message: 'Field "x" doesn\'t exist' }])).outcome).toBe('ok');
    expect(read(gql, 200, {}, answer({}, [{ extensions: { code: 'ACCESS_DENIED' } }])).outcome).toBe('ok');
  });

  it('a 429 (with or without Retry-After) is a throttled answer too', () => {
    expect(read(gql, 429, { 'Retry-After': '1' })).toMatchObject({
      outcome: 'limited',
      limitedBy: 'graphql',
      retryAfter: { delayMs: 1000 },
    });
    // A bare 429 does not say the query never ran (Shopify's resource throttles answer 429 too).
    expect(read(gql, 429, {})).toEqual({ outcome: 'limited', buckets: [], limitedBy: 'graphql' });
  });

  it.each([
    ['no body', undefined],
    ['a text body', 'Internal error'],
    ['JSON that is not an answer', '[1,2,3]'],
    ['null extensions', { extensions: null }],
    ['a string cost', { extensions: { cost: 'high' } }],
    [
      'negative and NaN figures',
      answer({ throttleStatus: { maximumAvailable: -1, currentlyAvailable: NaN, restoreRate: -50 } }),
    ],
    [
      'figures past any bucket',
      answer({ throttleStatus: { maximumAvailable: 1e300, currentlyAvailable: Infinity, restoreRate: 1e300 } }),
    ],
    [
      'string figures',
      answer({ throttleStatus: { maximumAvailable: '1000', currentlyAvailable: '5', restoreRate: '50' } }),
    ],
  ])('a body it cannot read (%s) says nothing of the bucket', (_what, body) => {
    expect(read(gql, 200, {}, body).buckets).toEqual([]);
    expect(read(gql, 200, {}, body).outcome).toBe('ok');
  });

  it('hostile bodies never throw: throwing getters, a huge text body, thousands of errors', () => {
    const trap = {
      get extensions(): never {
        throw new Error('boom');
      },
    };
    expect(read(gql, 200, {}, trap)).toEqual({ outcome: 'ok', buckets: [] });
    const huge = JSON.stringify({ ...answer(), padding: 'x'.repeat(100 * 1024) });
    expect(read(gql, 200, {}, huge)).toEqual({ outcome: 'ok', buckets: [] });
    const many = answer({}, [...Array.from({ length: 5000 }, () => ({ message: 'nope' })), { message: 'Throttled' }]);
    // Only the first hundred errors are looked at.
    expect(read(gql, 200, {}, many).outcome).toBe('ok');
  });
});

describe('providers.shopify: a capacity below the least a store has', () => {
  const status = (maximumAvailable: number, currentlyAvailable: number) =>
    answer({
      requestedQueryCost: 50,
      actualQueryCost: 10,
      throttleStatus: { maximumAvailable, currentlyAvailable, restoreRate: 50 },
    });

  it('a maximumAvailable below 1,000 is not taken as the capacity; what is available and the rate still are', () => {
    expect(read(gql, 200, {}, status(40, 30))).toEqual({
      outcome: 'ok',
      buckets: [{ name: 'graphql', remaining: 30, restorePerSecond: 50 }],
      cost: 10,
    });
    expect(read(gql, 200, {}, status(999, 999)).buckets[0]).not.toHaveProperty('limit');
    expect(read(gql, 200, {}, status(0, 0)).buckets[0]).not.toHaveProperty('limit');
    // Standard's 1,000 and anything above it are capacities.
    expect(read(gql, 200, {}, status(1000, 999)).buckets[0]).toMatchObject({ limit: 1000 });
    expect(read(gql, 200, {}, status(2000, 10)).buckets[0]).toMatchObject({ limit: 2000 });
  });

  it('one body saying 40 does not stop queries of the default cost, 50: each is sent, none refused', () => {
    const scheduler = new TestScheduler(() => undefined);
    const url = '/admin/api/2024-10/graphql.json';
    const sent: number[] = [];
    const errors: string[] = [];
    let limiter!: ReturnType<typeof createLimiter>;
    scheduler.run(() => {
      limiter = createLimiter({ provider: providers.shopify({ api: 'graphql' }), key: 'shop-40', scheduler });
      for (let i = 0; i <= 10; i++)
        scheduler.schedule(() => {
          new Observable((s) => {
            sent.push(scheduler.now());
            s.next(responseLike(200, {}, i === 0 ? status(40, 30) : status(1000, 1000)));
            s.complete();
          })
            .pipe(rateLimit(limiter, { method: 'POST', url }, { maxRetries: 0 }))
            .subscribe({ error: (e: Error) => errors.push(`#${i} ${e.name}@${scheduler.now()}`) });
        }, i * 1000);
    });
    // Before, the 40 became the bucket's limit and each query of 50 failed at once with
    // CostExceedsLimitError, unsent, until the bucket was evicted (ten idle minutes).
    expect(errors).toEqual([]);
    expect(sent).toHaveLength(11);
    // Each goes when asked: 30 were available at 0, and 50 a second come back.
    expect(sent.slice(1)).toEqual(Array.from({ length: 10 }, (_, i) => (i + 1) * 1000));
    expect(limiter.snapshot.buckets.find((b) => b.name === 'graphql')).toMatchObject({ limit: 1000 });
    void limiter.close();
  });
});
