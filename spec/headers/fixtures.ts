import fc from 'fast-check';

/**
 * Values that no parser in lib/headers may read as anything. Non-strings are cast: the parsers
 * are typed for header values but may be handed anything by untyped callers.
 */
export const GARBAGE: readonly unknown[] = [
  '',
  ' ',
  '\t\n ',
  null,
  undefined,
  'abc',
  '12abc',
  'NaN',
  'Infinity',
  '-Infinity',
  '0x10',
  '1e5',
  '1_000',
  '.',
  '--1',
  '1'.repeat(1001),
  ` ${'2'.repeat(999)} `,
  123,
  {},
  [],
  true,
  Symbol('x'),
  () => '1',
];

/** {@link GARBAGE} as `[label, value]` rows for `it.each`, with long strings abbreviated. */
export const GARBAGE_ROWS: readonly (readonly [string, unknown])[] = GARBAGE.map((value) => {
  if (typeof value === 'string') {
    const shown = value.length > 20 ? `${value.slice(0, 8)}…(${value.length} chars)` : value;
    return [JSON.stringify(shown), value] as const;
  }
  return [typeof value === 'symbol' ? 'a symbol' : `${typeof value} ${String(value)}`, value] as const;
});

/** Characters that make up real rate-limit values, to reach deep into the parsers. */
const HEADERISH = [...'0123456789 -+.:,;="()?*TtZzGMTUTCSunNovJanFebmshdwminsecondayl=qrwpk'];

/**
 * Arbitrary header values: printable, full-Unicode, binary, and header-like strings, plus
 * non-string junk.
 */
export const anyHeaderValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom(...HEADERISH), maxLength: 40 }),
  fc.anything(),
);

/** Property-test settings: enough runs to hit odd corners, still fast. */
export const RUNS = { numRuns: 2000 } as const;

/** Years 0–99 are mapped to 1900–1999 by Date.UTC, so build such dates by hand. */
export function utcYear(year: number, month = 0, day = 1): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  return d.getTime();
}
