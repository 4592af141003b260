/**
 * The Structured Fields parser (lib/headers/structuredFields.ts) against the `structured-headers`
 * package it replaced (a devDependency, kept as the reference): the same text, from a grammar of
 * valid fields, mutations of them, random characters and long runs, must be accepted or refused by
 * both, and read as the same value.
 *
 * The reference departs from RFC 9651 in two places, corrected here before comparing (each has
 * its own rows in the RFC table below):
 * - it reads a date (`@1700000000`) to the end of the text, so `1;d=@5, 2` fails; the RFC reads
 *   an integer and carries on (§4.2.9).
 * - it lets characters above U+00FF through in a display string; the RFC fails any field that is
 *   not ASCII (§4.2).
 * And ours refuses text longer than the header cap (1,000 characters) that the reference reads.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import {
  DisplayString,
  Token,
  parseDictionary as referenceDictionary,
  parseList as referenceList,
} from 'structured-headers';

import { MAX_HEADER_LENGTH } from '../../lib/headers/internal.js';
import { parseDictionary, parseList } from '../../lib/headers/structuredFields.js';
// The reference's parser class (not in its exports map), to correct its date reading per instance.
import ReferenceParser from '../../node_modules/structured-headers/dist/parser.js';

type Kind = 'list' | 'dictionary';

/** The parser's internals that the date correction uses. */
interface ParserInternals {
  input: string;
  pos: number;
  parseIntegerOrDecimal(): number;
}

/** RFC 9651 §4.2.9: `@`, then an integer (not a decimal); what follows is the caller's. */
function rfcDate(this: ParserInternals): Date {
  this.pos++;
  const start = this.pos;
  const seconds = this.parseIntegerOrDecimal();
  if (this.input.slice(start, this.pos).includes('.')) throw new Error('a date must be an integer');
  return new Date(seconds * 1000);
}

const NON_ASCII = /[\x80-\uffff]/;

/** The reference's reading, corrected as above; `undefined` where it refuses the text. */
function reference(text: string, kind: Kind): unknown {
  if (NON_ASCII.test(text)) return undefined;
  const parser = new ReferenceParser(text);
  // An own property shadows the class's method for this instance only.
  Object.assign(parser, { parseDate: rfcDate });
  try {
    return plain(kind === 'list' ? parser.parseList() : parser.parseDictionary());
  } catch {
    return undefined;
  }
}

function ours(text: string, kind: Kind): unknown {
  return plain(kind === 'list' ? parseList(text) : parseDictionary(text));
}

/**
 * Either parser's value in one comparable shape: maps as `[key, value]` arrays (so order counts),
 * the reference's classes as our tagged objects.
 */
function plain(value: unknown): unknown {
  if (value instanceof Map) return [...value].map(([key, member]) => [key, plain(member)]);
  if (Array.isArray(value)) return value.map(plain);
  if (value instanceof Token) return { token: value.toString() };
  if (value instanceof DisplayString) return { display: value.toString() };
  if (value instanceof ArrayBuffer) return { bytes: String.fromCharCode(...new Uint8Array(value)) };
  if (value instanceof Date) return { date: value.getTime() / 1000 };
  // A Date holds less than an sf-date (not -0, nor beyond ±8.64e12 s): ours goes through one too.
  if (typeof value === 'object' && value !== null && 'date' in value) {
    return { date: new Date((value as { date: number }).date * 1000).getTime() / 1000 };
  }
  return value;
}

/** Both readings of the text as either type, and that they agree. */
function agree(text: string): { list: unknown; dictionary: unknown } {
  const read = { list: ours(text, 'list'), dictionary: ours(text, 'dictionary') };
  for (const kind of ['list', 'dictionary'] as const) {
    if (text.length > MAX_HEADER_LENGTH) expect(read[kind]).toBeUndefined();
    else expect([kind, text, read[kind]]).toEqual([kind, text, reference(text, kind)]);
  }
  return read;
}

// ---------------------------------------------------------------------------------------------
// A grammar of valid fields (RFC 9651 §3), with the optional whitespace a server may put in.

const chars = (set: string, minLength: number, maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...set), minLength, maxLength });

const DIGITS = '0123456789';
const LCALPHA = 'abcdefghijklmnopqrstuvwxyz';
const ALPHA = LCALPHA + LCALPHA.toUpperCase();
const TCHAR = "!#$%&'*+-.^_`|~" + DIGITS + ALPHA;
const PRINTABLE = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join('');

const sign = fc.constantFrom('', '', '-');
const integer = fc.tuple(sign, chars(DIGITS, 1, 15)).map(([s, d]) => s + d);
const decimal = fc.tuple(sign, chars(DIGITS, 1, 12), chars(DIGITS, 1, 3)).map(([s, i, f]) => `${s}${i}.${f}`);
const sfString = fc
  .array(fc.oneof(chars(PRINTABLE.replace(/["\\]/g, ''), 1, 3), fc.constantFrom('\\"', '\\\\')), { maxLength: 6 })
  .map((parts) => `"${parts.join('')}"`);
const token = fc.tuple(chars(ALPHA + '*', 1, 1), chars(TCHAR + ':/', 0, 8)).map(([a, b]) => a + b);
const byteSequence = fc.tuple(fc.uint8Array({ maxLength: 10 }), fc.boolean()).map(([bytes, padded]) => {
  const base64 = btoa(String.fromCharCode(...bytes));
  return `:${padded ? base64 : base64.replace(/=+$/, '')}:`;
});
const boolean = fc.constantFrom('?0', '?1');
const date = integer.map((i) => `@${i}`);
/** Any Unicode text, percent-encoded as UTF-8 where it is not printable ASCII (or is `%` or `"`). */
const displayString = fc.string({ unit: 'grapheme', maxLength: 6 }).map((text) => {
  let out = '';
  for (const byte of new TextEncoder().encode(text)) {
    const c = String.fromCharCode(byte);
    out += byte < 0x20 || byte > 0x7e || c === '%' || c === '"' ? `%${byte.toString(16).padStart(2, '0')}` : c;
  }
  return `%"${out}"`;
});
const bareItem = fc.oneof(
  { arbitrary: integer, weight: 3 },
  decimal,
  { arbitrary: sfString, weight: 2 },
  { arbitrary: token, weight: 2 },
  byteSequence,
  boolean,
  date,
  displayString,
);
/** Keys, often the rate-limit ones and often repeated. */
const key = fc.oneof(
  fc.constantFrom('q', 'w', 'r', 't', 'pk', 'qu', 'l', 'limit', 'remaining', 'reset', 'a', 'b'),
  fc.tuple(chars(LCALPHA + '*', 1, 1), chars(LCALPHA + DIGITS + '_-.*', 0, 6)).map(([a, b]) => a + b),
);
const sp = fc.constantFrom('', '', ' ', '  ');
const ows = fc.constantFrom('', '', ' ', '\t', ' \t ');
const parameters = fc
  .array(fc.tuple(sp, key, fc.option(bareItem, { nil: undefined })), { maxLength: 4 })
  .map((params) => params.map(([s, k, v]) => `;${s}${k}${v === undefined ? '' : `=${v}`}`).join(''));
const item = fc.tuple(bareItem, parameters).map(([b, p]) => b + p);
const innerList = fc
  .tuple(sp, fc.array(fc.tuple(item, fc.constantFrom(' ', '  ')), { maxLength: 4 }), sp, parameters)
  .map(([open, items, close, p]) => `(${open}${items.map(([i, s]) => i + s).join('')}${close})${p}`);
const member = fc.oneof({ arbitrary: item, weight: 3 }, innerList);
const dictionaryMember = fc.oneof(
  { arbitrary: fc.tuple(key, member).map(([k, m]) => `${k}=${m}`), weight: 3 },
  fc.tuple(key, parameters).map(([k, p]) => k + p),
);
/** Members joined by commas with optional whitespace around them, leading spaces, trailing OWS. */
const fieldOf = (members: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc
    .tuple(fc.constantFrom('', '', ' ', '   '), fc.array(fc.tuple(ows, members, ows), { maxLength: 5 }), ows)
    .map(([lead, ms, trail]) => lead + ms.map(([a, m, b]) => a + m + b).join(',') + (ms.length > 0 ? trail : ''))
    .map((field) => field.replace(/^[ \t]+/, (s) => s.replace(/\t/g, ' ')));
const list = fieldOf(member);
const dictionary = fieldOf(dictionaryMember);

/** Characters that matter to the grammar, and some it refuses. */
const INTERESTING = [...',;=()"\\:?@%*-. \t0123456789aZ/+', '\x00', '\x7f', '\x80', 'é', '\u0100', '\ud800', '€'];

type Edit = { kind: 'delete' | 'insert' | 'replace' | 'duplicate' | 'truncate'; at: number; c: string };
const edit: fc.Arbitrary<Edit> = fc.record({
  kind: fc.constantFrom('delete', 'insert', 'replace', 'duplicate', 'truncate'),
  at: fc.nat(),
  c: fc.constantFrom(...INTERESTING),
});

function mutate(text: string, edits: Edit[]): string {
  let out = text;
  for (const { kind, at: n, c } of edits) {
    const at = out.length === 0 ? 0 : n % out.length;
    if (kind === 'delete') out = out.slice(0, at) + out.slice(at + 1);
    else if (kind === 'insert') out = out.slice(0, at) + c + out.slice(at);
    else if (kind === 'replace') out = out.slice(0, at) + c + out.slice(at + 1);
    else if (kind === 'duplicate') out = out.slice(0, at) + out.slice(at, at + 1 + (n % 7)) + out.slice(at);
    else out = out.slice(0, at);
  }
  return out;
}

const mutated = fc
  .tuple(fc.oneof(list, dictionary), fc.array(edit, { minLength: 1, maxLength: 3 }))
  .map(([text, edits]) => mutate(text, edits));

const random = fc.oneof(
  fc.string({ unit: fc.constantFrom(...INTERESTING), maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: fc.constantFrom(...PRINTABLE), maxLength: 30 }),
);

/** Long fields: one member repeated up to well past the cap, and the same broken near its end. */
const long = fc
  .tuple(fc.oneof(item, dictionaryMember), fc.integer({ min: 1, max: 400 }), fc.option(edit, { nil: undefined }))
  .map(([m, times, last]) => {
    const text = Array.from({ length: times }, () => m).join(', ');
    return last === undefined ? text : mutate(text, [{ ...last, at: text.length - 1 - (last.at % 8) }]);
  });

const isRead = (value: unknown): boolean => value !== undefined;

describe('the Structured Fields parser reads what the reference reads, and refuses what it refuses', () => {
  it('reads every valid List and Dictionary as the reference does', () => {
    fc.assert(
      fc.property(list, dictionary, (l, d) => {
        expect(isRead(agree(l).list)).toBe(true);
        expect(isRead(agree(d).dictionary)).toBe(true);
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees on mutated fields, reading some and refusing others', () => {
    let read = 0;
    let refused = 0;
    fc.assert(
      fc.property(mutated, (text) => {
        const { list: l, dictionary: d } = agree(text);
        if (isRead(l) || isRead(d)) read++;
        else refused++;
      }),
      { numRuns: 5000 },
    );
    // Both outcomes are exercised, so agreement is not agreement on one answer.
    expect(Math.min(read, refused)).toBeGreaterThan(500);
  });

  it('agrees on random characters', () => {
    fc.assert(
      fc.property(random, (text) => {
        agree(text);
      }),
      { numRuns: 5000 },
    );
  });

  it('agrees on long fields up to the cap and refuses any longer', () => {
    let overCap = 0;
    fc.assert(
      fc.property(long, (text) => {
        agree(text);
        if (text.length > MAX_HEADER_LENGTH) overCap++;
      }),
      { numRuns: 500 },
    );
    expect(overCap).toBeGreaterThan(50);
  });
});

/** Maps as `[key, value]` arrays, as {@link plain} gives them. */
type Plain = unknown;
const t = (token: string): Plain => ({ token });

describe('the RFC 9651 rules, row by row (ours, and the reference where it follows the RFC)', () => {
  it.each<[string, string, Kind, Plain]>([
    // §4.2: leading spaces are dropped, trailing spaces and tabs too; a leading tab is not whitespace.
    [
      'leading and trailing spaces',
      '  a, b  ',
      'list',
      [
        [t('a'), []],
        [t('b'), []],
      ],
    ],
    ['trailing tab', 'a\t', 'list', [[t('a'), []]]],
    [
      'tabs around a comma',
      'a\t,\tb',
      'list',
      [
        [t('a'), []],
        [t('b'), []],
      ],
    ],
    ['a leading tab', '\ta', 'list', undefined],
    ['an empty field is an empty list', '', 'list', []],
    ['only spaces is an empty dictionary', '   ', 'dictionary', []],
    // Empty members.
    ['two commas', 'a,,b', 'list', undefined],
    ['a trailing comma', 'a,', 'list', undefined],
    ['a trailing comma and space', 'a, ', 'list', undefined],
    ['a leading comma', ',a', 'list', undefined],
    ['only a comma', ',', 'dictionary', undefined],
    // §4.2.4 integers: at most 15 digits, no plus sign.
    ['15 digits', '999999999999999', 'list', [[999999999999999, []]]],
    ['-15 digits', '-999999999999999', 'list', [[-999999999999999, []]]],
    ['16 digits', '1000000000000000', 'list', undefined],
    ['a leading zero', '007', 'list', [[7, []]]],
    ['a plus sign', '+1', 'list', undefined],
    ['a lone minus', '-', 'list', undefined],
    ['minus then space', '- 1', 'list', undefined],
    ['an exponent', '1e3', 'list', undefined],
    // §4.2.4 decimals: at most 12 integer and 3 fraction digits.
    ['12.3 digits', '123456789012.123', 'list', [[123456789012.123, []]]],
    ['13 integer digits', '1234567890123.1', 'list', undefined],
    ['4 fraction digits', '1.1234', 'list', undefined],
    ['a trailing dot', '1.', 'list', undefined],
    ['a leading dot', '.5', 'list', undefined],
    ['two dots', '1..2', 'list', undefined],
    ['a negative decimal', '-0.5', 'list', [[-0.5, []]]],
    // §4.2.5 strings: only \" and \\ escape; printable ASCII only.
    ['an escaped quote', '"a\\"b"', 'list', [['a"b', []]]],
    ['an escaped backslash', '"a\\\\b"', 'list', [['a\\b', []]]],
    ['another escape', '"a\\nb"', 'list', undefined],
    ['an unterminated string', '"ab', 'list', undefined],
    ['a backslash at the end', '"ab\\', 'list', undefined],
    ['a tab in a string', '"a\tb"', 'list', undefined],
    ['a non-ASCII string', '"café"', 'list', undefined],
    // §4.2.6 tokens.
    [
      'tokens with : and /',
      '*foo, Foo/bar:baz',
      'list',
      [
        [t('*foo'), []],
        [t('Foo/bar:baz'), []],
      ],
    ],
    // §4.2.7 byte sequences: padding optional, base64 characters only.
    ['a byte sequence', ':aGVsbG8=:', 'list', [[{ bytes: 'hello' }, []]]],
    ['no padding', ':aGVsbG8:', 'list', [[{ bytes: 'hello' }, []]]],
    ['an impossible base64 length', ':a:', 'list', undefined],
    ['a space in base64', ':aGVs bG8=:', 'list', undefined],
    ['no closing colon', ':aGVsbG8=', 'list', undefined],
    // §4.2.8 booleans.
    [
      'booleans',
      '?1, ?0',
      'list',
      [
        [true, []],
        [false, []],
      ],
    ],
    ['?2', '?2', 'list', undefined],
    ['a lone ?', '?', 'list', undefined],
    // §4.2.9 dates (RFC 9651).
    ['a date', '@1700000000', 'list', [[{ date: 1700000000 }, []]]],
    ['a decimal date', '@1.5', 'list', undefined],
    // §4.2.10 display strings (RFC 9651): lower-case hex, valid UTF-8.
    ['a display string', '%"caf%c3%a9"', 'list', [[{ display: 'café' }, []]]],
    ['upper-case hex', '%"caf%C3%A9"', 'list', undefined],
    ['bad UTF-8', '%"%c3"', 'list', undefined],
    // §4.2.2 dictionaries: the last value of a repeated key wins, in the first one's place.
    [
      'a repeated key',
      'a=1, b=2, a=3',
      'dictionary',
      [
        ['a', [3, []]],
        ['b', [2, []]],
      ],
    ],
    [
      'a key alone is true',
      'a;x=1, b',
      'dictionary',
      [
        ['a', [true, [['x', 1]]]],
        ['b', [true, []]],
      ],
    ],
    ['an upper-case key', 'A=1', 'dictionary', undefined],
    ['a key starting with a digit', '1a=1', 'dictionary', undefined],
    ['a space before =', 'a =1', 'dictionary', undefined],
    // §4.2.3.2 parameters: in field order, a repeated key keeps its place and takes the last value.
    [
      'parameter order',
      '1;b=2;a=1;b=3',
      'list',
      [
        [
          1,
          [
            ['b', 3],
            ['a', 1],
          ],
        ],
      ],
    ],
    ['a space after ;', '1; a=1', 'list', [[1, [['a', 1]]]]],
    ['a space before ;', '1 ;a=1', 'list', undefined],
    ['an upper-case parameter', '1;Q=1', 'list', undefined],
    // §4.2.1.2 inner lists.
    [
      'an inner list',
      '( 1  "x" );a',
      'list',
      [
        [
          [
            [1, []],
            ['x', []],
          ],
          [['a', true]],
        ],
      ],
    ],
    ['an empty inner list', '()', 'list', [[[], []]]],
    ['commas in an inner list', '(1,2)', 'list', undefined],
    ['an unclosed inner list', '(1 2', 'list', undefined],
    ['a nested inner list', '((1))', 'list', undefined],
  ])('%s: %j as a %s', (_label, text, kind, expected) => {
    expect(ours(text, kind)).toEqual(expected);
    expect(reference(text, kind)).toEqual(expected);
  });

  it.each<[string, string, Kind, Plain]>([
    [
      'a date before other members',
      '1;d=@5, 2',
      'list',
      [
        [1, [['d', { date: 5 }]]],
        [2, []],
      ],
    ],
    ['a date before a parameter', 'a=@-5;x', 'dictionary', [['a', [{ date: -5 }, [['x', true]]]]]],
    ['a character above U+00FF in a display string', '%"\u0100"', 'list', undefined],
  ])('%s: %j as a %s (where the reference departs from the RFC)', (_label, text, kind, expected) => {
    expect(ours(text, kind)).toEqual(expected);
    expect(reference(text, kind)).toEqual(expected);
    // The uncorrected reference reads it otherwise: the correction is still needed.
    let raw: unknown;
    try {
      raw = plain(kind === 'list' ? referenceList(text) : referenceDictionary(text));
    } catch {
      raw = undefined;
    }
    expect(raw).not.toEqual(expected);
  });

  it('reads a field of exactly the cap and refuses one character more', () => {
    const atCap = `${'1, '.repeat(333)}1`;
    expect(atCap.length).toBe(MAX_HEADER_LENGTH);
    expect(parseList(atCap)).toHaveLength(334);
    expect(parseList(`${atCap} `)).toBeUndefined();
    expect(parseDictionary(`a=${'1'.repeat(MAX_HEADER_LENGTH - 1)}`)).toBeUndefined();
  });
});
