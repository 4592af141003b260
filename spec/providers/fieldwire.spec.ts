import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, map, timer } from 'rxjs';
import {
  createLimiter,
  responseLike,
  throttleByHeaders,
  type LimiterSnapshot,
  type ResponseLike,
} from '../../lib/index.js';
import { endpointKey, endpointPath, normalizeEndpointKey } from '../../lib/providers/endpoint.js';
import { fieldwire, fieldwireEndpoint, type FieldwireOptions } from '../../lib/providers/fieldwire.js';
import { inVirtualTime } from '../helpers/virtual.js';

// Verbatim from seeds/fieldwire-rate-limits.txt.
const ENDPOINT_BODY = `{
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
const LEGACY_BODY = `{
"error": true,
"request_retry_after": "2026-01-01 00:00:00 UTC"
}`;
const NEW_YEAR = Date.UTC(2026, 0, 1);
const NEW_YEAR_S = String(NEW_YEAR / 1000);

const TASKS = {
  method: 'GET',
  url: 'https://client-api.us.fieldwire.com/api/v3/projects/9f1c2e4a-1b2c-4d5e-8f90-123456789abc/tasks?page=2',
};
const KEY = 'GET /projects/:id/tasks';
const read = (
  status: number,
  headers: Record<string, string>,
  body?: unknown,
  info = TASKS,
  options: FieldwireOptions = {},
) => fieldwire(options).read(responseLike(status, headers, body), info);
const endpointHeaders = (minuteLeft: string, hourLeft: string, reset = '0') => ({
  'ratelimit-limit-minute': '50',
  'ratelimit-remaining-minute': minuteLeft,
  'ratelimit-limit-hour': '3000',
  'ratelimit-remaining-hour': hourLeft,
  'ratelimit-reset': reset,
});

describe('Fieldwire endpoint keys', () => {
  it.each([
    [{ method: 'get', url: '/projects/123/tasks' }, 'GET /projects/:id/tasks'],
    [{ url: '/projects/123/tasks/' }, 'GET /projects/:id/tasks'],
    [TASKS, 'GET /projects/:id/tasks'],
    [
      { method: 'PATCH', url: '/api/v3/projects/1/tasks/7c9e6679-7425-40de-944b-e07fc1f90ae7' },
      'PATCH /projects/:id/tasks/:id',
    ],
    [{ method: 'POST', url: '/api/v3/projects/507f1f77bcf86cd799439011/sheets#top' }, 'POST /projects/:id/sheets'],
    [{ method: 'GET', url: '/api/v3/account/projects/facadebeefdeadfeed' }, 'GET /account/projects/facadebeefdeadfeed'],
    [{ method: 'GET', url: '//projects//42' }, 'GET /projects/:id'],
    [{ method: 'GET', url: '/api/v3x/projects' }, 'GET /api/v3x/projects'],
    [{}, 'GET /'],
  ])('%j → %s', (info, key) => {
    expect(fieldwireEndpoint(info)).toBe(key);
  });

  it('the shared normaliser keeps the API prefix and reads hand-written keys', () => {
    expect(endpointPath('https://h/api/v3/projects/42?x=1')).toBe('/api/v3/projects/:id');
    expect(endpointKey({ method: 'delete', url: 'projects/{project_id}' })).toBe('DELETE /projects/:id');
    expect(normalizeEndpointKey('get /projects/{project_id}/tasks')).toBe('GET /projects/:id/tasks');
    expect(normalizeEndpointKey('/projects')).toBeUndefined();
  });
});

describe('providers.fieldwire: reading responses', () => {
  it('reads the per-endpoint headers into the minute and hour buckets (ratelimit-reset 0: no reset)', () => {
    expect(read(200, endpointHeaders('49', '2999'))).toEqual({
      outcome: 'ok',
      buckets: [
        { name: `${KEY}:minute`, limit: 50, remaining: 49 },
        { name: `${KEY}:hour`, limit: 3000, remaining: 2999 },
      ],
    });
  });

  it('gives ratelimit-reset to the window that is empty', () => {
    expect(read(200, endpointHeaders('0', '2950', NEW_YEAR_S)).buckets).toEqual([
      { name: `${KEY}:minute`, limit: 50, remaining: 0, reset: { at: NEW_YEAR } },
      { name: `${KEY}:hour`, limit: 3000, remaining: 2950 },
    ]);
  });

  it('reads the catch-all tier: X-RateLimit-* with a unix-seconds reset, a 429 without body holds catch-all', () => {
    const headers = { 'X-RateLimit-Limit': '3000', 'X-RateLimit-Remaining': '0', 'X-RateLimit-Reset': NEW_YEAR_S };
    expect(read(429, headers)).toEqual({
      outcome: 'limited',
      buckets: [{ name: 'catch-all', limit: 3000, remaining: 0, reset: { at: NEW_YEAR } }],
      retryAfter: { at: NEW_YEAR },
      retrySource: 'reset',
      limitedBy: 'catch-all',
    });
    expect(read(200, { ...headers, 'X-RateLimit-Remaining': '2999' })).toEqual({
      outcome: 'ok',
      buckets: [{ name: 'catch-all', limit: 3000, remaining: 2999, reset: { at: NEW_YEAR } }],
    });
  });

  it('reads the documented per-endpoint 429 body (string or parsed): throttled_by hour holds that bucket', () => {
    for (const body of [ENDPOINT_BODY, JSON.parse(ENDPOINT_BODY) as unknown]) {
      expect(read(429, {}, body)).toEqual({
        outcome: 'limited',
        buckets: [
          { name: `${KEY}:minute`, limit: 50 },
          // The throttled window resets when the body says the next request may go.
          { name: `${KEY}:hour`, limit: 3000, reset: { at: NEW_YEAR } },
        ],
        retryAfter: { at: NEW_YEAR },
        retrySource: 'body',
        limitedBy: `${KEY}:hour`,
      });
    }
  });

  it('ranks the retry time: retry-after, then request_retry_after, then ratelimit-reset', () => {
    const inHour = String(NEW_YEAR / 1000 + 3600);
    const headers = { ...endpointHeaders('12', '0', inHour), 'retry-after': '42' };
    expect(read(429, headers, ENDPOINT_BODY)).toMatchObject({
      retryAfter: { delayMs: 42_000 },
      retrySource: 'retry-after',
      limitedBy: `${KEY}:hour`,
    });
    const { 'retry-after': _, ...noRetryAfter } = headers;
    expect(read(429, noRetryAfter, ENDPOINT_BODY)).toMatchObject({ retryAfter: { at: NEW_YEAR }, retrySource: 'body' });
    const minute = JSON.parse(ENDPOINT_BODY) as {
      errors: Array<{ message?: string; details: Record<string, unknown> }>;
    };
    delete minute.errors[0]!.details['request_retry_after'];
    delete minute.errors[0]!.message;
    minute.errors[0]!.details['throttled_by'] = 'minute';
    const r = read(429, endpointHeaders('0', '2990', inHour), minute);
    expect(r).toEqual({
      outcome: 'limited',
      buckets: [
        { name: `${KEY}:minute`, limit: 50, remaining: 0, reset: { at: NEW_YEAR + 3_600_000 } },
        { name: `${KEY}:hour`, limit: 3000, remaining: 2990 },
      ],
      retryAfter: { at: NEW_YEAR + 3_600_000 },
      retrySource: 'reset',
      limitedBy: `${KEY}:minute`,
    });
  });

  it('falls back to the time in the message, and to the headers when the body names no window', () => {
    const body = JSON.parse(ENDPOINT_BODY) as { errors: Array<{ details: Record<string, unknown> }> };
    delete body.errors[0]!.details['request_retry_after'];
    expect(read(429, {}, body)).toMatchObject({ retryAfter: { at: NEW_YEAR }, retrySource: 'body' });
    delete body.errors[0]!.details['throttled_by'];
    expect(read(429, endpointHeaders('0', '5'), body)).toMatchObject({ limitedBy: `${KEY}:minute` });
    expect(read(429, endpointHeaders('3', '5'), body)).not.toHaveProperty('limitedBy');
  });

  it('reads the documented legacy 429: body time first, else the X-RateLimit-Reset timestamp; holds the endpoint minute', () => {
    const headers = { 'X-RateLimit-Reset': '2026-01-01 00:00:30 UTC' };
    for (const body of [LEGACY_BODY, JSON.parse(LEGACY_BODY) as unknown]) {
      expect(read(429, headers, body)).toEqual({
        outcome: 'limited',
        buckets: [],
        retryAfter: { at: NEW_YEAR },
        retrySource: 'body',
        limitedBy: `${KEY}:minute`,
      });
    }
    expect(read(429, headers)).toEqual({
      outcome: 'limited',
      buckets: [],
      retryAfter: { at: NEW_YEAR + 30_000 },
      retrySource: 'reset',
      limitedBy: `${KEY}:minute`,
    });
    expect(read(429, { 'X-RateLimit-Reset': NEW_YEAR_S }, '{"error": true}')).toMatchObject({
      retryAfter: { at: NEW_YEAR },
      retrySource: 'reset',
    });
  });

  it('a 429 with nothing to go by holds the endpoint minute for a legacy endpoint, else pauses everything', () => {
    expect(read(429, {}, undefined, TASKS, { legacy: ['GET /api/v3/projects/{project_id}/tasks'] })).toEqual({
      outcome: 'limited',
      buckets: [],
      limitedBy: `${KEY}:minute`,
    });
    expect(read(429, {})).toEqual({ outcome: 'limited', buckets: [] });
  });

  it('says nothing for garbage and never throws on any body', () => {
    const hostile = new Proxy(
      {},
      {
        get: () => {
          throw new Error('boom');
        },
      },
    );
    const circular: Record<string, unknown> = {};
    circular['errors'] = [circular];
    expect(
      read(200, {
        ...endpointHeaders('x', 'y', 'z'),
        'ratelimit-limit-minute': '',
        'ratelimit-limit-hour': 'lots',
        'X-RateLimit-Limit': 'NaN',
        'X-RateLimit-Reset': '-1',
      }),
    ).toEqual({ outcome: 'ok', buckets: [] });
    for (const body of [
      '{"errors": 5}',
      '{"errors": [null, 1, {"details": "x"}]}',
      { errors: [{ details: { throttled_by: 'year', endpoint_minute_limit: -3 } }] },
      hostile,
      circular,
      '{oops',
      'x'.repeat(100_000),
      0,
      false,
    ]) {
      expect(() => read(429, { 'retry-after': 'later', 'ratelimit-reset': 'never' }, body)).not.toThrow();
      expect(read(429, {}, body)).toMatchObject({ outcome: 'limited', buckets: [] });
    }
  });
});

describe('providers.fieldwire: buckets and options', () => {
  it('counts every request against catch-all and its endpoint minute and hour (no limit until told)', () => {
    expect(fieldwire().buckets(TASKS)).toEqual([
      { name: 'catch-all', limit: 3000, windowMs: 300_000, rolling: true },
      { name: `${KEY}:minute`, windowMs: 60_000 },
      { name: `${KEY}:hour`, windowMs: 3_600_000 },
    ]);
    expect(
      fieldwire()
        .buckets({ method: 'POST', url: '/api/v3/projects/1/sheets' })
        .map((b) => b.name),
    ).toEqual(['catch-all', 'POST /projects/:id/sheets:minute', 'POST /projects/:id/sheets:hour']);
  });

  it('takes per-endpoint hints in any spelling, hints by bucket name, and extra buckets', () => {
    const p = fieldwire({
      endpoints: { 'get /api/v3/projects/{project_id}/tasks': { minute: 50, hour: 3000 } },
      hints: { 'catch-all': { limit: 1500 }, 'GET /projects/{id}/tasks:hour': { limit: 2000 } },
      extraBuckets: [{ name: 'mine', limit: 10, windowMs: 1000 }],
    });
    expect(p.name).toBe('fieldwire');
    expect(p.buckets(TASKS)).toEqual([
      { name: 'catch-all', limit: 1500, windowMs: 300_000, rolling: true },
      { name: `${KEY}:minute`, limit: 50, windowMs: 60_000 },
      { name: `${KEY}:hour`, limit: 2000, windowMs: 3_600_000 },
      { name: 'mine', limit: 10, windowMs: 1000 },
    ]);
  });

  it.each([
    [
      { endpoints: { '/projects': { minute: 5 } } },
      /option `endpoints\.\/projects` must be an endpoint key "METHOD \/path"/,
    ],
    [{ endpoints: { 'GET /projects': { minute: -5 } } }, /option `endpoints\.GET \/projects\.minute`/],
    [{ endpoints: { 'GET /projects': { day: 5 } } }, /unknown option `day`/],
    [{ legacy: ['GET'] }, /option `legacy\.0` must be an endpoint key/],
    [{ legacy: 'GET /projects' }, /option `legacy`/],
    [{ legacyLimits: { 'GET /x': { limit: 10, windowMs: 0 } } }, /option `legacyLimits\.GET \/x\.windowMs`/],
    [{ legacyLimits: { 'GET /x': { limit: 2.5, windowMs: 1000 } } }, /option `legacyLimits\.GET \/x\.limit`/],
    [{ legacyLimits: { 'GET /x': { limit: 10 } } }, /option `legacyLimits\.GET \/x\.windowMs`/],
    [{ legacyLimits: { '/x': { limit: 10, windowMs: 1000 } } }, /option `legacyLimits\.\/x` must be an endpoint key/],
    [{ hints: { default: {} } }, /option `hints\.default` must be keyed by a bucket name/],
    [{ extraBuckets: [{ name: 'catch-all' }] }, /option `extraBuckets\.0\.name`/],
  ])('rejects bad options with a TypeError naming them (%j)', (options, message) => {
    expect(() => fieldwire(options as never)).toThrow(TypeError);
    expect(() => fieldwire(options as never)).toThrow(message);
  });
});

describe('providers.fieldwire with a limiter (virtual time)', () => {
  it('a 429 throttled_by hour holds only that endpoint: another endpoint still goes', () => {
    const SHEETS = { method: 'GET', url: '/api/v3/projects/42/sheets' };
    const { snapshot, sent } = inVirtualTime(() => {
      const limiter = createLimiter({ provider: fieldwire(), key: 'fieldwire-token' });
      const sent: Array<[string, number]> = [];
      const call = (res: ResponseLike, info: { method: string; url: string }) =>
        defer(() => {
          sent.push([fieldwireEndpoint(info), asyncScheduler.now()]);
          return timer(10).pipe(map(() => res));
        }).pipe(throttleByHeaders(limiter, info));
      call(responseLike(429, { 'retry-after': '60' }, ENDPOINT_BODY), TASKS).subscribe();
      let snapshot: LimiterSnapshot | undefined;
      asyncScheduler.schedule(() => {
        snapshot = limiter.snapshot;
        call(responseLike(200, endpointHeaders('49', '2999')), TASKS).subscribe();
        call(responseLike(200, {}), SHEETS).subscribe();
      }, 20);
      return {
        get snapshot() {
          return snapshot;
        },
        sent,
      };
    });
    expect(snapshot?.pausedUntil).toBeNull();
    expect(snapshot?.buckets.find((b) => b.name === `${KEY}:hour`)).toMatchObject({
      limit: 3000,
      remaining: 0,
      resetAt: 10 + 60_000,
    });
    expect(snapshot?.buckets.find((b) => b.name === `${KEY}:minute`)).toMatchObject({ limit: 50 });
    expect(sent.filter(([k]) => k === 'GET /projects/:id/sheets').map(([, t]) => t)).toEqual([20]);
    const tasks = sent.filter(([k]) => k === KEY).map(([, t]) => t);
    expect(tasks).toHaveLength(2);
    expect(tasks[0]).toBe(0);
    expect(tasks[1]).toBeGreaterThanOrEqual(10 + 60_000);
  });
});
