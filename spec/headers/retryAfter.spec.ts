import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { parseRetryAfter, parseXRateLimitRetryAfter, type RetryAfter } from '../../lib/headers/retryAfter.js';
import { GARBAGE_ROWS, RUNS, anyHeaderValue } from './fixtures.js';

const JAN_1_2026 = Date.UTC(2026, 0, 1);

describe('parseRetryAfter', () => {
  it.each<[string, string, RetryAfter]>([
    // Planning Center 429: `retry-after: 19`.
    ['Planning Center', '19', { delayMs: 19_000 }],
    // RFC 9110 §10.2.3 examples.
    ['RFC 9110 delay', '120', { delayMs: 120_000 }],
    ['RFC 9110 date', 'Fri, 31 Dec 1999 23:59:59 GMT', { at: Date.UTC(1999, 11, 31, 23, 59, 59) }],
  ])('%s: %j', (_label, value, expected) => {
    expect(parseRetryAfter(value)).toEqual(expected);
  });

  it.each<[string, RetryAfter]>([
    ['0', { delayMs: 0 }],
    ['00', { delayMs: 0 }],
    ['1', { delayMs: 1000 }],
    ['1.5', { delayMs: 1500 }],
    ['0.0004', { delayMs: 0 }],
    [' 120 ', { delayMs: 120_000 }],
    ['86400', { delayMs: 86_400_000 }],
    ['Wed, 21 Oct 2015 07:28:00 GMT', { at: Date.UTC(2015, 9, 21, 7, 28, 0) }],
    ['wed, 21 oct 2015 07:28:00 gmt', { at: Date.UTC(2015, 9, 21, 7, 28, 0) }],
    ['Sun Nov  6 08:49:37 1994', { at: Date.UTC(1994, 10, 6, 8, 49, 37) }],
    ['Thursday, 01-Jan-26 00:00:00 GMT', { at: JAN_1_2026 }],
    // Lenient: ISO 8601 dates, as Fieldwire writes them in its 429 body.
    ['2026-01-01 00:00:00Z', { at: JAN_1_2026 }],
    ['2026-01-01T00:00:00Z', { at: JAN_1_2026 }],
  ])('%j → %j', (value, expected) => {
    expect(parseRetryAfter(value, JAN_1_2026)).toEqual(expected);
  });

  it.each([
    ['negative', '-1'],
    ['negative zero', '-0'],
    ['signed', '+5'],
    ['exponent', '1e3'],
    ['unit suffix', '19s'],
    ['words', 'soon'],
    ['partial number', '12abc'],
    ['a list with a member that is none', '19, soon'],
    ['more members than a header sent a few times', Array(9).fill('1').join(', ')],
    ['overflow', '9'.repeat(400)],
    ['above MAX_SAFE_INTEGER ms', '9007199254741'],
    ['Feb 30', 'Mon, 30 Feb 2026 00:00:00 GMT'],
  ])('rejects %s: %j', (_label, value) => {
    expect(parseRetryAfter(value)).toBeUndefined();
  });

  it.each(GARBAGE_ROWS)('returns undefined for garbage %s', (_label, value) => {
    expect(parseRetryAfter(value as string)).toBeUndefined();
  });

  it.each<[string, string, RetryAfter]>([
    ['the same twice', '19, 19', { delayMs: 19_000 }],
    ['two delays: the longer', '5, 10', { delayMs: 10_000 }],
    [
      'two dates: the later',
      'Thu, 01 Jan 2026 00:00:10 GMT, Thu, 01 Jan 2026 00:00:30 GMT',
      { at: JAN_1_2026 + 30_000 },
    ],
    ['a delay and a date: whichever ends later', '20, Thu, 01 Jan 2026 00:00:10 GMT', { delayMs: 20_000 }],
  ])(
    'a header sent more than once (joined by commas), %s: no wait the server gave is cut short',
    (_l, value, expected) => {
      expect(parseRetryAfter(value, JAN_1_2026)).toEqual(expected);
    },
  );

  it('never throws and returns undefined, a non-negative delay or a finite instant', () => {
    fc.assert(
      fc.property(anyHeaderValue, (value) => {
        const result = parseRetryAfter(value as string);
        if (result === undefined) return true;
        if (Object.keys(result).length !== 1) return false;
        if ('at' in result) return Number.isInteger(result.at) && Math.abs(result.at) <= 8.64e15;
        return (
          Number.isInteger(result.delayMs) &&
          !Object.is(result.delayMs, -0) &&
          result.delayMs >= 0 &&
          result.delayMs <= Number.MAX_SAFE_INTEGER
        );
      }),
      RUNS,
    );
  });

  it('reads every non-negative integer as that many seconds', () => {
    fc.assert(
      fc.property(fc.nat({ max: 2_000_000_000 }), (n) => {
        expect(parseRetryAfter(String(n))).toEqual({ delayMs: n * 1000 });
      }),
      RUNS,
    );
  });
});

describe('parseXRateLimitRetryAfter', () => {
  it.each([
    ['30', { delayMs: 30_000 }],
    ['0', { delayMs: 0 }],
    ['1.5', { delayMs: 1500 }],
    ['1760000000', { at: 1_760_000_000_000 }],
    ['1760000000123', { at: 1_760_000_000_123 }],
    ['Wed, 21 Oct 2015 07:28:00 GMT', { at: Date.UTC(2015, 9, 21, 7, 28) }],
  ])('%s -> %j', (value, expected) => {
    expect(parseXRateLimitRetryAfter(value)).toEqual(expected);
  });

  it.each(['', '-1', 'soon', '1e9', 'Infinity', '9'.repeat(400)])('%j gives no retry time', (value) => {
    expect(parseXRateLimitRetryAfter(value)).toBeUndefined();
  });

  it('never throws and returns a delay >= 0 or a Date-range instant on any value', () => {
    fc.assert(
      fc.property(anyHeaderValue, (value) => {
        const r = parseXRateLimitRetryAfter(value as string);
        if (r === undefined) return;
        if ('at' in r) expect(Number.isFinite(r.at) && r.at > 0 && r.at <= 8.64e15).toBe(true);
        else expect(Number.isFinite(r.delayMs) && r.delayMs >= 0).toBe(true);
      }),
      RUNS,
    );
  });
});
