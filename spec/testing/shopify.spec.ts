import { describe, expect, it } from '@jest/globals';

import { engineAt } from './helpers.js';

const AUTH = { 'X-Shopify-Access-Token': 'x', Authorization: 'Bearer shpat_test' };
const REST = '/admin/api/2024-10/products.json';
const GRAPHQL = '/admin/api/2024-10/graphql.json';
const cost = (requested: number, actual?: number) => ({
  ...AUTH,
  'x-simulated-query-cost': String(requested),
  ...(actual === undefined ? {} : { 'x-simulated-actual-cost': String(actual) }),
});

describe('simulator: shopify REST Admin API', () => {
  it('each request puts 1 in a bucket of 40: X-Shopify-Shop-Api-Call-Limit counts up, the 41st is a 429', () => {
    const { engine } = engineAt();
    const get = () => engine.handle({ provider: 'shopify', path: REST, headers: AUTH });
    for (let i = 1; i <= 40; i++) expect(get().headers['X-Shopify-Shop-Api-Call-Limit']).toBe(`${i}/40`);
    const refused = get();
    expect(refused.status).toBe(429);
    expect(refused.headers).toMatchObject({ 'X-Shopify-Shop-Api-Call-Limit': '40/40', 'Retry-After': '0.5' });
    expect(JSON.parse(refused.body)).toEqual({
      errors: 'Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.',
    });
    expect(engine.statsFor('shopify', AUTH.Authorization)).toMatchObject({ ok: 40, limited: 1 });
  });

  it('the bucket leaks 2 a second, continuously: room for one after 500 ms, used rounded up', () => {
    const { engine, clock } = engineAt({ shopify: { restBucket: 4 } });
    const get = () => engine.handle({ provider: 'shopify', path: REST, headers: AUTH });
    for (let i = 0; i < 4; i++) get();
    clock.advance(250);
    expect(get().status).toBe(429);
    clock.advance(250);
    expect(get().headers['X-Shopify-Shop-Api-Call-Limit']).toBe('4/4');
    clock.advance(1300);
    // 4 − 2.6 = 1.4 used: reported as 2.
    expect(get().headers['X-Shopify-Shop-Api-Call-Limit']).toBe('3/4');
  });

  it('with timeScale the bucket leaks that many times faster', () => {
    const { engine, clock } = engineAt({ timeScale: 10, shopify: { restBucket: 1 } });
    const get = () => engine.handle({ provider: 'shopify', path: REST, headers: AUTH });
    expect(get().status).toBe(200);
    clock.advance(49);
    expect(get().status).toBe(429);
    clock.advance(1);
    expect(get().status).toBe(200);
  });
});

describe('simulator: shopify GraphQL Admin API', () => {
  it('every answer carries extensions.cost; the bucket takes the actual cost', () => {
    const { engine } = engineAt();
    const res = engine.handle({ provider: 'shopify', method: 'POST', path: GRAPHQL, headers: cost(101, 46) });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      data: {},
      extensions: {
        cost: {
          requestedQueryCost: 101,
          actualQueryCost: 46,
          throttleStatus: { maximumAvailable: 1000, currentlyAvailable: 954, restoreRate: 50 },
        },
      },
    });
  });

  it('a query whose requested cost is not available is THROTTLED in a 200 and takes nothing', () => {
    const { engine, clock } = engineAt();
    const q = (n: number) => engine.handle({ provider: 'shopify', method: 'POST', path: GRAPHQL, headers: cost(n) });
    expect(q(990).status).toBe(200);
    const throttled = q(20);
    expect(throttled.status).toBe(200);
    expect(JSON.parse(throttled.body)).toMatchObject({
      errors: [{ message: 'Throttled', extensions: { code: 'THROTTLED' } }],
      extensions: {
        cost: { requestedQueryCost: 20, actualQueryCost: null, throttleStatus: { currentlyAvailable: 10 } },
      },
    });
    expect(engine.statsFor('shopify', AUTH.Authorization)).toMatchObject({ ok: 1, limited: 1 });
    clock.advance(200); // 10 more points
    expect(JSON.parse(q(20).body)).not.toHaveProperty('errors');
  });

  it('a query above the single-query maximum is MAX_COST_EXCEEDED, not a throttle', () => {
    const { engine } = engineAt();
    const res = engine.handle({ provider: 'shopify', method: 'POST', path: GRAPHQL, headers: cost(1001) });
    expect(JSON.parse(res.body)).toMatchObject({ errors: [{ extensions: { code: 'MAX_COST_EXCEEDED' } }] });
    expect(engine.statsFor('shopify', AUTH.Authorization)).toMatchObject({ ok: 1, limited: 0 });
  });

  it('REST and GraphQL are separate buckets; a request without a credential is refused', () => {
    const { engine } = engineAt({ shopify: { restBucket: 1 } });
    expect(engine.handle({ provider: 'shopify', path: REST, headers: AUTH }).status).toBe(200);
    expect(engine.handle({ provider: 'shopify', path: REST, headers: AUTH }).status).toBe(429);
    expect(engine.handle({ provider: 'shopify', method: 'POST', path: GRAPHQL, headers: cost(5) }).status).toBe(200);
    expect(engine.handle({ provider: 'shopify', path: REST }).status).toBe(401);
  });

  it('a bad option names it', () => {
    expect(() => engineAt({ shopify: { restBucket: 0 } })).toThrow(/shopify\.restBucket/);
    expect(() => engineAt({ shopify: { graphqlPerSecond: -1 } })).toThrow(/shopify\.graphqlPerSecond/);
  });
});
