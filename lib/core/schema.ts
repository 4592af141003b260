/**
 * Option schemas built from few zod/mini schema kinds: `number`, `string`, `boolean`,
 * `object`, `optional` and `custom`, with checks. Each kind zod offers brings its own class
 * into a browser bundle (`z.int()`, `z.enum()`, `z.union()`, `z.literal()`, `z.array()`,
 * `z.record()` and `z._default()` together cost about 2.3 KB gzipped), while a check costs a
 * closure; so whole numbers, choices, lists and maps are checks here. Each issue carries the
 * words `parseOptions` shows (`expected` in options.ts), so messages stay as precise as zod's.
 *
 * @internal
 * @packageDocumentation
 */
import * as z from 'zod/mini';

/**
 * A lone UTF-16 surrogate: text UTF-8 cannot carry, which an encoder writes as U+FFFD, so that
 * `"t\uD800"`, `"t\uDC00"` and `"t\uFFFD"` hash alike. Linear: each match looks one unit around.
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether `text` is well-formed Unicode (what `String.prototype.isWellFormed` tells, on every runtime). */
export const wellFormed = (text: string): boolean => !LONE_SURROGATE.test(text);

/** A credential: a non-empty string two of which never hash alike (no lone surrogate). */
export const credentialKey = () =>
  z
    .string()
    .check(
      z.minLength(1),
      z.refine(wellFormed, 'a string of well-formed Unicode (a lone surrogate would read as another key)'),
    );

/** What a count or a duration that may be `Infinity` must be. */
const NUMBER_OR_INFINITY = 'a number >= 0 (whole where it counts requests), or Infinity';

/** A whole number (what `z.int()` accepts: a finite number; 1.5 fails as "a whole number"). */
export const int = () => z.number().check(z.refine(Number.isInteger, { error: 'a whole number', abort: true }));

/** A whole number >= `min`, or `Infinity` (a count of requests with no cap). */
export const countOrInfinity = (min: number) =>
  z
    .custom<number>((v) => v === Infinity || Number.isInteger(v), { error: NUMBER_OR_INFINITY, abort: true })
    .check(z.minimum(min));

/** A number >= 0, or `Infinity` (a duration with no cap). */
export const msOrInfinity = () =>
  z
    .custom<number>((v) => v === Infinity || (typeof v === 'number' && Number.isFinite(v)), {
      error: NUMBER_OR_INFINITY,
      abort: true,
    })
    .check(z.minimum(0));

/** One of `values` (what `z.enum()` accepts, with its message: `one of "a", "b"`). */
export const oneOf = <const T extends readonly (string | boolean)[]>(values: T) =>
  z.custom<T[number]>(
    (v) => values.includes(v as T[number]),
    `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`,
  );

/**
 * Checks each of `entries` with `item` (in a `superRefine`), its issues under the entry's key or
 * index. They are zod's own, unfinished (`_zod.run`, not `safeParse`): each keeps whether it
 * stops the checks after it (a bad type does, a number out of range does not), as it would in a
 * `z.array()` or `z.record()`.
 */
export function checkEach(
  item: z.ZodMiniType,
  entries: Iterable<[PropertyKey, unknown]>,
  ctx: z.core.$RefinementCtx,
): void {
  for (const [key, value] of entries) {
    const { issues } = item._zod.run({ value, issues: [] }, {}) as z.core.ParsePayload;
    for (const issue of issues) {
      ctx.addIssue({ ...issue, path: [key, ...(issue.path ?? [])], continue: issue.continue === true } as never);
    }
  }
}

/** An array of `item`s (what `z.array(item)` accepts; item schemas here transform nothing). */
export const listOf = <S extends z.ZodMiniType>(item: S) =>
  z
    .custom<z.output<S>[]>(Array.isArray, { error: 'of type array', abort: true })
    .check(z.superRefine((list, ctx) => checkEach(item, list.entries(), ctx)));

/** An object of `item`s by string key (what `z.record(z.string(), item)` accepts). */
export const mapOf = <S extends z.ZodMiniType>(item: S) =>
  z
    .custom<Record<string, z.output<S>>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), {
      error: 'of type record',
      abort: true,
    })
    .check(z.superRefine((map, ctx) => checkEach(item, Object.entries(map), ctx)));

/**
 * `parsed` with each option left out (or `undefined`) set to its default (what `z._default`
 * does; a default is not checked).
 */
export function withDefaults<T extends object, D extends object>(parsed: T, defaults: D): WithDefaults<T, D> {
  const out = { ...parsed } as Record<string, unknown>;
  for (const [key, value] of Object.entries(defaults)) if (out[key] === undefined) out[key] = value;
  return out as WithDefaults<T, D>;
}

/** `T` whose options in `D` are set (as `number` or `boolean`, not as the default's literal type). */
export type WithDefaults<T, D> = Omit<T, keyof D> & {
  readonly [K in keyof D]: D[K] extends boolean ? boolean : D[K] extends number ? number : D[K];
};
