import { describe, expect, it } from '@jest/globals';

import { engineAt, T0 } from './helpers.js';

const AUTH = { Authorization: 'ApiKey tenant-key' };
const call = (path = '/api/v1/jobs') => ({ provider: 'teos', path, headers: AUTH });
const MINUTE = 60_000;
const HOUR = 3_600_000;
/** .NET DateTime.ToString("o") of a UTC time: seven fractional digits and Z. */
const ROUND_TRIP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}Z$/;
const iso7 = (ms: number) => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');

describe('simulator: teos', () => {
  it('sends the X-Rate-Limit-* headers only once enough calls have been made to an endpoint (headersAfter, default 3)', () => {
    const { engine } = engineAt();
    expect(engine.handle(call()).headers['X-Rate-Limit-Limit']).toBeUndefined();
    expect(engine.handle(call()).headers['X-Rate-Limit-Remaining']).toBeUndefined();
    const third = engine.handle(call());
    expect(third.headers).toMatchObject({
      'X-Rate-Limit-Limit': '1m',
      'X-Rate-Limit-Remaining': '97',
      'X-Rate-Limit-Reset': '2026-01-01T00:01:00.0000000Z',
    });
    // Another endpoint has not had enough calls yet.
    expect(engine.handle(call('/api/v1/sites')).headers['X-Rate-Limit-Limit']).toBeUndefined();
    const { engine: one } = engineAt({ teos: { headersAfter: 1 } });
    expect(one.handle(call('/api/v1/jobs/7')).headers['X-Rate-Limit-Remaining']).toBe('99');
  });

  it('formats X-Rate-Limit-Reset as ISO 8601 UTC in the .NET round-trip ("o") form', () => {
    const { engine } = engineAt({ teos: { headersAfter: 1 } }, T0 + 1234.56789);
    const reset = engine.handle(call()).headers['X-Rate-Limit-Reset']!;
    expect(reset).toMatch(ROUND_TRIP);
    expect(reset).toBe('2026-01-01T00:01:01.2345679Z'); // rounded up to the 100 ns tick
  });

  it('answers 429 past 100 calls per minute; calls made while throttled count and push the reset further', () => {
    const { engine, clock } = engineAt({ teos: { perMinute: 2, headersAfter: 1 } });
    expect(engine.handle(call()).status).toBe(200); // T0
    clock.set(T0 + 10_000);
    const second = engine.handle(call());
    expect(second.headers['X-Rate-Limit-Remaining']).toBe('0');
    expect(second.headers['X-Rate-Limit-Reset']).toBe(iso7(T0 + MINUTE)); // the oldest call leaves the minute
    clock.set(T0 + 20_000);
    const throttled = engine.handle(call());
    expect(throttled.status).toBe(429);
    expect(throttled.headers['X-Rate-Limit-Limit']).toBe('1m');
    expect(throttled.headers['X-Rate-Limit-Reset']).toBe(iso7(T0 + 10_000 + MINUTE)); // its own call counts
    // Without counting the throttled call, one call would be in the last minute here and this would pass.
    clock.set(T0 + MINUTE);
    const again = engine.handle(call());
    expect(again.status).toBe(429);
    expect(again.headers['X-Rate-Limit-Reset']).toBe(iso7(T0 + 20_000 + MINUTE)); // pushed further
    clock.set(T0 + 20_000 + MINUTE - 1);
    expect(engine.handle(call()).status).toBe(429); // hammering before the reset...
    clock.set(T0 + 20_000 + MINUTE);
    expect(engine.handle(call()).status).toBe(429); // ...moved it again
    expect(engine.statsFor('teos', AUTH.Authorization)).toEqual({
      ok: 2,
      limited: 4,
      blocked: 0,
      sentWhileLimited: 3,
      total: 6,
    });
    clock.set(T0 + 2 * MINUTE + 20_000); // the last two calls (T0+80 s - 1 ms, T0+80 s) have left
    expect(engine.handle(call()).status).toBe(200);
  });

  it('without hammering, the call at the reported reset succeeds', () => {
    const { engine, clock } = engineAt({ teos: { perMinute: 2, headersAfter: 1 } });
    engine.handle(call());
    clock.set(T0 + 10_000);
    engine.handle(call());
    clock.set(T0 + 20_000);
    const throttled = engine.handle(call());
    expect(throttled.status).toBe(429);
    clock.set(Date.parse(throttled.headers['X-Rate-Limit-Reset']!));
    expect(engine.handle(call()).status).toBe(200);
  });

  it('enforces 10,000 per rolling 24 hours (a sliding log), reported as "1d" when it is the most constraining', () => {
    const { engine, clock } = engineAt({ teos: { perDay: 3, headersAfter: 1 } });
    const first = engine.handle(call());
    expect(first.headers['X-Rate-Limit-Limit']).toBe('1d'); // 2 left for the day vs 99 for the minute
    expect(first.headers['X-Rate-Limit-Remaining']).toBe('2');
    clock.set(T0 + HOUR);
    engine.handle(call());
    clock.set(T0 + 2 * HOUR);
    engine.handle(call());
    clock.set(T0 + 3 * HOUR);
    const res = engine.handle(call());
    expect(res.status).toBe(429);
    expect(res.headers['X-Rate-Limit-Limit']).toBe('1d');
    expect(res.headers['X-Rate-Limit-Remaining']).toBe('0');
    expect(res.headers['X-Rate-Limit-Reset']).toBe(iso7(T0 + HOUR + 24 * HOUR)); // 4 calls logged: 2 must leave
    expect(res.body).toBe('API calls quota exceeded! maximum admitted 3 per 1d.');
    clock.set(T0 + 25 * HOUR - 1);
    const again = engine.handle(call());
    expect(again.status).toBe(429);
    expect(again.headers['X-Rate-Limit-Reset']).toBe(iso7(T0 + 2 * HOUR + 24 * HOUR)); // pushed: its own call counts
    // Rolling: at T0 + 26 h the calls of T0, 1 h and 2 h have left; 3 h and 25 h - 1 ms remain.
    clock.set(T0 + 26 * HOUR);
    expect(engine.handle(call()).status).toBe(200);
  });

  it('defaults to 100 per minute and 10,000 per day, and picks the minute as most constraining', () => {
    const { engine, clock } = engineAt({ teos: { headersAfter: 1 } });
    for (let i = 0; i < 100; i++) expect(engine.handle(call()).status).toBe(200);
    const res = engine.handle(call());
    expect(res.status).toBe(429);
    expect(res.headers['X-Rate-Limit-Limit']).toBe('1m');
    expect(res.body).toBe('API calls quota exceeded! maximum admitted 100 per 1m.');
    clock.advance(MINUTE);
    const ok = engine.handle(call());
    expect(ok.status).toBe(200);
    expect(ok.headers['X-Rate-Limit-Remaining']).toBe('99');
  });

  it('follows limit changes, and scales periods with timeScale', () => {
    const { engine, clock } = engineAt({
      teos: { headersAfter: 1 },
      limitChanges: [{ at: T0 + 1, provider: 'teos', set: { perMinute: 1 } }],
    });
    engine.handle(call());
    clock.advance(1);
    expect(engine.handle(call()).status).toBe(429);

    const fast = engineAt({ timeScale: 60, teos: { headersAfter: 1 } }).engine;
    const res = fast.handle(call());
    expect(res.headers['X-Rate-Limit-Limit']).toBe('1s'); // a minute lasts 1 s
    expect(res.headers['X-Rate-Limit-Reset']).toBe(iso7(T0 + 1000));
  });
});
