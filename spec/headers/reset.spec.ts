import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { parseReset, type ResetUnit, type ResetValue } from '../../lib/headers/reset.js';
import { GARBAGE_ROWS, RUNS, anyHeaderValue } from './fixtures.js';

const JAN_1_2026 = Date.UTC(2026, 0, 1);
const UNITS: readonly ResetUnit[] = ['unix-seconds', 'unix-ms', 'seconds-left', 'ms-left', 'timestamp', 'auto'];

describe('parseReset', () => {
  describe('provider values', () => {
    it.each<[string, string, ResetUnit, ResetValue | undefined]>([
      // Procore: `X-Rate-Limit-Reset: 1466182244`, the Unix timestamp the next window begins.
      ['Procore X-Rate-Limit-Reset', '1466182244', 'unix-seconds', { at: 1466182244 * 1000 }],
      ['Procore X-Rate-Limit-Reset (auto)', '1466182244', 'auto', { at: 1466182244 * 1000 }],
      // Pipedrive: `x-ratelimit-reset: 2`, seconds left in the 2-second window.
      ['Pipedrive x-ratelimit-reset', '2', 'seconds-left', { inMs: 2000 }],
      ['Pipedrive x-ratelimit-reset (auto)', '2', 'auto', { inMs: 2000 }],
      // Fieldwire: `ratelimit-reset` is a Unix timestamp, "0 if the limit is not exceeded".
      ['Fieldwire ratelimit-reset 0 (none)', '0', 'unix-seconds', undefined],
      ['Fieldwire ratelimit-reset', '1767225600', 'unix-seconds', { at: JAN_1_2026 }],
      // Fieldwire legacy: `X-RateLimit-Reset` "timestamp"; the matching body field reads
      // `2026-01-01 00:00:00 UTC`.
      ['Fieldwire legacy, date-time', '2026-01-01 00:00:00 UTC', 'timestamp', { at: JAN_1_2026 }],
      ['Fieldwire legacy, Unix seconds', '1767225600', 'timestamp', { at: JAN_1_2026 }],
      ['Fieldwire retry-after date (auto)', '2026-01-01 00:00:00Z', 'auto', { at: JAN_1_2026 }],
      // TEOS: `X-Rate-Limit-Reset`, UTC date-time in ISO 8601 (.NET "o" format).
      ['TEOS X-Rate-Limit-Reset', '2026-01-01T00:00:00.0000000Z', 'timestamp', { at: JAN_1_2026 }],
      ['TEOS X-Rate-Limit-Reset (auto)', '2026-01-01T00:00:00.0000000Z', 'auto', { at: JAN_1_2026 }],
      ['TEOS X-Rate-Limit-Reset with offset', '2026-01-01T02:00:00.0000000+02:00', 'timestamp', { at: JAN_1_2026 }],
    ])('%s: %j as %s', (_label, value, unit, expected) => {
      expect(parseReset(value, unit)).toEqual(expected);
    });
  });

  it.each<[string, ResetUnit, ResetValue]>([
    ['1466182244.5', 'unix-seconds', { at: 1466182244500 }],
    ['1466182244123', 'unix-ms', { at: 1466182244123 }],
    ['1466182244123', 'auto', { at: 1466182244123 }],
    ['1466182244123', 'timestamp', { at: 1466182244123 }],
    ['1', 'unix-seconds', { at: 1000 }],
    ['1', 'unix-ms', { at: 1 }],
    ['1.5', 'seconds-left', { inMs: 1500 }],
    ['1.5', 'auto', { inMs: 1500 }],
    ['0.0004', 'seconds-left', { inMs: 0 }],
    ['0', 'seconds-left', { inMs: 0 }],
    ['0', 'ms-left', { inMs: 0 }],
    ['-0', 'seconds-left', { inMs: 0 }],
    ['0', 'auto', { inMs: 0 }],
    ['250', 'ms-left', { inMs: 250 }],
    ['250.6', 'ms-left', { inMs: 251 }],
    ['60', 'auto', { inMs: 60000 }],
    ['999999999', 'auto', { inMs: 999999999000 }],
    ['1000000000', 'auto', { at: 1e12 }],
    ['999999999999', 'auto', { at: 999999999999000 }],
    ['1000000000000', 'auto', { at: 1e12 }],
    ['+2', 'seconds-left', { inMs: 2000 }],
    [' 2 ', 'auto', { inMs: 2000 }],
    ['\t1466182244\n', 'unix-seconds', { at: 1466182244000 }],
    ['Thu, 01 Jan 2026 00:00:00 GMT', 'timestamp', { at: JAN_1_2026 }],
    ['Thu, 01 Jan 2026 00:00:00 GMT', 'auto', { at: JAN_1_2026 }],
  ])('%j as %s → %j', (value, unit, expected) => {
    expect(parseReset(value, unit)).toEqual(expected);
  });

  it.each([
    ['seconds-left', '2, 2', { inMs: 2000 }],
    ['seconds-left', '2, 5', { inMs: 5000 }],
    ['unix-seconds', '1796607600, 1796607660', { at: 1_796_607_660_000 }],
    [
      'timestamp',
      'Thu, 01 Jan 2026 00:00:10 GMT, Thu, 01 Jan 2026 00:00:30 GMT',
      { at: Date.UTC(2026, 0, 1, 0, 0, 30) },
    ],
  ] as const)('%s, a header sent more than once (%j): the latest reset', (unit, value, expected) => {
    expect(parseReset(value, unit, Date.UTC(2026, 0, 1))).toEqual(expected);
  });

  it('a list with a member that is none is none', () => {
    expect(parseReset('2, x', 'seconds-left')).toBeUndefined();
    expect(parseReset('0, 0', 'unix-seconds')).toBeUndefined();
  });

  it("defaults to 'auto'", () => {
    expect(parseReset('2')).toEqual({ inMs: 2000 });
    expect(parseReset('1466182244')).toEqual({ at: 1466182244000 });
  });

  it.each<[string, string, ResetUnit]>([
    ['negative seconds left', '-1', 'seconds-left'],
    ['negative ms left', '-1', 'ms-left'],
    ['negative (auto)', '-1', 'auto'],
    ['negative Unix seconds', '-5', 'unix-seconds'],
    ['Unix ms 0', '0', 'unix-ms'],
    ['Unix timestamp 0 (timestamp)', '0', 'timestamp'],
    ['epoch as a date-time', '1970-01-01T00:00:00Z', 'timestamp'],
    ['before 1970', '1969-07-20T20:17:00Z', 'auto'],
    ['date-time in a numeric unit', '2026-01-01T00:00:00Z', 'unix-seconds'],
    ['date-time as seconds left', '2026-01-01T00:00:00Z', 'seconds-left'],
    ['a duration', '12h', 'auto'],
    ['beyond the Date range', '99999999999999', 'unix-seconds'],
    ['overflowing digits', '9'.repeat(400), 'seconds-left'],
    ['overflowing digits (auto)', '9'.repeat(400), 'auto'],
    ['above MAX_SAFE_INTEGER ms', '9007199254740993', 'ms-left'],
    ['exponent', '1e5', 'auto'],
    ['partial number', '12abc', 'seconds-left'],
    ['unit suffix', '2s', 'seconds-left'],
    ['Feb 30', '2026-02-30T00:00:00Z', 'timestamp'],
    ['unknown unit', '2', 'hours' as ResetUnit],
  ])('rejects %s: %j as %s', (_label, value, unit) => {
    expect(parseReset(value, unit)).toBeUndefined();
  });

  describe.each(UNITS)('garbage as %s', (unit) => {
    it.each(GARBAGE_ROWS)('returns undefined for %s', (_label, value) => {
      expect(parseReset(value as string, unit)).toBeUndefined();
    });
  });

  it('never throws and returns undefined, a positive instant or a non-negative delay', () => {
    fc.assert(
      fc.property(anyHeaderValue, fc.constantFrom(...UNITS), (value, unit) => {
        const result = parseReset(value as string, unit);
        if (result === undefined) return true;
        const keys = Object.keys(result);
        if (keys.length !== 1) return false;
        if ('at' in result) return Number.isInteger(result.at) && result.at > 0 && result.at <= 8.64e15;
        return (
          Number.isInteger(result.inMs) &&
          !Object.is(result.inMs, -0) &&
          result.inMs >= 0 &&
          result.inMs <= Number.MAX_SAFE_INTEGER
        );
      }),
      RUNS,
    );
  });
});
