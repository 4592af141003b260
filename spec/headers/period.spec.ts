import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { parsePeriod } from '../../lib/headers/period.js';
import { GARBAGE_ROWS, RUNS, anyHeaderValue } from './fixtures.js';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe('parsePeriod', () => {
  it.each([
    // Planning Center: `x-pco-api-request-rate-period: 20 seconds`.
    ['Planning Center', '20 seconds', 20 * S],
    // TEOS: "The rate limit period (eg. 1m, 12h, 1d)".
    ['TEOS', '1m', M],
    ['TEOS', '12h', 12 * H],
    ['TEOS', '1d', D],
  ])('%s: %j', (_label, value, expected) => {
    expect(parsePeriod(value)).toBe(expected);
  });

  it.each([
    ['30s', 30 * S],
    ['500ms', 500],
    ['1w', 7 * D],
    ['1 second', S],
    ['2 minutes', 2 * M],
    ['1 min', M],
    ['5 mins', 5 * M],
    ['1 hour', H],
    ['24 hours', 24 * H],
    ['1 day', D],
    ['2 days', 2 * D],
    ['2 weeks', 14 * D],
    ['10 sec', 10 * S],
    ['3 hrs', 3 * H],
    ['250 milliseconds', 250],
    ['60', 60 * S],
    ['1', S],
    ['1.5h', 1.5 * H],
    ['0.5s', 500],
    ['0.0005s', 1],
    ['20 SECONDS', 20 * S],
    ['20 Seconds', 20 * S],
    ['1M', M],
    ['12H', 12 * H],
    ['  1m  ', M],
    ['20seconds', 20 * S],
    ['20   seconds', 20 * S],
    // Duplicated header: the longest window is the slower, conservative pace.
    ['20 seconds, 20 seconds', 20 * S],
    ['1m, 1h', H],
  ])('%j → %d ms', (value, expected) => {
    expect(parsePeriod(value)).toBe(expected);
  });

  it.each([
    ['zero', '0'],
    ['zero with unit', '0s'],
    ['rounds to zero', '0.0001ms'],
    ['negative', '-1m'],
    ['negative plain', '-60'],
    ['unknown unit', '1 fortnight'],
    ['months are ambiguous', '1mo'],
    ['unit only', 'seconds'],
    ['two units', '1 m s'],
    ['exponent', '1e3s'],
    ['two decimal points', '1.5.5s'],
    ['leading dot', '.5s'],
    ['trailing comma', '20 seconds,'],
    ['bad member', '20 seconds, soon'],
    ['ISO 8601 duration', 'PT1M'],
    ['compound', '1h30m'],
    ['overflow', `${'9'.repeat(400)}s`],
    ['above MAX_SAFE_INTEGER', '9007199254740993ms'],
  ])('rejects %s: %j', (_label, value) => {
    expect(parsePeriod(value)).toBeUndefined();
  });

  it.each(GARBAGE_ROWS)('returns undefined for garbage %s', (_label, value) => {
    expect(parsePeriod(value as string)).toBeUndefined();
  });

  it('never throws and returns undefined or a positive whole number of ms', () => {
    fc.assert(
      fc.property(anyHeaderValue, (value) => {
        const result = parsePeriod(value as string);
        return result === undefined || (Number.isInteger(result) && result > 0 && result <= Number.MAX_SAFE_INTEGER);
      }),
      RUNS,
    );
  });
});
