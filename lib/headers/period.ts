import { normalize, parseUnsignedDecimal } from './internal.js';

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const WEEK = 7 * DAY;

const UNIT_MS: ReadonlyMap<string, number> = new Map([
  ['ms', 1],
  ['msec', 1],
  ['msecs', 1],
  ['millisecond', 1],
  ['milliseconds', 1],
  ['s', SECOND],
  ['sec', SECOND],
  ['secs', SECOND],
  ['second', SECOND],
  ['seconds', SECOND],
  ['m', MINUTE],
  ['min', MINUTE],
  ['mins', MINUTE],
  ['minute', MINUTE],
  ['minutes', MINUTE],
  ['h', HOUR],
  ['hr', HOUR],
  ['hrs', HOUR],
  ['hour', HOUR],
  ['hours', HOUR],
  ['d', DAY],
  ['day', DAY],
  ['days', DAY],
  ['w', WEEK],
  ['wk', WEEK],
  ['wks', WEEK],
  ['week', WEEK],
  ['weeks', WEEK],
]);

const PERIOD = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i;

/**
 * Parses a rate-limit window length such as `20 seconds` or `1m` into milliseconds.
 *
 * Accepts a number followed by an optional unit, case-insensitive, with or without a space:
 * `ms`/`millisecond(s)`, `s`/`sec`/`second(s)`, `m`/`min`/`minute(s)`, `h`/`hr`/`hour(s)`,
 * `d`/`day(s)`, `w`/`wk`/`week(s)`. Examples: Planning Center `20 seconds`, TEOS `1m`, `12h`,
 * `1d`, and `500ms`, `2 minutes`, `24 hours`, `1w`.
 *
 * Behaviour notes:
 * - A plain number means seconds (`"60"` → 60000).
 * - Fractions are allowed (`"1.5h"` → 5400000); the result is rounded to whole milliseconds.
 * - A duplicated header joined as `"20 seconds, 20 seconds"` gives the longest member (the
 *   slower, conservative pace); one bad member rejects the whole value.
 * - Zero, negative, unknown units (`"1 fortnight"`, `"1mo"`), garbage, or a result above
 *   `Number.MAX_SAFE_INTEGER` give `undefined`. Never throws.
 *
 * @param value the header value, as read (may be `null`/`undefined`).
 * @returns the window length in milliseconds (> 0), or `undefined`.
 *
 * @example
 * ```ts
 * import { parsePeriod } from 'rx-ratelimit';
 *
 * parsePeriod('20 seconds'); // 20000  (Planning Center)
 * parsePeriod('1m');         // 60000  (TEOS)
 * parsePeriod('1d');         // 86400000
 * parsePeriod('0s');         // undefined
 * ```
 */
export function parsePeriod(value: string | null | undefined): number | undefined {
  const text = normalize(value);
  if (text === undefined) return undefined;
  let max: number | undefined;
  for (const part of text.split(',')) {
    const ms = parseOne(part.trim());
    if (ms === undefined) return undefined;
    // A longer window for the same quota is the slower, safer pace.
    max = max === undefined ? ms : Math.max(max, ms);
  }
  return max;
}

function parseOne(text: string): number | undefined {
  const match = PERIOD.exec(text);
  if (!match) return undefined;
  const [, amountText = '', unitText = ''] = match;
  const amount = parseUnsignedDecimal(amountText);
  const unitMs = unitText === '' ? SECOND : UNIT_MS.get(unitText.toLowerCase());
  if (amount === undefined || unitMs === undefined) return undefined;
  const ms = Math.round(amount * unitMs);
  if (!(ms > 0) || ms > Number.MAX_SAFE_INTEGER) return undefined;
  return ms;
}
