/**
 * Helpers shared by the provider profiles: endpoint keys (per-endpoint buckets), the options
 * every profile takes (`hints`, `extraBuckets`), safe body access, and retry-time selection.
 * Pure: no clock, no I/O, no RxJS; nothing here throws on a response.
 */
import * as z from 'zod/mini';
import { int, listOf, mapOf, oneOf } from '../core/schema.js';
import type { ResponseLike } from '../core/response.js';
import type { ResetValue } from '../headers/reset.js';
import { bucketSpecSchema } from './define.js';
import { endpointKey } from './route.js';

export { endpointKey, endpointPath } from './route.js';
import { readRetryAfter } from './read.js';
import type { BucketSpec, ResponseReading } from './types.js';

const ENDPOINT_KEY = /^([a-z]+)\s+(\S+)$/i;

/**
 * Normalises an endpoint key written by hand (`"get /projects/{id}/tasks"`) to the form
 * {@link endpointKey} gives, or `undefined` when it is not `METHOD /path`.
 *
 * ```ts
 * import { normalizeEndpointKey } from 'rx-ratelimit';
 * normalizeEndpointKey('get /projects/{project_id}/tasks'); // 'GET /projects/:id/tasks'
 * ```
 */
export function normalizeEndpointKey(key: string): string | undefined {
  const match = ENDPOINT_KEY.exec(key.trim());
  if (!match) return undefined;
  return endpointKey({ method: match[1] ?? 'GET', url: match[2] ?? '' });
}

/**
 * A documented hint overridden by bucket name: only the starting numbers, headers still rule.
 *
 * ```ts
 * import { providers, type HintOverride } from 'rx-ratelimit';
 * const hourly: HintOverride = { limit: 1800 };
 * const procore = providers.procore({ hints: { hourly } });
 * ```
 */
export interface HintOverride {
  /** Requests per window until a response tells. */
  readonly limit?: number;
  /** Window length in ms. */
  readonly windowMs?: number;
  /**
   * How the bucket spends its window: `'smooth'` sends one request every `windowMs / limit`,
   * `'burst'` sends as fast as the budget allows. Defaults to the profile's choice (TEOS's
   * `minute` is smooth, as its doc asks; other buckets burst).
   */
  readonly pacing?: 'smooth' | 'burst';
  /** A leaky (token) bucket's restore rate, units per second (Shopify's `rest` and `graphql`); ignored by window buckets. */
  readonly restorePerSecond?: number;
}

/**
 * Options every provider profile takes, besides its own.
 *
 * ```ts
 * import { providers, type CommonProviderOptions } from 'rx-ratelimit';
 * const common: CommonProviderOptions = {
 *   hints: { hourly: { limit: 1800 } },                             // start from a lower number
 *   extraBuckets: [{ name: 'self', limit: 10, windowMs: 1000 }],    // a budget of our own
 * };
 * const procore = providers.procore(common);
 * ```
 */
export interface CommonProviderOptions {
  /** Overrides documented hints by bucket name (`hourly`, `window`, `minute`, …). */
  readonly hints?: Readonly<Record<string, HintOverride>>;
  /** Buckets added to every request (a budget of your own on top of the provider's). */
  readonly extraBuckets?: readonly BucketSpec[];
}

const hint = z.strictObject({
  limit: z.optional(int().check(z.minimum(0))),
  windowMs: z.optional(z.number().check(z.positive())),
  pacing: z.optional(oneOf(['smooth', 'burst'])),
  restorePerSecond: z.optional(z.number().check(z.positive())),
});

/** @internal zod shape of {@link CommonProviderOptions}; spread into each profile's schema. */
export const commonShape = {
  hints: z.optional(mapOf(hint)),
  extraBuckets: z.optional(listOf(bucketSpecSchema)),
};

/** @internal The part of parsed options {@link checkBucketNames} looks at. */
export interface NamedOptions {
  readonly hints?: Readonly<Record<string, unknown>> | undefined;
  readonly extraBuckets?: readonly { readonly name: string }[] | undefined;
}

/**
 * @internal A zod refinement: every `hints` key must name a bucket of the profile (`known`),
 * and no `extraBuckets` entry may reuse one. `what` describes the known names in the error.
 */
export function checkBucketNames<T extends NamedOptions>(known: (name: string) => boolean, what: string) {
  return (o: T, ctx: z.core.$RefinementCtx<T>): void => {
    for (const name of Object.keys(o.hints ?? {})) {
      if (!known(name))
        ctx.addIssue({ code: 'custom', message: `keyed by a bucket name (${what})`, path: ['hints', name] });
    }
    (o.extraBuckets ?? []).forEach((b, i) => {
      if (known(b.name))
        ctx.addIssue({
          code: 'custom',
          message: `a name not used by the provider (${what})`,
          path: ['extraBuckets', i, 'name'],
        });
    });
  };
}

/** @internal A spec with its hint overridden (by `hints[spec.name]`) when there is one. */
export function hinted(spec: BucketSpec, hints: CommonProviderOptions['hints'], override?: HintOverride): BucketSpec {
  const h = override ?? hints?.[spec.name];
  if (!h) return spec;
  const out: { -readonly [K in keyof BucketSpec]: BucketSpec[K] } = { ...spec };
  if (h.limit !== undefined) out.limit = h.limit;
  if (h.windowMs !== undefined) out.windowMs = h.windowMs;
  if (h.pacing !== undefined) out.pacing = h.pacing;
  if (h.restorePerSecond !== undefined && spec.restorePerSecond !== undefined)
    out.restorePerSecond = h.restorePerSecond;
  return out;
}

/** @internal The profile's own specs with hints applied, then the extra buckets. */
export function withCommon(specs: readonly BucketSpec[], o: CommonProviderOptions): readonly BucketSpec[] {
  return [...specs.map((s) => hinted(s, o.hints)), ...(o.extraBuckets ?? [])];
}

/** Bodies longer than this are not parsed: rate-limit bodies are a few hundred bytes. */
const MAX_BODY = 64 * 1024;

/**
 * @internal A body as a value: a JSON string is parsed (a string that is not JSON stays a
 * string), anything else is returned as is. Never throws.
 */
export function bodyValue(body: unknown): unknown {
  if (typeof body !== 'string' || body.length > MAX_BODY) return body;
  const text = body.trim();
  if (!text.startsWith('{') && !text.startsWith('[')) return body;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return body;
  }
}

/** @internal `o[key]` when `o` is a plain object, else `undefined`; a throwing getter reads as undefined. */
export function field(o: unknown, key: string): unknown {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined;
  try {
    return (o as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** @internal The elements of `o` when it is an array (a throwing proxy reads as none). */
export function items(o: unknown): readonly unknown[] {
  try {
    return Array.isArray(o) ? o.slice(0, 100) : [];
  } catch {
    return [];
  }
}

/** @internal A whole number ≥ 0 from a number or a numeric string. */
export function countOf(v: unknown): number | undefined {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

/**
 * @internal The retry fields of a limited response, in the order the docs rank them:
 * `Retry-After`, else a time in the body (`bodyAt`, server clock), else the reset of the
 * exhausted window. Empty when there is none.
 */
export function retryFields(
  res: ResponseLike,
  bodyAt: number | undefined,
  reset: ResetValue | undefined,
): Pick<ResponseReading, 'retryAfter' | 'retrySource'> {
  const header = readRetryAfter(res);
  if (header.retryAfter) return header;
  if (bodyAt !== undefined) return { retryAfter: { at: bodyAt }, retrySource: 'body' };
  if (reset !== undefined)
    return { retryAfter: 'at' in reset ? { at: reset.at } : { delayMs: reset.inMs }, retrySource: 'reset' };
  return {};
}
