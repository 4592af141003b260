import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { parseTimestamp } from '../../lib/headers/timestamp.js';
import { GARBAGE_ROWS, RUNS, anyHeaderValue, utcYear } from './fixtures.js';

const JAN_1_2026 = Date.UTC(2026, 0, 1);

describe('parseTimestamp', () => {
  describe('provider values', () => {
    it.each([
      // Fieldwire: 429 body `request_retry_after` (per-endpoint limits).
      ['Fieldwire request_retry_after', '2026-01-01 00:00:00Z', JAN_1_2026],
      // Fieldwire: legacy fixed-window body `request_retry_after`.
      ['Fieldwire legacy request_retry_after', '2026-01-01 00:00:00 UTC', JAN_1_2026],
      // TEOS: X-Rate-Limit-Reset, written with .NET's round-trip "o" format.
      ['TEOS "o" format, UTC', '2026-01-01T00:00:00.0000000Z', JAN_1_2026],
      ['TEOS "o" format, +02:00', '2026-01-01T02:00:00.0000000+02:00', JAN_1_2026],
      ['TEOS "o" format, -05:00', '2025-12-31T19:00:00.0000000-05:00', JAN_1_2026],
    ])('%s: %j', (_label, value, expected) => {
      expect(parseTimestamp(value)).toBe(expected);
    });
  });

  it.each([
    ['RFC 3339 UTC', '2026-01-01T00:00:00Z', JAN_1_2026],
    ['lower-case t and z', '2026-01-01t00:00:00z', JAN_1_2026],
    ['positive offset', '2026-01-01T00:00:00+02:00', Date.UTC(2025, 11, 31, 22, 0, 0)],
    ['negative offset without colon', '2026-01-01T00:00:00-0530', Date.UTC(2026, 0, 1, 5, 30, 0)],
    ['hour-only offset', '2026-01-01T00:00:00+02', Date.UTC(2025, 11, 31, 22, 0, 0)],
    ['zero offset', '2026-01-01T00:00:00+00:00', JAN_1_2026],
    ['-00:00 offset', '2026-01-01T00:00:00-00:00', JAN_1_2026],
    ['milliseconds', '2026-01-01T00:00:00.123Z', Date.UTC(2026, 0, 1, 0, 0, 0, 123)],
    ['one fraction digit', '2026-01-01T00:00:00.1Z', Date.UTC(2026, 0, 1, 0, 0, 0, 100)],
    [
      '7 fraction digits, rounded up to the millisecond',
      '2026-01-01T12:34:56.7891234Z',
      Date.UTC(2026, 0, 1, 12, 34, 56, 790),
    ],
    ['7 fraction digits, whole milliseconds', '2026-01-01T12:34:56.7890000Z', Date.UTC(2026, 0, 1, 12, 34, 56, 789)],
    ['a fraction that rounds up into the next second', '2026-01-01T23:59:59.9999999Z', Date.UTC(2026, 0, 2)],
    ['comma as decimal sign', '2026-01-01T00:00:00,5Z', Date.UTC(2026, 0, 1, 0, 0, 0, 500)],
    ['fraction with offset', '2026-01-01T02:00:00.250+02:00', Date.UTC(2026, 0, 1, 0, 0, 0, 250)],
    ['no zone → UTC', '2026-01-01T12:34:56', Date.UTC(2026, 0, 1, 12, 34, 56)],
    ['space-separated, no zone → UTC', '2026-01-01 12:34:56', Date.UTC(2026, 0, 1, 12, 34, 56)],
    ['space-separated GMT', '2026-01-01 12:34:56 GMT', Date.UTC(2026, 0, 1, 12, 34, 56)],
    ['space-separated lower-case utc', '2026-01-01 12:34:56 utc', Date.UTC(2026, 0, 1, 12, 34, 56)],
    ['space-separated offset', '2026-01-01 12:34:56 +01:00', Date.UTC(2026, 0, 1, 11, 34, 56)],
    ['space-separated offset, no space', '2026-01-01 12:34:56+01:00', Date.UTC(2026, 0, 1, 11, 34, 56)],
    ['without seconds', '2026-01-01T12:34Z', Date.UTC(2026, 0, 1, 12, 34, 0)],
    ['date only → midnight UTC', '2026-01-01', JAN_1_2026],
    ['surrounding whitespace', '  2026-01-01T00:00:00Z\t', JAN_1_2026],
    ['leap day 2024', '2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)],
    ['leap day 2000', '2000-02-29T23:59:59Z', Date.UTC(2000, 1, 29, 23, 59, 59)],
    ['leap second clamped', '2016-12-31T23:59:60Z', Date.UTC(2016, 11, 31, 23, 59, 59)],
    ['epoch', '1970-01-01T00:00:00Z', 0],
    ['year 0000', '0000-01-01T00:00:00Z', utcYear(0)],
    ['year 0050 (not 1950)', '0050-06-15T00:00:00Z', utcYear(50, 5, 15)],
    ['year 9999', '9999-12-31T23:59:59.999Z', Date.UTC(9999, 11, 31, 23, 59, 59, 999)],
    ['offset crossing into the next year', '2025-12-31T23:00:00-01:00', JAN_1_2026],
    ['HTTP-date (IMF-fixdate)', 'Thu, 01 Jan 2026 00:00:00 GMT', JAN_1_2026],
    ['HTTP-date (asctime)', 'Thu Jan  1 00:00:00 2026', JAN_1_2026],
    ['HTTP-date (RFC 850)', 'Thursday, 01-Jan-26 00:00:00 GMT', JAN_1_2026],
  ])('accepts %s: %j', (_label, value, expected) => {
    expect(parseTimestamp(value, JAN_1_2026)).toBe(expected);
  });

  it.each([
    ['29 February in a common year', '2026-02-29T00:00:00Z'],
    ['30 February', '2024-02-30T00:00:00Z'],
    ['29 February 1900', '1900-02-29T00:00:00Z'],
    ['31 June', '2026-06-31T00:00:00Z'],
    ['month 13', '2026-13-01T00:00:00Z'],
    ['month 00', '2026-00-10T00:00:00Z'],
    ['day 00', '2026-01-00T00:00:00Z'],
    ['day 32', '2026-01-32T00:00:00Z'],
    ['hour 24', '2026-01-01T24:00:00Z'],
    ['hour 25', '2026-01-01T25:00:00Z'],
    ['minute 60', '2026-01-01T00:60:00Z'],
    ['second 61', '2026-01-01T00:00:61Z'],
    ['offset hour 24', '2026-01-01T00:00:00+24:00'],
    ['offset minute 60', '2026-01-01T00:00:00+02:60'],
    ['three-digit offset', '2026-01-01T00:00:00+020'],
    ['unknown zone name', '2026-01-01T00:00:00 PST'],
    ['double zone', '2026-01-01T00:00:00ZZ'],
    ['zone and offset', '2026-01-01T00:00:00Z+02:00'],
    ['unpadded month and day', '2026-1-1T00:00:00Z'],
    ['two-digit year', '26-01-01T00:00:00Z'],
    ['five-digit year', '12026-01-01T00:00:00Z'],
    ['negative year', '-2026-01-01T00:00:00Z'],
    ['ISO basic format', '20260101T000000Z'],
    ['empty fraction', '2026-01-01T00:00:00.Z'],
    ['one-digit hour', '2026-01-01T1:00:00Z'],
    ['trailing text', '2026-01-01T00:00:00Z please'],
    ['slashes', '2026/01/01 00:00:00'],
    ['Unix seconds', '1466182244'],
    ['Unix milliseconds', '1466182244000'],
    ['a duration', '12h'],
  ])('rejects %s: %j', (_label, value) => {
    expect(parseTimestamp(value)).toBeUndefined();
  });

  it.each(GARBAGE_ROWS)('returns undefined for garbage %s', (_label, value) => {
    expect(parseTimestamp(value as string)).toBeUndefined();
  });

  it('never throws and returns undefined or a whole, in-range epoch millisecond', () => {
    fc.assert(
      fc.property(anyHeaderValue, (value) => {
        const result = parseTimestamp(value as string);
        return result === undefined || (Number.isInteger(result) && Math.abs(result) <= 8.64e15);
      }),
      RUNS,
    );
  });

  it('round-trips Date#toISOString() exactly for years 0000–9999', () => {
    fc.assert(
      fc.property(
        fc.date({
          min: new Date(utcYear(0)),
          max: new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999)),
          noInvalidDate: true,
        }),
        (date) => {
          expect(parseTimestamp(date.toISOString())).toBe(date.getTime());
        },
      ),
      RUNS,
    );
  });
});
