import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { parseCount } from '../../lib/headers/count.js';
import { GARBAGE_ROWS, RUNS, anyHeaderValue } from './fixtures.js';

describe('parseCount', () => {
  it.each([
    // Procore.
    ['X-Rate-Limit-Limit', '3600', 3600],
    ['X-Rate-Limit-Remaining', '3599', 3599],
    // Planning Center 429.
    ['x-pco-api-request-rate-count', '118', 118],
    ['x-pco-api-request-rate-limit', '100', 100],
    // Pipedrive.
    ['x-ratelimit-limit', '40', 40],
    ['x-ratelimit-remaining', '39', 39],
    ['x-daily-requests-left', '9999', 9999],
  ])('%s: %j', (_label, value, expected) => {
    expect(parseCount(value)).toBe(expected);
  });

  it.each([
    ['0', 0],
    ['007', 7],
    [' 42 ', 42],
    ['\t42\r\n', 42],
    ['+5', 5],
    ['9.7', 9],
    ['0.5', 0],
    ['-1', 0],
    ['-0', 0],
    ['-250.5', 0],
    ['9007199254740991', Number.MAX_SAFE_INTEGER],
    ['9007199254740993', Number.MAX_SAFE_INTEGER],
    ['99999999999999999999999999', Number.MAX_SAFE_INTEGER],
    ['9'.repeat(400), Number.MAX_SAFE_INTEGER],
    // Duplicated headers, joined by the HTTP stack: the smallest member wins.
    ['10, 10', 10],
    ['100, 50', 50],
    ['100, -1', 0],
    [' 3 , 2 , 1 ', 1],
    // Joined by a client or proxy that leaves the space out.
    ['50,1000', 50],
    ['3600,3600', 3600],
    ['10,5', 5],
  ])('%j → %d', (value, expected) => {
    expect(parseCount(value)).toBe(expected);
  });

  it.each([
    // One value joined twice without a space: its groups repeat.
    ['100,100', 100],
    ['100,100,100', 100],
    // A group starting with 0 is no count sent on its own: thousands separators.
    ['10,000', 10_000],
    ['1,000,000', 1_000_000],
    ['5,050', 5050],
    ['10,000.5', 10_000],
    // Grouped numbers in a list joined with ", ".
    ['10,000, 10,000', 10_000],
    // A leading 0 is never a thousands group: a list.
    ['0,500', 0],
  ])('reads a bare comma between digit groups as the one reading that is plain: %j → %d', (value, expected) => {
    expect(parseCount(value)).toBe(expected);
  });

  it.each([
    ['3,600', '3600 with a thousands separator, or 3 and 600 joined'],
    ['3,599', '3599, or 3 and 599'],
    ['50,100', '50100, or 50 and 100'],
    ['1,234,567', '1234567, or 1, 234 and 567'],
  ])('reads %j as nothing rather than a figure 1000 times off (%s)', (value) => {
    expect(parseCount(value)).toBeUndefined();
  });

  it.each([
    ['partial number', '12abc'],
    ['exponent', '1e5'],
    ['hex', '0x10'],
    ['leading dot', '.5'],
    ['trailing dot', '5.'],
    ['trailing comma', '10,'],
    ['leading comma', ', 10'],
    ['bad member', '100, lots'],
    ['only a comma', ','],
    ['words', 'ten'],
    ['structured-field parameters', '100;w=60'],
  ])('rejects %s: %j', (_label, value) => {
    expect(parseCount(value)).toBeUndefined();
  });

  it.each(GARBAGE_ROWS)('returns undefined for garbage %s', (_label, value) => {
    expect(parseCount(value as string)).toBeUndefined();
  });

  it('never throws and returns undefined or a safe non-negative integer', () => {
    fc.assert(
      fc.property(anyHeaderValue, (value) => {
        const result = parseCount(value as string);
        return result === undefined || (Number.isSafeInteger(result) && result >= 0 && !Object.is(result, -0));
      }),
      RUNS,
    );
  });

  it('reads every safe non-negative integer as itself', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        expect(parseCount(String(n))).toBe(n);
      }),
      RUNS,
    );
  });
});
