import type { SchedulerLike } from 'rxjs';
import * as z from 'zod/mini';
import type { Provider } from './provider.js';
import { MIN_SECRET_LENGTH } from './keyLabel.js';
import { countOrInfinity, credentialKey, int, msOrInfinity, withDefaults, type WithDefaults } from './schema.js';
import type { ResponseExtractor } from './response.js';
import type { CacheOptions } from './sharing.js';
import type { LimiterStore } from './store.js';
import { MAX_SERVER_WAIT_LIMIT_MS } from './window.js';

/** Options of `createLimiter`. Only `provider` and `key` are required. */
export interface LimiterOptions {
  /** The provider profile: `providers.procore()`, `providers.generic()`, `defineProvider(…)`. */
  readonly provider: Provider;
  /**
   * Whose budget this is: the token, or any string naming it. Only a hash of it is ever shown
   * (state, events, errors); the key itself is not kept.
   */
  readonly key: string;
  /** A name to show instead of the key's hash (must not be the token); use one when the key is guessable (a PIN). */
  readonly label?: string;
  /**
   * The secret (16+ characters) that keys the hash in the key's label. Without it each process
   * draws its own, so the label cannot be reversed by guessing keys but differs between
   * processes; give every process the same secret when their logs must agree. Never shown.
   * @default a random secret per process
   */
  readonly labelSecret?: string;
  /** Time source for every wait. @default asyncScheduler */
  readonly scheduler?: SchedulerLike;
  /**
   * Longest a request is held in the limiter, counted from when it was queued (a retry: from
   * when it was queued again), wherever it is in the queue: it is admitted by then or fails
   * with `QuotaExhaustedError` (carrying `resumeAt`) instead of sleeping. It fails at once
   * when its wait is known to end past that (a reset, a pause, the requests before it),
   * otherwise (no response has told yet, `maxConcurrent`) when that time comes.
   * @default 600_000 (10 minutes)
   */
  readonly maxWaitMs?: number;
  /**
   * Most requests allowed to wait. At the cap a request that cannot go at once fails with
   * `QueueFullError`, unless its `priority` is higher than the lowest one waiting: it then takes
   * the place of that request (of the lowest priority, the one queued last), which fails with
   * `QueueFullError` (and a `queue-full` event) instead. @default Infinity
   */
  readonly maxQueue?: number;
  /** Most requests in flight at once, whatever the budget. @default Infinity */
  readonly maxConcurrent?: number;
  /**
   * Requests sent on a bucket before its first response has told the limits: the cold start
   * does not burst on a guess. @default 1
   */
  readonly coldStartConcurrency?: number;
  /**
   * Margin after a reset before the bucket is refilled: the server's clock and rounding. Left to
   * its default: 50 ms after a reset the server told; with the memory store, after the end of a
   * window bounded by our own answer (a window after an answer from it: windows from the first
   * request, a whole-second reset the answer sharpens, a rolling window's answered call), a
   * thousandth of the window, 10 ms to 50 ms. Set, it applies after every end of this limiter's
   * requests. @default 50
   */
  readonly resetGuardMs?: number;
  /** First backoff after a 429 that gave no time to wait; doubles per 429 in a row. @default 1000 */
  readonly backoffBaseMs?: number;
  /** Cap of that backoff. @default 60_000 */
  readonly backoffMaxMs?: number;
  /** How long a block (Pipedrive's 403 page) lasts before one request may try again. @default 900_000 */
  readonly blockCooldownMs?: number;
  /**
   * The lease of a permit: a request neither answered nor ended this long after it was sent
   * (a promise that never settles, a stream nobody unsubscribes) gives its slot back as if it
   * had ended without an answer, with a `permit-expired` event, so it cannot hold a cold or
   * `maxConcurrent` slot forever. Its response, if it still comes, is read as usual. Raise it
   * for requests that legitimately take longer (large uploads); `0` or `Infinity`: no lease.
   * @default 300_000 (5 minutes)
   */
  readonly permitTimeoutMs?: number;
  /**
   * Random source for backoff jitter: a function returning a number in [0, 1). It must be a
   * function (checked when the limiter is created; it is not called then, so a seeded source
   * keeps its sequence); each value it returns is clamped into [0, 1], and `NaN`, a non-number
   * or a throw counts as 1 (the longest jitter), so a bad source never shortens or drops a
   * 429's backoff.
   * @default Math.random
   */
  readonly random?: () => number;
  /**
   * Longest wait a server may dictate: a `Retry-After`, a reset time, or a block's or pause's
   * end read from a response (or from a shared store) further away than this is taken as
   * garbage, not obeyed: the limiter falls back to its own capped backoff (`backoffMaxMs`) as if
   * the server had said nothing. The default allows a daily quota that resets at midnight (up to
   * 24 h away, 25 h on a day with a daylight-saving change) with an hour to spare for clock skew;
   * no documented provider asks for more than a day. @default 93_600_000 (26 hours)
   */
  readonly maxServerWaitMs?: number;
  /** Finds the response in what a request emits or throws. @default extractResponse */
  readonly extractResponse?: ResponseExtractor;
  /**
   * Identical GET/HEAD requests (same URL and same headers, see `RequestInfo.headers`) in flight
   * at once on this limiter share one request; each subscriber gets its own copy (fetch
   * `Response`s are cloned, other responses copied with their body), and when it fails its own
   * copy of the error (same class, message, status and body; the first subscriber gets the
   * error itself). @default true
   */
  readonly dedupe?: boolean;
  /**
   * Serve repeated identical GET/HEAD responses (2xx) from memory for `ttlMs`, or for less when
   * the server says the response goes stale sooner: `Cache-Control: max-age` (less its `Age`),
   * else `Expires` less `Date`. Never one with `Cache-Control: no-store`, `no-cache` or `private`,
   * `max-age=0`, `must-revalidate` without a lifetime, an `Expires` past or invalid,
   * `Set-Cookie`, or `Vary: *`. @default undefined (off)
   */
  readonly cache?: CacheOptions;
  /**
   * Where the buckets live. The memory store keeps them in this limiter; `redisStore(…)` from
   * `rx-ratelimit/redis` shares them between every process that uses the same key.
   * @default memoryStore()
   */
  readonly store?: LimiterStore;
}

/** Default of `maxServerWaitMs`: a daily reset (24 h, 25 h across a DST change) plus an hour of skew. */
export const DEFAULT_MAX_SERVER_WAIT_MS = 26 * 3_600_000;

/**
 * @internal A jitter value from `random`, forced into [0, 1]: out-of-range values are clamped,
 * and `NaN` (or a non-number) counts as 1, the longest jitter, so a broken source never makes a
 * backoff shorter, nor `NaN` (which would drop the pause).
 */
export function jitterOf(random: () => number): number {
  let v: unknown;
  try {
    v = random();
  } catch {
    return 1;
  }
  if (typeof v !== 'number' || Number.isNaN(v)) return 1;
  return Math.min(1, Math.max(0, v));
}

/** @internal A secret option: a string of at least 16 characters (its value is never echoed). */
export const secretSchema = z
  .string()
  .check(z.refine((s) => s.length >= MIN_SECRET_LENGTH, `a string of at least ${MIN_SECRET_LENGTH} characters`));

/** Options whose values are secrets: an error about them never shows what was given. */
export const SECRET_OPTIONS: ReadonlySet<string> = new Set(['key', 'labelSecret', 'secret']);

// zod/mini, not the classic `zod` API: its functions tree-shake (a browser bundle keeps only the
// schema kinds used; schema.ts builds the rest from checks) and it loads no locale, so every
// message below is written here.
/** A function option; the message says what it must be. */
const fn = <F>(what: string) => z.custom<F>((f) => typeof f === 'function', what);

const schema = z.strictObject({
  provider: z.custom<Provider>(
    (p) =>
      typeof p === 'object' &&
      p !== null &&
      typeof (p as Provider).name === 'string' &&
      typeof (p as Provider).buckets === 'function' &&
      typeof (p as Provider).read === 'function',
    'a provider (providers.generic(), defineProvider(…))',
  ),
  key: credentialKey(),
  label: z.optional(z.string().check(z.minLength(1))),
  labelSecret: z.optional(secretSchema),
  scheduler: z.optional(
    z.custom<SchedulerLike>(
      (s) =>
        typeof s === 'object' &&
        s !== null &&
        typeof (s as SchedulerLike).schedule === 'function' &&
        typeof (s as SchedulerLike).now === 'function',
      'an RxJS SchedulerLike',
    ),
  ),
  maxWaitMs: z.optional(msOrInfinity()),
  maxQueue: z.optional(countOrInfinity(0)),
  maxConcurrent: z.optional(countOrInfinity(1)),
  coldStartConcurrency: z.optional(countOrInfinity(1)),
  resetGuardMs: z.optional(z.number().check(z.minimum(0), z.maximum(60_000))),
  backoffBaseMs: z.optional(msOrInfinity()),
  backoffMaxMs: z.optional(msOrInfinity()),
  blockCooldownMs: z.optional(msOrInfinity()),
  permitTimeoutMs: z.optional(msOrInfinity()),
  random: z.optional(fn<() => number>('a function returning a number in [0, 1) (like Math.random)')),
  maxServerWaitMs: z.optional(int().check(z.minimum(1000), z.maximum(MAX_SERVER_WAIT_LIMIT_MS))),
  extractResponse: z.optional(fn<ResponseExtractor>('a function')),
  dedupe: z.optional(z.boolean()),
  cache: z.optional(
    z.strictObject({
      ttlMs: z.number().check(z.positive()),
      maxEntries: z.optional(int().check(z.minimum(1))),
      maxBytes: z.optional(int().check(z.minimum(1))),
    }),
  ),
  store: z.optional(
    z.custom<LimiterStore>(
      (s) =>
        typeof s === 'object' &&
        s !== null &&
        typeof (s as LimiterStore).open === 'function' &&
        typeof (s as LimiterStore).kind === 'string',
      'a store (memoryStore(), redisStore(…))',
    ),
  ),
});

/** `resetGuardMs` when left to its default, after a reset the server told (see {@link LimiterOptions}). */
export const RESET_GUARD_MS = 50;

/** Defaults of the options that have one (see {@link LimiterOptions}); `resetGuardMs` is the engine's. */
const DEFAULTS = {
  maxWaitMs: 600_000,
  maxQueue: Infinity,
  maxConcurrent: Infinity,
  coldStartConcurrency: 1,
  backoffBaseMs: 1000,
  backoffMaxMs: 60_000,
  blockCooldownMs: 900_000,
  permitTimeoutMs: 300_000,
  maxServerWaitMs: DEFAULT_MAX_SERVER_WAIT_MS,
  dedupe: true,
} as const;

/** @internal The defaults, for registrations to compare options as the limiter reads them. */
export const LIMITER_DEFAULTS: Readonly<Record<string, unknown>> = DEFAULTS;

/** @internal Validated options with defaults applied. */
export type ParsedLimiterOptions = WithDefaults<z.output<typeof schema>, typeof DEFAULTS>;

/**
 * @internal Checks options; throws a TypeError naming the option, what was expected and what came.
 * `maxConcurrent` left out is the provider's own (GitHub's 100), checked here too.
 */
export function parseLimiterOptions(options: LimiterOptions, where = 'createLimiter'): ParsedLimiterOptions {
  const parsed = withDefaults(parseOptions(where, schema, options), DEFAULTS);
  if (options.maxConcurrent !== undefined) return parsed;
  return { ...parsed, maxConcurrent: providerConcurrency(parsed.provider, where) };
}

/**
 * @internal The most requests in flight a limiter of `provider` allows when its options say
 * nothing: the provider's `maxConcurrent`, checked (one of the user's own skips
 * `defineProvider`'s check), else no limit.
 */
export function providerConcurrency(provider: Provider, where = 'createLimiter'): number {
  const n: unknown = provider.maxConcurrent;
  if (n === undefined) return Infinity;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) {
    throw new TypeError(
      `${where}: provider \`${String(provider.name).slice(0, 40)}\`: \`maxConcurrent\` must be a whole number of at least 1 (got ${String(n).slice(0, 40)})`,
    );
  }
  return n;
}

/**
 * Parses `input` with `schema`; on failure throws one `TypeError` that lists, per bad option,
 * its name, what was expected and what was given (secrets-safe: `key`, `labelSecret` and `secret`
 * values are not echoed).
 */
export function parseOptions<S extends z.ZodMiniType>(where: string, schema: S, input: unknown): z.output<S> {
  if (typeof input !== 'object' || input === null) {
    throw new TypeError(`${where}: expected an options object, got ${describe(input)}`);
  }
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const path = issue.path.join('.') || '(options)';
    if (issue.code === 'unrecognized_keys') return `unknown option ${issue.keys.map((k) => `\`${k}\``).join(', ')}`;
    const given = SECRET_OPTIONS.has(path) ? '(hidden)' : describe(valueAt(input, issue.path));
    return `option \`${path}\` must be ${expected(issue)}, got ${given}`;
  });
  throw new TypeError(`${where}: ${lines.join('; ')}`);
}

function expected(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.expected === 'number') return 'a finite number';
      return issue.expected === 'int' ? 'a whole number' : `of type ${issue.expected}`;
    case 'too_small':
      return `${issue.origin === 'string' ? 'a non-empty string' : `a number >= ${String(issue.minimum)}`}`;
    case 'too_big':
      return `a number <= ${String(issue.maximum)}`;
    case 'invalid_union':
      return 'a number >= 0 (whole where it counts requests), or Infinity';
    case 'invalid_value':
      return `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'custom':
      return issue.message;
    default:
      // Every check above carries its own message; zod/mini loads no locale ("Invalid input").
      return issue.message;
  }
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const k of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  // A long string in the wrong place is likely a token (`providers.pipedrive(token)`): not shown.
  if (typeof v === 'string') return v.length > 20 ? `a string of ${v.length} characters` : JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return 'an array';
  return `an object${v.constructor && v.constructor !== Object ? ` (${v.constructor.name})` : ''}`;
}
