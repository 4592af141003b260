/**
 * A parser of HTTP Structured Field Values (RFC 9651, which obsoletes RFC 8941), for the two
 * top-level types the IETF rate-limit fields are made of: Lists and Dictionaries. Every bare item
 * type is parsed or refused by the RFC's rules (§4.2), the ones the rate-limit parsers then ignore
 * (booleans, dates, display strings, inner lists) included: one member a server got wrong makes
 * the whole field malformed, and a malformed field is ignored, never partly read.
 *
 * A single pass over the text, one character at a time, no regex that can backtrack and no
 * lookahead beyond a byte sequence's closing colon; text longer than {@link MAX_HEADER_LENGTH} is
 * refused before it is read, like every header parser here. Not part of the public API.
 *
 * @internal
 */
import { MAX_HEADER_LENGTH } from './internal.js';

/** An sf-token (`default`, `*`), kept apart from an sf-string. */
export interface Token {
  readonly token: string;
}

/** An sf-binary: the decoded bytes as a binary string (one character per byte, 0–255). */
export interface ByteSequence {
  readonly bytes: string;
}

/** An sf-date (RFC 9651): seconds since the Unix epoch. */
export interface SfDate {
  readonly date: number;
}

/** An sf-displaystring (RFC 9651): Unicode text. */
export interface DisplayString {
  readonly display: string;
}

/** Integers and decimals are both numbers (`1.0` reads as `1`); booleans, strings and the rest. */
export type BareItem = number | string | boolean | Token | ByteSequence | SfDate | DisplayString;
/** Parameters in field order; a repeated key keeps its first place and its last value. */
export type Parameters = ReadonlyMap<string, BareItem>;
export type Item = [BareItem, Parameters];
export type InnerList = [Item[], Parameters];
export type Member = Item | InnerList;
export type List = Member[];
/** Members in field order; a repeated key keeps its first place and its last value. */
export type Dictionary = Map<string, Member>;

/** Whether a member is an Item (not an Inner List). */
export function isItem(member: Member): member is Item {
  return !Array.isArray(member[0]);
}

/**
 * Parses a Structured Fields List; `undefined` when the text is not one or is longer than
 * `maxLength` (tests lift the cap to time the scanner on long text). Never throws.
 */
export function parseList(text: string, maxLength = MAX_HEADER_LENGTH): List | undefined {
  return parse(text, false, maxLength) as List | undefined;
}

/** Parses a Structured Fields Dictionary, like {@link parseList}. Never throws. */
export function parseDictionary(text: string, maxLength = MAX_HEADER_LENGTH): Dictionary | undefined {
  return parse(text, true, maxLength) as Dictionary | undefined;
}

/** The parameters of every member that has none (read-only, so one instance serves all). */
const NO_PARAMETERS: Parameters = new Map();

/** Raised by the scanner at the first character the grammar refuses; never leaves this module. */
class Malformed extends Error {}

// Each is tested against one character (or '' at the end of the text, which none matches).
const DIGIT = /[0-9]/;
const KEY_START = /[a-z*]/;
const KEY_CHAR = /[a-z0-9_.*-]/;
const TOKEN_START = /[A-Za-z*]/;
const TOKEN_CHAR = /[!#$%&'*+.^_`|~:/A-Za-z0-9-]/;
// Anchored, one class, no alternation: linear.
const BASE64 = /^[A-Za-z0-9+/=]*$/;
const LOWER_HEX = /^[0-9a-f]{2}$/;

function parse(input: string, dictionary: boolean, maxLength: number): List | Dictionary | undefined {
  if (typeof input !== 'string' || input.length > maxLength) return undefined;
  let pos = 0;
  const at = (): string => input.charAt(pos);
  const fail = (): never => {
    throw new Malformed();
  };
  const skipSpaces = (tabs: boolean): void => {
    while (at() === ' ' || (tabs && at() === '\t')) pos++;
  };

  // §4.2.4 (and §4.2.9 for a date, which must be an integer).
  const number = (integerOnly: boolean): number => {
    const start = pos;
    if (at() === '-') pos++;
    const digits = pos;
    let dot = -1;
    if (!DIGIT.test(at())) fail();
    for (;;) {
      const c = at();
      if (DIGIT.test(c)) pos++;
      else if (c === '.' && dot < 0) {
        if (pos - digits > 12) fail();
        dot = pos++;
      } else break;
      if (pos - digits > (dot < 0 ? 15 : 16)) fail();
    }
    if (dot >= 0 && (integerOnly || pos - dot === 1 || pos - dot > 4)) fail();
    return Number(input.slice(start, pos));
  };

  // §4.2.5: printable ASCII; `\` escapes only `"` and `\`. ('' at the end is below ' '.)
  const string = (): string => {
    let out = '';
    for (pos++; ;) {
      const c = input.charAt(pos++);
      if (c === '"') return out;
      if (c === '\\') {
        const escaped = input.charAt(pos++);
        if (escaped !== '"' && escaped !== '\\') fail();
        out += escaped;
      } else if (c < ' ' || c > '~') fail();
      else out += c;
    }
  };

  // §4.2.7: base64 between colons; missing padding is accepted, as the RFC asks of parsers.
  const bytes = (): ByteSequence => {
    const end = input.indexOf(':', ++pos);
    if (end < 0) fail();
    const base64 = input.slice(pos, end);
    pos = end + 1;
    if (!BASE64.test(base64)) fail();
    try {
      return { bytes: atob(base64) };
    } catch {
      return fail(); // misplaced `=`, or a length no base64 text has
    }
  };

  // §4.2.10 (RFC 9651): printable ASCII, `%` + two lower-case hex digits per byte, valid UTF-8.
  const displayString = (): DisplayString => {
    pos++;
    if (input.charAt(pos++) !== '"') fail();
    const octets: number[] = [];
    for (;;) {
      const c = input.charAt(pos++);
      if (c === '"') break;
      if (c < ' ' || c > '~') fail();
      if (c === '%') {
        const hex = input.slice(pos, (pos += 2));
        if (!LOWER_HEX.test(hex)) fail();
        octets.push(parseInt(hex, 16));
      } else octets.push(c.charCodeAt(0));
    }
    try {
      return { display: new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(octets)) };
    } catch {
      return fail(); // not UTF-8
    }
  };

  // §4.2.3.1
  const bareItem = (): BareItem => {
    const c = at();
    if (c === '-' || DIGIT.test(c)) return number(false);
    if (c === '"') return string();
    if (TOKEN_START.test(c)) {
      const start = pos;
      while (TOKEN_CHAR.test(at())) pos++;
      return { token: input.slice(start, pos) };
    }
    if (c === ':') return bytes();
    if (c === '?') {
      const bit = input.charAt(++pos);
      pos++;
      if (bit !== '0' && bit !== '1') fail();
      return bit === '1';
    }
    if (c === '@') {
      pos++;
      return { date: number(true) };
    }
    if (c === '%') return displayString();
    return fail();
  };

  // §4.2.3.3
  const key = (): string => {
    const start = pos;
    if (!KEY_START.test(at())) fail();
    while (KEY_CHAR.test(at())) pos++;
    return input.slice(start, pos);
  };

  // §4.2.3.2: a repeated key overwrites the value and keeps its place (so does Map#set). Members
  // without parameters share one empty map: a long list of bare members made one Map each, and
  // past the young generation of the heap the collector's work grew faster than the text (an
  // inner list of 100 KB took 17 times what 10 KB did).
  const parameters = (): Parameters => {
    if (at() !== ';') return NO_PARAMETERS;
    const params = new Map<string, BareItem>();
    while (at() === ';') {
      pos++;
      skipSpaces(false);
      const name = key();
      let value: BareItem = true;
      if (at() === '=') {
        pos++;
        value = bareItem();
      }
      params.set(name, value);
    }
    return params;
  };

  const item = (): Item => [bareItem(), parameters()];

  // §4.2.1.1 and §4.2.1.2
  const member = (): Member => {
    if (at() !== '(') return item();
    pos++;
    const items: Item[] = [];
    for (;;) {
      skipSpaces(false);
      if (at() === ')') {
        pos++;
        return [items, parameters()];
      }
      items.push(item());
      if (at() !== ' ' && at() !== ')') fail();
    }
  };

  /** After a member: `false` at the end of the text, `true` past a comma; a trailing comma fails. */
  const next = (): boolean => {
    skipSpaces(true);
    if (pos >= input.length) return false;
    if (at() !== ',') fail();
    pos++;
    skipSpaces(true);
    if (pos >= input.length) fail();
    return true;
  };

  try {
    // §4.2: leading spaces are discarded; an empty field is an empty List or Dictionary.
    skipSpaces(false);
    const empty = pos >= input.length;
    if (dictionary) {
      // §4.2.2: `key` alone is `key=?1` with its parameters.
      const dict: Dictionary = new Map();
      for (let more = !empty; more; more = next()) {
        const name = key();
        if (at() === '=') {
          pos++;
          dict.set(name, member());
        } else dict.set(name, [true, parameters()]);
      }
      return dict;
    }
    const list: List = [];
    for (let more = !empty; more; more = next()) list.push(member());
    return list;
  } catch (error) {
    if (error instanceof Malformed) return undefined;
    throw error;
  }
}
