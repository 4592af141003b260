import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, map, timer } from 'rxjs';
import {
  createLimiter,
  responseLike,
  throttleByHeaders,
  type LimiterSnapshot,
  type ResponseLike,
} from '../../lib/index.js';
import { procore } from '../../lib/providers/procore.js';
import { inVirtualTime } from '../helpers/virtual.js';

// Verbatim from seeds/procore-rate-limits.txt.
const SAMPLE = { 'X-Rate-Limit-Limit': '3600', 'X-Rate-Limit-Remaining': '3599', 'X-Rate-Limit-Reset': '1466182244' };
const BODY_429 = 'You have surpassed the max number of requests for an hour. Please wait until your limit resets.';
const SAMPLE_RESET_MS = Date.UTC(2016, 5, 17, 16, 50, 44); // 1466182244 s

const read = (status: number, headers: Record<string, string>, body?: unknown) =>
  procore().read(responseLike(status, headers, body), { method: 'GET', url: '/rest/v1.0/projects' });

describe('providers.procore: reading responses', () => {
  it.each([
    ['the documented sample', 200, SAMPLE, undefined, { limit: 3600, remaining: 3599, reset: { at: SAMPLE_RESET_MS } }],
    [
      'lower-case names',
      200,
      { 'x-rate-limit-limit': '3600', 'x-rate-limit-remaining': '12', 'x-rate-limit-reset': '1466182244' },
      undefined,
      { limit: 3600, remaining: 12, reset: { at: SAMPLE_RESET_MS } },
    ],
    [
      'a changed limit',
      200,
      { 'X-Rate-Limit-Limit': '1800', 'X-Rate-Limit-Remaining': '1799' },
      undefined,
      { limit: 1800, remaining: 1799 },
    ],
  ])('reads %s into the hourly bucket', (_, status, headers, body, expected) => {
    expect(read(status, headers, body)).toEqual({ outcome: 'ok', buckets: [{ name: 'hourly', ...expected }] });
  });

  it('reads the documented 429 (headers still present, plain-text body) as limited until the reset, for every stream', () => {
    const r = read(429, { ...SAMPLE, 'X-Rate-Limit-Remaining': '0' }, BODY_429);
    expect(r).toEqual({
      outcome: 'limited',
      buckets: [{ name: 'hourly', limit: 3600, remaining: 0, reset: { at: SAMPLE_RESET_MS } }],
      retryAfter: { at: SAMPLE_RESET_MS },
      retrySource: 'reset',
    });
    expect(r).not.toHaveProperty('limitedBy');
  });

  it('prefers Retry-After over the reset, and says no time when a 429 has neither', () => {
    expect(read(429, { ...SAMPLE, 'Retry-After': '30' }, BODY_429)).toMatchObject({
      retryAfter: { delayMs: 30_000 },
      retrySource: 'retry-after',
    });
    expect(read(429, {}, BODY_429)).toEqual({ outcome: 'limited', buckets: [] });
  });

  it('says nothing for garbage headers and odd bodies, and never throws', () => {
    const circular: Record<string, unknown> = {};
    circular['self'] = circular;
    const hostile = new Proxy(
      {},
      {
        get: () => {
          throw new Error('boom');
        },
      },
    );
    expect(
      read(200, { 'X-Rate-Limit-Limit': 'lots', 'X-Rate-Limit-Remaining': 'NaN', 'X-Rate-Limit-Reset': 'soon' }),
    ).toEqual({ outcome: 'ok', buckets: [] });
    expect(read(200, { 'X-Rate-Limit-Reset': '0' })).toEqual({ outcome: 'ok', buckets: [] });
    for (const body of [circular, hostile, '{not json', 42, null, ['x']]) {
      expect(read(429, { 'X-Rate-Limit-Reset': '-5' }, body)).toEqual({ outcome: 'limited', buckets: [] });
    }
  });
});

describe('providers.procore: buckets and options', () => {
  it('counts every request against the hourly hint of 3,600 per hour', () => {
    const p = procore();
    expect(p.name).toBe('procore');
    for (const info of [
      {},
      { method: 'GET', url: '/rest/v1.0/projects' },
      { method: 'POST', url: '/rest/v1.0/rfis?project_id=1' },
    ]) {
      expect(p.buckets(info)).toEqual([{ name: 'hourly', limit: 3600, windowMs: 3_600_000 }]);
    }
  });

  it('takes hints by bucket name and extra buckets', () => {
    const p = procore({
      hints: { hourly: { limit: 1000 } },
      extraBuckets: [{ name: 'mine', limit: 5, windowMs: 1000 }],
    });
    expect(p.buckets({})).toEqual([
      { name: 'hourly', limit: 1000, windowMs: 3_600_000 },
      { name: 'mine', limit: 5, windowMs: 1000 },
    ]);
  });

  it.each([
    [{ plan: 'x' }, /unknown option `plan`/],
    [{ hints: { daily: { limit: 5 } } }, /option `hints\.daily` must be keyed by a bucket name \("hourly"\)/],
    [{ hints: { hourly: { limit: -1 } } }, /option `hints\.hourly\.limit`/],
    [{ hints: { hourly: { windowMs: 0 } } }, /option `hints\.hourly\.windowMs`/],
    [{ extraBuckets: [{ name: 'hourly' }] }, /option `extraBuckets\.0\.name` must be a name not used by the provider/],
    [{ extraBuckets: [{ name: '' }] }, /option `extraBuckets\.0\.name`/],
    ['fast', /providers\.procore: expected an options object/],
  ])('rejects bad options with a TypeError naming them (%j)', (options, message) => {
    expect(() => procore(options as never)).toThrow(TypeError);
    expect(() => procore(options as never)).toThrow(message);
  });
});

describe('providers.procore with a limiter (virtual time)', () => {
  it('a 429 pauses every stream until X-Rate-Limit-Reset', () => {
    // Reset at unix second 60: 60,000 ms on the virtual clock, which starts at 0.
    const { snapshot, sent } = inVirtualTime(() => {
      const limiter = createLimiter({ provider: procore(), key: 'procore-token' });
      const sent: number[] = [];
      const call = (res: ResponseLike) =>
        defer(() => {
          sent.push(asyncScheduler.now());
          return timer(10).pipe(map(() => res));
        }).pipe(throttleByHeaders(limiter, { method: 'GET', url: '/rest/v1.0/projects' }));
      call(
        responseLike(
          429,
          { 'X-Rate-Limit-Limit': '3600', 'X-Rate-Limit-Remaining': '0', 'X-Rate-Limit-Reset': '60' },
          BODY_429,
        ),
      ).subscribe();
      let snapshot: LimiterSnapshot | undefined;
      asyncScheduler.schedule(() => {
        snapshot = limiter.snapshot;
        call(responseLike(200, SAMPLE)).subscribe();
        call(responseLike(200, SAMPLE)).subscribe();
      }, 20);
      return {
        get snapshot() {
          return snapshot;
        },
        sent,
      };
    });
    expect(snapshot?.pausedUntil).toBe(60_000);
    expect(snapshot?.pauseReason).toBe('reset');
    expect(snapshot?.buckets).toEqual([
      expect.objectContaining({ name: 'hourly', limit: 3600, remaining: 0, source: 'headers' }),
    ]);
    expect(sent[0]).toBe(0);
    expect(sent.slice(1).every((t) => t >= 60_000)).toBe(true);
    expect(sent).toHaveLength(3);
  });
});
