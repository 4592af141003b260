import { MONTHS, normalize, utcMs } from './internal.js';

const SHORT_DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const LONG_DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

// Whitespace is matched with \s+ rather than a single SP: proxies and hand-written servers
// are known to collapse or double spaces, and the fields are unambiguous either way.
const IMF_FIXDATE = /^(?:([a-z]+)\s*,\s*)?(\d{1,2})\s+([a-z]{3})\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})\s+(?:gmt|utc)$/i;
const RFC850_DATE = /^(?:([a-z]+)\s*,\s*)?(\d{1,2})-([a-z]{3})-(\d{2}|\d{4})\s+(\d{2}):(\d{2}):(\d{2})\s+(?:gmt|utc)$/i;
const ASCTIME_DATE = /^([a-z]+)\s+([a-z]{3})\s+(\d{1,2})\s+(\d{2}):(\d{2}):(\d{2})\s+(\d{4})$/i;

function isDayName(name: string | undefined): boolean {
  if (name === undefined) return true;
  const lower = name.toLowerCase();
  return SHORT_DAYS.includes(lower) || LONG_DAYS.includes(lower);
}

function monthNumber(name: string): number | undefined {
  const index = (MONTHS as readonly string[]).indexOf(name.toLowerCase());
  return index === -1 ? undefined : index + 1;
}

/**
 * RFC 9110 §5.6.7: a two-digit year that would lie more than 50 years in the future means the
 * most recent past year with the same last two digits. The symmetric lower bound keeps the result
 * within a 100-year window around `now` even when `now` is late in a century.
 */
function expandTwoDigitYear(yy: number, now: number): number {
  const nowYear = new Date(Number.isFinite(now) ? now : Date.now()).getUTCFullYear();
  let year = nowYear - (nowYear % 100) + yy;
  if (year > nowYear + 50) year -= 100;
  else if (year <= nowYear - 50) year += 100;
  return year;
}

function build(
  dayName: string | undefined,
  day: string,
  month: string,
  year: number,
  hour: string,
  minute: string,
  second: string,
): number | undefined {
  // A wrong weekday is tolerated (servers compute it badly), but a word that is no weekday at
  // all means this is not an HTTP-date.
  if (!isDayName(dayName)) return undefined;
  const m = monthNumber(month);
  if (m === undefined) return undefined;
  return utcMs(year, m, Number(day), Number(hour), Number(minute), Number(second));
}

/**
 * Parses an HTTP-date (RFC 9110 §5.6.7) into epoch milliseconds.
 *
 * Accepts all three forms a recipient must understand:
 * - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
 * - obsolete RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT`
 * - ANSI C asctime: `Sun Nov  6 08:49:37 1994`
 *
 * Behaviour notes:
 * - Always UTC, including asctime (which `new Date(string)` would read as local time).
 * - Case-insensitive; surrounding and repeated whitespace is tolerated; `UTC` is accepted for
 *   `GMT`; the leading day name may be missing or may not match the date.
 * - Fields are range-checked: `Mon, 30 Feb 2026 …` or hour `24` give `undefined`. A leap second
 *   (`:60`) is clamped to `:59`.
 * - An RFC 850 two-digit year is placed within 50 years of `now` (RFC 9110 rule), so with the
 *   default clock `94` means 1994 and `30` means 2030. `now` is consulted for nothing else.
 * - Never throws; returns `undefined` for anything else (including values over 1,000 characters).
 *
 * @param value the header value, as read (may be `null`/`undefined`).
 * @param now reference clock in epoch ms for RFC 850 two-digit years; defaults to `Date.now()`.
 * @returns epoch milliseconds, or `undefined` when `value` is not an HTTP-date.
 *
 * @example
 * ```ts
 * import { parseHttpDate } from 'rx-ratelimit';
 *
 * parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT'); // 784111777000
 * parseHttpDate('Sun Nov  6 08:49:37 1994');      // 784111777000
 * parseHttpDate('yesterday');                     // undefined
 * ```
 */
export function parseHttpDate(value: string | null | undefined, now: number = Date.now()): number | undefined {
  const text = normalize(value);
  if (text === undefined) return undefined;

  let match = IMF_FIXDATE.exec(text);
  if (match) {
    const [, dayName, day = '', month = '', year = '', hour = '', minute = '', second = ''] = match;
    return build(dayName, day, month, Number(year), hour, minute, second);
  }

  match = RFC850_DATE.exec(text);
  if (match) {
    const [, dayName, day = '', month = '', year = '', hour = '', minute = '', second = ''] = match;
    const fullYear = year.length === 2 ? expandTwoDigitYear(Number(year), now) : Number(year);
    return build(dayName, day, month, fullYear, hour, minute, second);
  }

  match = ASCTIME_DATE.exec(text);
  if (match) {
    const [, dayName = '', month = '', day = '', hour = '', minute = '', second = '', year = ''] = match;
    return build(dayName, day, month, Number(year), hour, minute, second);
  }

  return undefined;
}

/**
 * The members of a header value that lists values which may be HTTP-dates (a repeated header,
 * joined with `", "`), trimmed. It is split at each comma but the one after an HTTP-date's day
 * name (`Thu, 01 Jan 2026 00:00:00 GMT`), which belongs to the date. Never throws.
 *
 * @internal
 */
export function splitDateList(value: string): string[] {
  const out: string[] = [];
  let dayName: string | undefined;
  for (const part of value.split(',')) {
    const member = part.trim();
    if (dayName !== undefined) {
      out.push(`${dayName}, ${member}`);
      dayName = undefined;
    } else if (isDayName(member)) dayName = member;
    else out.push(member);
  }
  // A day name with nothing after it is a member of its own (one no parser reads).
  if (dayName !== undefined) out.push(dayName);
  return out;
}

/** Most members a header value sent as a list is read in (a header sent twice or thrice). */
const MAX_LIST_MEMBERS = 8;

/**
 * A wait or reset header sent more than once arrives joined (`"3, 3"`, fetch and Node join
 * repeated headers): each member read by `one`, the one that ends latest (`end`) kept, so that no
 * wait the server gave is cut short; `undefined` when a member is not one, or past
 * {@link MAX_LIST_MEMBERS}. HTTP-dates keep their commas ({@link splitDateList}).
 */
export function latestOfList<T>(
  text: string,
  one: (member: string) => T | undefined,
  end: (v: T) => number,
): T | undefined {
  if (!text.includes(',')) return undefined;
  const members = splitDateList(text);
  if (members.length > MAX_LIST_MEMBERS) return undefined;
  let latest: T | undefined;
  for (const member of members) {
    const v = one(member);
    if (v === undefined) return undefined;
    if (latest === undefined || end(v) > end(latest)) latest = v;
  }
  return latest;
}
