import { describe, expect, it } from '@jest/globals';

import { engineAt, T0, unix } from './helpers.js';

// The two bodies of the Fieldwire doc (seeds/fieldwire-rate-limits.txt), as laid out there.
const DOC_ENDPOINT_BODY = `{
"errors": [
{
"type": "rate_limit_error",
"code": "rate_limit_exceeded",
"message": "Too many requests. Retry after 2026-01-01 00:00:00Z",
"details": {
"endpoint_hour_limit": 3000,
"endpoint_minute_limit": 50,
"request_retry_after": "2026-01-01 00:00:00Z",
"throttled_by": "hour"
}
}
]
}`;
const DOC_LEGACY_BODY = `{
"error": true,
"request_retry_after": "2026-01-01 00:00:00 UTC"
}`;
const AUTH = { Authorization: 'Token fieldwire-key' };
const call = (path: string, method = 'GET') => ({ provider: 'fieldwire', method, path, headers: AUTH });
const ENDPOINT_HEADERS = [
  'ratelimit-limit-minute',
  'ratelimit-remaining-minute',
  'ratelimit-limit-hour',
  'ratelimit-remaining-hour',
  'ratelimit-reset',
];

describe('simulator: fieldwire', () => {
  describe('tier 1: the catch-all', () => {
    it('answers 429 with X-RateLimit-Limit/-Remaining/-Reset (unix) and no body past 3000 per 5 minutes', () => {
      const { engine, clock } = engineAt({}, T0 + 60_000);
      for (let i = 0; i < 3000; i++) expect(engine.handle(call(`/projects/${i}`)).status).toBe(200);
      const res = engine.handle(call('/projects'));
      expect(res.status).toBe(429);
      expect(res.body).toBe('');
      expect(res.headers).toEqual({
        Date: 'Thu, 01 Jan 2026 00:01:00 GMT',
        'X-RateLimit-Limit': '3000',
        'X-RateLimit-Remaining': '0',
        'X-RateLimit-Reset': String(unix(T0 + 300_000)),
      });
      clock.set(T0 + 300_000); // the next 5-minute window
      expect(engine.handle(call('/projects')).status).toBe(200);
    });

    it('sends no rate-limit headers on ordinary responses of unconfigured endpoints', () => {
      const { engine } = engineAt();
      const res = engine.handle(call('/projects/5/tasks'));
      expect(res.status).toBe(200);
      expect(Object.keys(res.headers).sort()).toEqual(['Content-Type', 'Date']);
    });

    it('counts every endpoint, including ones limited per endpoint, and wins over tier 2', () => {
      const { engine } = engineAt({
        fieldwire: { catchAll: 3, endpoints: { 'GET /projects': { minute: 1, hour: 10 } } },
      });
      expect(engine.handle(call('/projects')).status).toBe(200);
      expect(engine.handle(call('/projects')).status).toBe(429); // tier 2, still counted by the catch-all
      expect(engine.handle(call('/sheets')).status).toBe(200);
      const res = engine.handle(call('/projects'));
      expect(res.status).toBe(429);
      expect(res.headers['X-RateLimit-Limit']).toBe('3');
      expect(res.body).toBe('');
      for (const h of ENDPOINT_HEADERS) expect(res.headers[h]).toBeUndefined();
    });
  });

  describe('tier 2: per endpoint', () => {
    const options = { fieldwire: { endpoints: { 'GET /projects/:id/tasks': { minute: 2, hour: 3 } } } };

    it('sends the five ratelimit-* headers on responses of limited endpoints; ratelimit-reset is 0 while not exceeded', () => {
      const { engine } = engineAt(options, T0 + 10_000);
      const res = engine.handle(call('/projects/42/tasks'));
      expect(res.status).toBe(200);
      expect(res.headers).toMatchObject({
        'ratelimit-limit-minute': '2',
        'ratelimit-remaining-minute': '1',
        'ratelimit-limit-hour': '3',
        'ratelimit-remaining-hour': '2',
        'ratelimit-reset': '0',
      });
      expect(res.headers['retry-after']).toBeUndefined();
      // Numeric and UUID segments are the same endpoint.
      const uuid = engine.handle(call('/projects/0b7f3c1e-2d4a-4f6b-9c8d-1a2b3c4d5e6f/tasks'));
      expect(uuid.headers['ratelimit-remaining-minute']).toBe('0');
      // Once used up, ratelimit-reset tells when the next request becomes available.
      expect(uuid.headers['ratelimit-reset']).toBe(String(unix(T0 + 60_000)));
      // Another method is another endpoint.
      expect(engine.handle(call('/projects/42/tasks', 'POST')).headers['ratelimit-limit-minute']).toBeUndefined();
    });

    it('answers 429 throttled_by "minute" with retry-after, ratelimit-reset and the JSON body', () => {
      const { engine, clock } = engineAt(options, T0 + 10_000);
      engine.handle(call('/projects/1/tasks'));
      engine.handle(call('/projects/1/tasks'));
      clock.advance(5_500);
      const res = engine.handle(call('/projects/1/tasks'));
      expect(res.status).toBe(429);
      expect(res.headers).toMatchObject({
        'ratelimit-limit-minute': '2',
        'ratelimit-remaining-minute': '0',
        'ratelimit-limit-hour': '3',
        'ratelimit-remaining-hour': '1',
        'ratelimit-reset': String(unix(T0 + 60_000)),
        'retry-after': '45', // 44.5 s rounded up
      });
      expect(JSON.parse(res.body)).toEqual({
        errors: [
          {
            type: 'rate_limit_error',
            code: 'rate_limit_exceeded',
            message: 'Too many requests. Retry after 2026-01-01 00:01:00Z',
            details: {
              endpoint_hour_limit: 3,
              endpoint_minute_limit: 2,
              request_retry_after: '2026-01-01 00:01:00Z',
              throttled_by: 'minute',
            },
          },
        ],
      });
      clock.set(T0 + 60_000);
      expect(engine.handle(call('/projects/1/tasks')).status).toBe(200); // the hour's last request
      const hour = engine.handle(call('/projects/1/tasks'));
      expect(hour.status).toBe(429);
      expect(JSON.parse(hour.body).errors[0].details.throttled_by).toBe('hour');
      expect(hour.headers['ratelimit-reset']).toBe(String(unix(T0 + 3_600_000)));
    });

    it("reproduces the doc's body byte for byte (jsonLayout 'doc'): 50/minute, 3000/hour, throttled by the hour", () => {
      const start = T0 - 3_600_000; // 2025-12-31T23:00:00Z
      const { engine, clock } = engineAt(
        { jsonLayout: 'doc', fieldwire: { endpoints: { 'GET /projects': { minute: 50, hour: 3000 } } } },
        start,
      );
      for (let minute = 0; minute < 60; minute++) {
        clock.set(start + minute * 60_000);
        for (let i = 0; i < 50; i++) expect(engine.handle(call('/projects')).status).toBe(200);
      }
      clock.set(start + 59 * 60_000 + 30_000);
      const res = engine.handle(call('/projects'));
      expect(res.status).toBe(429);
      expect(res.body).toBe(DOC_ENDPOINT_BODY);
      expect(res.headers['ratelimit-reset']).toBe(String(unix(T0)));
      expect(res.headers['retry-after']).toBe('30');
      expect(res.headers['ratelimit-remaining-hour']).toBe('0');
    });

    it('compact layout by default, same members in the same order', () => {
      const { engine } = engineAt({ fieldwire: { endpoints: { 'GET /projects': { minute: 0, hour: 10 } } } });
      const body = engine.handle(call('/projects')).body;
      expect(body.startsWith('{"errors":[{"type":"rate_limit_error","code":"rate_limit_exceeded","message":')).toBe(
        true,
      );
      expect(Object.keys(JSON.parse(body).errors[0].details)).toEqual([
        'endpoint_hour_limit',
        'endpoint_minute_limit',
        'request_retry_after',
        'throttled_by',
      ]);
    });

    it('follows endpoint limit changes (merged key by key)', () => {
      const { engine, clock } = engineAt({
        fieldwire: {
          endpoints: { 'GET /projects': { minute: 50, hour: 3000 }, 'GET /sheets': { minute: 5, hour: 5 } },
        },
        limitChanges: [
          { at: T0 + 1000, provider: 'fieldwire', set: { endpoints: { 'get /projects/': { minute: 1, hour: 2 } } } },
        ],
      });
      expect(engine.handle(call('/projects')).headers['ratelimit-limit-minute']).toBe('50');
      clock.advance(1000);
      const res = engine.handle(call('/projects'));
      expect(res.status).toBe(429);
      expect(res.headers['ratelimit-limit-minute']).toBe('1');
      expect(engine.handle(call('/sheets')).headers['ratelimit-limit-minute']).toBe('5');
    });
  });

  describe('legacy', () => {
    it('answers 429 with only X-RateLimit-Reset and the legacy body (doc layout byte for byte)', () => {
      const { engine } = engineAt(
        { jsonLayout: 'doc', fieldwire: { legacy: ['GET /legacy/:id'], legacyLimit: 2, legacyWindowMs: 60_000 } },
        T0 - 30_000,
      );
      const ok = engine.handle(call('/legacy/7'));
      expect(ok.status).toBe(200);
      expect(Object.keys(ok.headers).sort()).toEqual(['Content-Type', 'Date']);
      engine.handle(call('/legacy/8'));
      const res = engine.handle(call('/legacy/9'));
      expect(res.status).toBe(429);
      expect(res.body).toBe(DOC_LEGACY_BODY);
      expect(Object.keys(res.headers).sort()).toEqual(['Content-Type', 'Date', 'X-RateLimit-Reset']);
      expect(res.headers['X-RateLimit-Reset']).toBe(String(unix(T0)));
    });

    it('compact by default; a fixed window aligned to the clock', () => {
      const { engine, clock } = engineAt({ fieldwire: { legacy: ['POST /old'], legacyLimit: 1 } }, T0 + 59_000);
      expect(engine.handle(call('/old', 'POST')).status).toBe(200);
      const res = engine.handle(call('/old', 'POST'));
      expect(res.body).toBe('{"error":true,"request_retry_after":"2026-01-01 00:01:00 UTC"}');
      clock.advance(1000);
      expect(engine.handle(call('/old', 'POST')).status).toBe(200);
    });
  });
});
