import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { parseHttpDate, splitDateList } from '../../lib/headers/httpDate.js';
import { GARBAGE_ROWS, RUNS, anyHeaderValue } from './fixtures.js';

const NOV_6_1994 = Date.UTC(1994, 10, 6, 8, 49, 37);
const NOW_2026 = Date.UTC(2026, 0, 1);

describe('parseHttpDate', () => {
  it.each([
    // The three RFC 9110 §5.6.7 examples.
    ['Sun, 06 Nov 1994 08:49:37 GMT', NOV_6_1994],
    ['Sunday, 06-Nov-94 08:49:37 GMT', NOV_6_1994],
    ['Sun Nov  6 08:49:37 1994', NOV_6_1994],
    // RFC 9110 §10.2.3 Retry-After example.
    ['Wed, 21 Oct 2015 07:28:00 GMT', Date.UTC(2015, 9, 21, 7, 28, 0)],
    ['Thu, 01 Jan 2026 00:00:00 GMT', Date.UTC(2026, 0, 1)],
    ['Thu, 01 Jan 1970 00:00:00 GMT', 0],
    ['Fri, 31 Dec 9999 23:59:59 GMT', Date.UTC(9999, 11, 31, 23, 59, 59)],
  ])('parses %j', (value, expected) => {
    expect(parseHttpDate(value, NOW_2026)).toBe(expected);
  });

  it.each([
    ['lower-case IMF-fixdate', 'sun, 06 nov 1994 08:49:37 gmt', NOV_6_1994],
    ['upper-case IMF-fixdate', 'SUN, 06 NOV 1994 08:49:37 GMT', NOV_6_1994],
    ['lower-case RFC 850', 'sunday, 06-nov-94 08:49:37 gmt', NOV_6_1994],
    ['lower-case asctime', 'sun nov  6 08:49:37 1994', NOV_6_1994],
    ['surrounding whitespace', '  Sun, 06 Nov 1994 08:49:37 GMT\t\r\n', NOV_6_1994],
    ['asctime with a single space', 'Sun Nov 6 08:49:37 1994', NOV_6_1994],
    ['asctime two-digit day', 'Wed Nov 16 08:49:37 1994', Date.UTC(1994, 10, 16, 8, 49, 37)],
    ['asctime zero-padded day', 'Sun Nov 06 08:49:37 1994', NOV_6_1994],
    ['doubled spaces in IMF-fixdate', 'Sun,  06  Nov  1994  08:49:37  GMT', NOV_6_1994],
    ['one-digit day in IMF-fixdate', 'Sun, 6 Nov 1994 08:49:37 GMT', NOV_6_1994],
    ['UTC instead of GMT', 'Sun, 06 Nov 1994 08:49:37 UTC', NOV_6_1994],
    ['no day name', '06 Nov 1994 08:49:37 GMT', NOV_6_1994],
    ['wrong day name (tolerated)', 'Mon, 06 Nov 1994 08:49:37 GMT', NOV_6_1994],
    ['long day name in IMF-fixdate', 'Sunday, 06 Nov 1994 08:49:37 GMT', NOV_6_1994],
    ['RFC 850 with a four-digit year', 'Sunday, 06-Nov-1994 08:49:37 GMT', NOV_6_1994],
    ['leap day 2024', 'Thu, 29 Feb 2024 12:00:00 GMT', Date.UTC(2024, 1, 29, 12, 0, 0)],
    ['leap day 2000 (divisible by 400)', 'Tue, 29 Feb 2000 00:00:00 GMT', Date.UTC(2000, 1, 29)],
    ['leap second clamped to :59', 'Wed, 31 Dec 2025 23:59:60 GMT', Date.UTC(2025, 11, 31, 23, 59, 59)],
    ['asctime leap day', 'Thu Feb 29 12:00:00 2024', Date.UTC(2024, 1, 29, 12, 0, 0)],
    ['30 April', 'Thu, 30 Apr 2026 23:59:59 GMT', Date.UTC(2026, 3, 30, 23, 59, 59)],
  ])('accepts %s', (_label, value, expected) => {
    expect(parseHttpDate(value, NOW_2026)).toBe(expected);
  });

  describe('RFC 850 two-digit years (RFC 9110: > 50 years ahead means the past century)', () => {
    it.each([
      [NOW_2026, '94', 1994],
      [NOW_2026, '77', 1977],
      [NOW_2026, '76', 2076],
      [NOW_2026, '26', 2026],
      [NOW_2026, '00', 2000],
      [NOW_2026, '99', 1999],
      [Date.UTC(1999, 11, 31), '49', 2049],
      [Date.UTC(1999, 11, 31), '50', 1950],
      [Date.UTC(2090, 5, 1), '30', 2130],
      [Date.UTC(2090, 5, 1), '94', 2094],
    ])('with now=%d, %s means %d', (now, yy, year) => {
      expect(parseHttpDate(`Monday, 01-Mar-${yy} 10:00:00 GMT`, now)).toBe(Date.UTC(year, 2, 1, 10, 0, 0));
    });

    it('uses the current clock by default', () => {
      // With any clock from 1944 to 2043, the 50-year rule reads 94 as 1994.
      expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT')).toBe(NOV_6_1994);
    });
  });

  it.each([
    ['30 February', 'Mon, 30 Feb 2026 00:00:00 GMT'],
    ['29 February in a common year', 'Sun, 29 Feb 2026 00:00:00 GMT'],
    ['29 February 1900 (not a leap year)', 'Thu, 29 Feb 1900 00:00:00 GMT'],
    ['31 April', 'Fri, 31 Apr 2026 00:00:00 GMT'],
    ['day 0', 'Thu, 00 Jan 2026 00:00:00 GMT'],
    ['day 32', 'Thu, 32 Jan 2026 00:00:00 GMT'],
    ['hour 24', 'Thu, 01 Jan 2026 24:00:00 GMT'],
    ['minute 60', 'Thu, 01 Jan 2026 00:60:00 GMT'],
    ['second 61', 'Thu, 01 Jan 2026 00:00:61 GMT'],
    ['unknown month', 'Thu, 01 Foo 2026 00:00:00 GMT'],
    ['unknown day name', 'Foo, 01 Jan 2026 00:00:00 GMT'],
    ['missing zone', 'Thu, 01 Jan 2026 00:00:00'],
    ['numeric zone', 'Thu, 01 Jan 2026 00:00:00 +0000'],
    ['other zone', 'Thu, 01 Jan 2026 00:00:00 PST'],
    ['two-digit year in IMF-fixdate', 'Sun, 06 Nov 94 08:49:37 GMT'],
    ['trailing text', 'Sun, 06 Nov 1994 08:49:37 GMT extra'],
    ['one-digit hour', 'Sun, 06 Nov 1994 8:49:37 GMT'],
    ['missing seconds', 'Sun, 06 Nov 1994 08:49 GMT'],
    ['asctime 30 February', 'Mon Feb 30 00:00:00 2026'],
    ['asctime without year', 'Sun Nov  6 08:49:37'],
    ['ISO 8601 (not an HTTP-date)', '2026-01-01T00:00:00Z'],
    ['Unix seconds', '1466182244'],
    ['delay-seconds', '19'],
  ])('rejects %s', (_label, value) => {
    expect(parseHttpDate(value, NOW_2026)).toBeUndefined();
  });

  it.each(GARBAGE_ROWS)('returns undefined for garbage %s', (_label, value) => {
    expect(parseHttpDate(value as string, NOW_2026)).toBeUndefined();
  });

  it('never throws and returns undefined or a whole, in-range epoch millisecond', () => {
    fc.assert(
      fc.property(anyHeaderValue, (value) => {
        const result = parseHttpDate(value as string);
        return result === undefined || (Number.isInteger(result) && Math.abs(result) <= 8.64e15 && result % 1000 === 0);
      }),
      RUNS,
    );
  });

  it('round-trips Date#toUTCString() to the second', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date(Date.UTC(1000, 0, 1)),
          max: new Date(Date.UTC(9999, 11, 31, 23, 59, 59)),
          noInvalidDate: true,
        }),
        (date) => {
          const t = date.getTime();
          expect(parseHttpDate(date.toUTCString())).toBe(t - (((t % 1000) + 1000) % 1000));
        },
      ),
      RUNS,
    );
  });
});

describe('splitDateList', () => {
  it.each([
    ['Thu, 01 Jan 2026 00:01:00 GMT', ['Thu, 01 Jan 2026 00:01:00 GMT']],
    ['Thursday, 01-Jan-26 00:01:00 GMT', ['Thursday, 01-Jan-26 00:01:00 GMT']],
    [
      'Thu, 01 Jan 2026 00:01:00 GMT, Fri, 02 Jan 2026 00:00:00 GMT',
      ['Thu, 01 Jan 2026 00:01:00 GMT', 'Fri, 02 Jan 2026 00:00:00 GMT'],
    ],
    // Dates without a comma, mixed with one that has it.
    ['2026-01-01T00:01:00Z,Fri, 02 Jan 2026 00:00:00 GMT', ['2026-01-01T00:01:00Z', 'Fri, 02 Jan 2026 00:00:00 GMT']],
    ['Thu Jan  1 00:01:00 2026', ['Thu Jan  1 00:01:00 2026']],
    [' 1m , 1d ', ['1m', '1d']],
    // Anything else splits at every comma; a day name alone stays one member.
    ['soon, later', ['soon', 'later']],
    ['x, Thu', ['x', 'Thu']],
    [',', ['', '']],
  ])('keeps the comma after an HTTP-date day name, splits at the others: %j', (value, expected) => {
    expect(splitDateList(value)).toEqual(expected);
  });

  it('every member of a list of HTTP-dates joined with ", " reads back as its date', () => {
    fc.assert(
      fc.property(
        fc.array(fc.date({ min: new Date(0), max: new Date(Date.UTC(9999, 0)), noInvalidDate: true }), {
          minLength: 1,
          maxLength: 4,
        }),
        (dates) => {
          const members = splitDateList(dates.map((d) => d.toUTCString()).join(', '));
          expect(members.map((m) => parseHttpDate(m))).toEqual(dates.map((d) => Math.floor(d.getTime() / 1000) * 1000));
        },
      ),
      RUNS,
    );
  });
});
