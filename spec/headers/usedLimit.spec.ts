import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { parseUsedLimit } from '../../lib/headers/usedLimit.js';
import { GARBAGE_ROWS, RUNS, anyHeaderValue } from './fixtures.js';

describe('parseUsedLimit', () => {
  it.each([
    // Shopify REST Admin API: X-Shopify-Shop-Api-Call-Limit.
    ['32/40', { used: 32, limit: 40 }],
    ['1/40', { used: 1, limit: 40 }],
    ['40/40', { used: 40, limit: 40 }],
    ['0/80', { used: 0, limit: 80 }],
    [' 32 / 40 ', { used: 32, limit: 40 }],
    ['007/040', { used: 7, limit: 40 }],
    // Over-full: kept as told, nothing is available.
    ['41/40', { used: 41, limit: 40 }],
    ['999999999999999/999999999999999', { used: 999_999_999_999_999, limit: 999_999_999_999_999 }],
    // Duplicated headers, joined by the HTTP stack: the least available wins.
    ['32/40, 35/40', { used: 35, limit: 40 }],
    ['35/40,32/40', { used: 35, limit: 40 }],
    ['10/400, 39/40', { used: 39, limit: 40 }],
  ])('%j → %j', (value, expected) => {
    expect(parseUsedLimit(value)).toEqual(expected);
  });

  it.each([
    ['a count alone', '32'],
    ['no used', '/40'],
    ['no limit', '32/'],
    ['three parts', '32/40/2'],
    ['a negative count', '-1/40'],
    ['a fraction', '1.5/40'],
    ['hex', '0x20/40'],
    ['an exponent', '1e3/40'],
    ['a limit of 0', '0/0'],
    ['16 digits (past a safe integer)', '1/9999999999999999'],
    ['words', 'half/full'],
    ['a trailing comma', '32/40,'],
    ['a bad member', '32/40, lots'],
    ['a tab inside', '32\t/40'],
    ['a percent', '80%'],
  ])('rejects %s: %j', (_label, value) => {
    expect(parseUsedLimit(value)).toBeUndefined();
  });

  it.each(GARBAGE_ROWS)('returns undefined for garbage %s', (_label, value) => {
    expect(parseUsedLimit(value as string)).toBeUndefined();
  });

  it('refuses a value past 1,000 characters, however it is made', () => {
    expect(parseUsedLimit(`${' '.repeat(996)}32/40`)).toBeUndefined();
    expect(parseUsedLimit(Array(250).fill('1/40').join(','))).toBeUndefined();
  });

  it('never throws and returns undefined or safe whole numbers with a limit above 0', () => {
    fc.assert(
      fc.property(anyHeaderValue, (value) => {
        const r = parseUsedLimit(value as string);
        return (
          r === undefined ||
          (Number.isSafeInteger(r.used) && r.used >= 0 && Number.isSafeInteger(r.limit) && r.limit > 0)
        );
      }),
      RUNS,
    );
  });

  it('reads every pair it writes', () => {
    fc.assert(
      fc.property(fc.nat({ max: 1e9 }), fc.integer({ min: 1, max: 1e9 }), (used, limit) => {
        expect(parseUsedLimit(`${used}/${limit}`)).toEqual({ used, limit });
      }),
      RUNS,
    );
  });
});
