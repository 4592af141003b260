/**
 * Every provider's `read()` (and the building blocks `readCounters`, `readIetf`,
 * `readRetryAfter`) fed arbitrary header maps: duplicated and mixed-case names, huge strings,
 * year 9999, negative, fractional and NaN-ish values. It never throws and returns only finite,
 * non-negative numbers (or nothing).
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { readCounters, readIetf, readRetryAfter, responseLike, type ResponseReading } from '../../lib/index.js';
import type { BucketReading } from '../../lib/providers/types.js';
import { headerMap, makeProvider, PROVIDERS } from '../reliability/arbitraries.js';

const RUNS = 1500;
const MAX_DATE_MS = 8.64e15;
let inputs = 0;

function checkBucket(b: BucketReading): void {
  expect(typeof b.name).toBe('string');
  expect(b.name.length).toBeGreaterThan(0);
  for (const n of [b.limit, b.remaining]) {
    if (n === undefined) continue;
    expect(Number.isSafeInteger(n) && n >= 0).toBe(true);
  }
  if (b.windowMs !== undefined) expect(Number.isFinite(b.windowMs) && b.windowMs > 0).toBe(true);
  if (b.reset !== undefined) {
    if ('at' in b.reset) expect(Number.isFinite(b.reset.at) && b.reset.at > 0 && b.reset.at <= MAX_DATE_MS).toBe(true);
    else expect(Number.isFinite(b.reset.inMs) && b.reset.inMs >= 0).toBe(true);
  }
}

function checkReading(r: ResponseReading): void {
  expect(['ok', 'limited', 'blocked']).toContain(r.outcome);
  expect(Array.isArray(r.buckets)).toBe(true);
  r.buckets.forEach(checkBucket);
  if (r.retryAfter !== undefined) {
    // A date in the past (1900, 1970) is a valid Retry-After: "now". Still a Date-range number.
    if ('at' in r.retryAfter)
      expect(Number.isFinite(r.retryAfter.at) && Math.abs(r.retryAfter.at) <= MAX_DATE_MS).toBe(true);
    else expect(Number.isFinite(r.retryAfter.delayMs) && r.retryAfter.delayMs >= 0).toBe(true);
  }
  if (r.limitedBy !== undefined) expect(typeof r.limitedBy).toBe('string');
}

const status = fc.constantFrom(200, 200, 429, 429, 403, 500, 503);
const body = fc.oneof(
  fc.constant(undefined),
  fc.anything(),
  fc.constantFrom(
    { errors: [{ detail: '118 of 100 requests per 20 seconds' }] },
    { errors: [{ detail: '99999999999999999999 of -1 requests per 0 seconds' }] },
    {
      errors: [
        {
          code: 'rate_limit_exceeded',
          details: { throttled_by: 'minute', request_retry_after: '9999-12-31T23:59:59Z' },
        },
      ],
    },
    { error: true, request_retry_after: 'garbage' },
    '<html>cloudflare</html>',
    'x'.repeat(300_000),
  ),
);
const info = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT', 'patch', 'DELETE'),
  url: fc.constantFrom(
    '/projects',
    '/api/v3/projects/1/tasks',
    '/people/v2/people?offset=40000',
    '/v1/deals?x=%zz',
    '/search/code?q=x',
    '/api/graphql',
    '',
  ),
});

describe("providers' read() on arbitrary header maps", () => {
  it.each(PROVIDERS)('%s: never throws, only finite non-negative numbers', (name) => {
    const provider = makeProvider(name);
    fc.assert(
      fc.property(status, headerMap, body, info, (s, headers, b, request) => {
        inputs++;
        checkReading(provider.read(responseLike(s, headers, b), request));
      }),
      { numRuns: RUNS, seed: 7 },
    );
  });

  it('readCounters, readIetf and readRetryAfter: same guarantees', () => {
    const units = fc.constantFrom(
      'unix-seconds',
      'unix-ms',
      'seconds-left',
      'ms-left',
      'timestamp',
      'auto',
    ) as fc.Arbitrary<'unix-seconds' | 'unix-ms' | 'seconds-left' | 'ms-left' | 'timestamp' | 'auto'>;
    fc.assert(
      fc.property(headerMap, units, (headers, unit) => {
        inputs++;
        const res = responseLike(200, headers);
        const c = readCounters(
          res,
          'b',
          {
            limit: 'x-ratelimit-limit',
            remaining: 'x-ratelimit-remaining',
            reset: 'x-ratelimit-reset',
            period: 'ratelimit',
          },
          unit,
        );
        if (c) checkBucket(c);
        readIetf(res).forEach(checkBucket);
        checkReading({ outcome: 'ok', buckets: [], ...readRetryAfter(res) });
      }),
      { numRuns: RUNS * 2, seed: 7 },
    );
  });

  it('reports its totals', () => {
    console.log(`read.properties: ${inputs} header maps read`);
    expect(inputs).toBeGreaterThanOrEqual(RUNS * 8);
  });
});
