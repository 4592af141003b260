import { describe, expect, it } from '@jest/globals';

import { engineAt, T0 } from './helpers.js';

// The sample body of the Planning Center doc (seeds/planning-center-rate-limits.txt), as laid out there.
const DOC_SAMPLE_BODY = `{
"errors": [
{
"code": "429",
"detail": "Rate limit exceeded: 118 of 100 requests per 20 seconds"
}
]
}`;
const AUTH = { Authorization: 'Bearer pco-user' };
const get = (query?: Record<string, string>) => ({
  provider: 'planningCenter',
  path: '/people/v2/me',
  headers: AUTH,
  query,
});

describe('simulator: planningCenter', () => {
  it('sends the three X-PCO-API-Request-Rate-* headers on every response', () => {
    const { engine } = engineAt();
    const res = engine.handle(get());
    expect(res.status).toBe(200);
    expect(res.headers).toMatchObject({
      'X-PCO-API-Request-Rate-Limit': '100',
      'X-PCO-API-Request-Rate-Period': '20 seconds',
      'X-PCO-API-Request-Rate-Count': '1',
    });
    expect(res.headers['Retry-After']).toBeUndefined();
  });

  it("reproduces the doc's 429 sample: count 118 of 100, retry-after 19, the JSON body", () => {
    const { engine, clock } = engineAt();
    for (let i = 0; i < 100; i++) expect(engine.handle(get()).status).toBe(200);
    clock.advance(1000);
    let res = engine.handle(get());
    for (let i = 102; i <= 118; i++) res = engine.handle(get());
    expect(res.status).toBe(429);
    expect(res.headers).toMatchObject({
      'Content-Type': 'application/json',
      'X-PCO-API-Request-Rate-Count': '118', // the count exceeds the limit: rejected requests count
      'X-PCO-API-Request-Rate-Limit': '100',
      'X-PCO-API-Request-Rate-Period': '20 seconds',
      'Retry-After': '19',
    });
    expect(res.body).toBe(
      '{"errors":[{"code":"429","detail":"Rate limit exceeded: 118 of 100 requests per 20 seconds"}]}',
    );
    expect(JSON.parse(res.body)).toEqual(JSON.parse(DOC_SAMPLE_BODY));
  });

  it("with jsonLayout 'doc' the body is the doc's sample byte for byte", () => {
    const { engine, clock } = engineAt({ jsonLayout: 'doc' });
    for (let i = 0; i < 100; i++) engine.handle(get());
    clock.advance(1000);
    let res = engine.handle(get());
    for (let i = 102; i <= 118; i++) res = engine.handle(get());
    expect(res.body).toBe(DOC_SAMPLE_BODY);
  });

  it('starts the period at its first request (no aligned boundary), Retry-After rounds up', () => {
    const { engine, clock } = engineAt({ planningCenter: { limit: 1 } }, T0 + 5_000);
    expect(engine.handle(get()).status).toBe(200);
    clock.advance(19_500);
    const res = engine.handle(get());
    expect(res.status).toBe(429);
    expect(res.headers['Retry-After']).toBe('1'); // 0.5 s left
    expect(res.headers['X-PCO-API-Request-Rate-Count']).toBe('2');
    clock.advance(499);
    expect(engine.handle(get()).status).toBe(429);
    clock.advance(1); // 20 s after the first request
    const fresh = engine.handle(get());
    expect(fresh.status).toBe(200);
    expect(fresh.headers['X-PCO-API-Request-Rate-Count']).toBe('1');
  });

  it('keeps counting rejected requests so the count can exceed the limit', () => {
    const { engine } = engineAt({ planningCenter: { limit: 2 } });
    const counts = Array.from({ length: 5 }, () => engine.handle(get()).headers['X-PCO-API-Request-Rate-Count']);
    expect(counts).toEqual(['1', '2', '3', '4', '5']);
    expect(engine.statsFor('planningCenter', AUTH.Authorization)).toMatchObject({
      ok: 2,
      limited: 3,
      sentWhileLimited: 2,
    });
  });

  it('gives requests with offset > 30000 the stricter 75 limit, in their own counter', () => {
    const { engine } = engineAt();
    const high = { offset: '30001' };
    for (let i = 0; i < 75; i++) expect(engine.handle(get(high)).status).toBe(200);
    const res = engine.handle(get(high));
    expect(res.status).toBe(429);
    expect(res.headers['X-PCO-API-Request-Rate-Limit']).toBe('75');
    expect(res.headers['X-PCO-API-Request-Rate-Count']).toBe('76');
    expect(JSON.parse(res.body).errors[0].detail).toBe('Rate limit exceeded: 76 of 75 requests per 20 seconds');
    // offset 30000 is not "above 30,000": the normal counter, still untouched.
    const normal = engine.handle(get({ offset: '30000' }));
    expect(normal.status).toBe(200);
    expect(normal.headers['X-PCO-API-Request-Rate-Limit']).toBe('100');
    expect(normal.headers['X-PCO-API-Request-Rate-Count']).toBe('1');
    // An offset in the path's query string works too.
    const inPath = engine.handle({ provider: 'planningCenter', path: '/people/v2/people?offset=40000', headers: AUTH });
    expect(inPath.headers['X-PCO-API-Request-Rate-Limit']).toBe('75');
  });

  it('follows limit changes (both limits) without notice', () => {
    const { engine, clock } = engineAt({
      planningCenter: { limit: 100, highOffsetLimit: 75 },
      limitChanges: [{ at: T0 + 1000, provider: 'planningCenter', set: { limit: 3, highOffsetLimit: 2 } }],
    });
    engine.handle(get());
    engine.handle(get());
    clock.advance(1000);
    const res = engine.handle(get());
    expect(res.headers['X-PCO-API-Request-Rate-Limit']).toBe('3');
    expect(res.status).toBe(200);
    expect(engine.handle(get()).status).toBe(429);
    expect(engine.handle(get({ offset: '50000' })).headers['X-PCO-API-Request-Rate-Limit']).toBe('2');
  });

  it('scales the period with timeScale and reports it in real seconds', () => {
    const { engine, clock } = engineAt({ timeScale: 10, planningCenter: { limit: 1 } });
    expect(engine.handle(get()).headers['X-PCO-API-Request-Rate-Period']).toBe('2 seconds');
    const res = engine.handle(get());
    expect(res.headers['Retry-After']).toBe('2');
    expect(JSON.parse(res.body).errors[0].detail).toBe('Rate limit exceeded: 2 of 1 requests per 2 seconds');
    clock.advance(2000);
    expect(engine.handle(get()).status).toBe(200);

    const fast = engineAt({ timeScale: 1000 }).engine;
    expect(fast.handle(get()).headers['X-PCO-API-Request-Rate-Period']).toBe('0.02 seconds');
  });
});
