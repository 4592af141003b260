import * as z from 'zod/mini';
import { int, listOf, mapOf } from '../core/schema.js';
import { parseOptions } from '../core/options.js';
import { rollingWindows } from '../core/rollingBucket.js';
import type { RequestInfo } from '../core/request.js';
import type { ResponseLike } from '../core/response.js';
import { parseCount } from '../headers/count.js';
import { parseReset, type ResetValue } from '../headers/reset.js';
import type { RetryAfter } from '../headers/retryAfter.js';
import { parseTimestamp } from '../headers/timestamp.js';
import { defineProvider } from './define.js';
import {
  bodyValue,
  checkBucketNames,
  commonShape,
  countOf,
  endpointKey,
  field,
  hinted,
  items,
  normalizeEndpointKey,
  retryFields,
  type CommonProviderOptions,
} from './endpoint.js';
import { compact } from './read.js';
import type { BucketReading, BucketSpec, Provider, ResponseReading } from './types.js';

/**
 * Documented per-endpoint limits (from Fieldwire's API reference): hints until headers tell.
 *
 * ```ts
 * import { providers, type FieldwireEndpointLimits } from 'rx-ratelimit';
 * const tasks: FieldwireEndpointLimits = { minute: 50, hour: 3000 };
 * const fieldwire = providers.fieldwire({ endpoints: { 'GET /projects/:id/tasks': tasks } });
 * ```
 */
export interface FieldwireEndpointLimits {
  /** Requests per minute. */
  readonly minute?: number;
  /** Requests per hour. */
  readonly hour?: number;
}

/**
 * The numbers of a legacy endpoint, when you know them (Fieldwire does not document them):
 * requests per fixed window, and the window's length. The endpoint is then paced by them as a
 * sliding window (never more than `limit` in any `windowMs`: nothing tells the phase of the
 * server's windows); without them its capacity is inferred from its first 429.
 *
 * ```ts
 * import { providers, type FieldwireLegacyLimits } from 'rx-ratelimit';
 * const reports: FieldwireLegacyLimits = { limit: 10, windowMs: 1000 };
 * const fieldwire = providers.fieldwire({ legacyLimits: { 'GET /projects/:id/legacy_reports': reports } });
 * ```
 */
export interface FieldwireLegacyLimits {
  /** Requests per window, at least 1. */
  readonly limit: number;
  /** The window's length in ms, at least 1 and at most a day. */
  readonly windowMs: number;
}

/**
 * Options of `providers.fieldwire()`. Endpoint keys are `METHOD /path`; ids and placeholders
 * (`42`, a UUID, `{project_id}`, `:id`) and a leading `/api/v3` are normalised away, so
 * `"GET /api/v3/projects/{project_id}/tasks"` and `"GET /projects/:id/tasks"` are the same.
 *
 * ```ts
 * import { providers, type FieldwireOptions } from 'rx-ratelimit';
 * const options: FieldwireOptions = {
 *   endpoints: { 'GET /projects/:id/tasks': { minute: 50, hour: 3000 } },
 *   legacy: ['POST /projects/:id/attachments'],
 * };
 * const fieldwire = providers.fieldwire(options);
 * ```
 */
export interface FieldwireOptions extends CommonProviderOptions {
  /** Per-endpoint hints by endpoint key; endpoints not listed start with no limit. */
  readonly endpoints?: Readonly<Record<string, FieldwireEndpointLimits>>;
  /** Endpoints known to use the legacy fixed-window system (a 429 without body then names them). */
  readonly legacy?: readonly string[];
  /**
   * Known numbers of legacy endpoints, by endpoint key (each is then a legacy endpoint too).
   * Endpoints on the legacy system without them have their capacity inferred: the successes of
   * a window before its first 429 (`source: 'inferred'` in `state$`).
   */
  readonly legacyLimits?: Readonly<Record<string, FieldwireLegacyLimits>>;
}

const CATCH_ALL = 'catch-all';
const WINDOWS = { minute: 60_000, hour: 3_600_000 } as const;
type Window = keyof typeof WINDOWS;
/** The window a 429 came from; `undefined` when nothing tells. */
type Tier = typeof CATCH_ALL | Window | 'legacy' | undefined;
const API_PREFIX = /^(\S+ )\/api\/v\d+(?=\/|$)/;
const BUCKET_KEY = /^(.+):(minute|hour)$/;

const limits = z.strictObject({
  minute: z.optional(int().check(z.minimum(0))),
  hour: z.optional(int().check(z.minimum(0))),
});
const schema = z
  .strictObject({
    ...commonShape,
    endpoints: z.optional(mapOf(limits)),
    legacy: z.optional(listOf(z.string())),
    legacyLimits: z.optional(
      mapOf(
        z.strictObject({
          limit: int().check(z.minimum(1)),
          windowMs: int().check(z.minimum(1), z.maximum(86_400_000)),
        }),
      ),
    ),
  })
  .check(
    z.superRefine((o, ctx) => {
      const bad = (path: (string | number)[]) =>
        ctx.addIssue({
          code: 'custom',
          message: 'an endpoint key "METHOD /path", e.g. "GET /projects/:id/tasks"',
          path,
        });
      for (const key of Object.keys(o.endpoints ?? {})) if (!fieldwireKey(key)) bad(['endpoints', key]);
      (o.legacy ?? []).forEach((key, i) => {
        if (!fieldwireKey(key)) bad(['legacy', i]);
      });
      for (const key of Object.keys(o.legacyLimits ?? {})) if (!fieldwireKey(key)) bad(['legacyLimits', key]);
    }),
    z.superRefine(checkBucketNames((n) => bucketKey(n) !== undefined, `"${CATCH_ALL}" or "METHOD /path:minute|hour"`)),
  );

/** A hand-written key in the form {@link fieldwireEndpoint} gives, or undefined. */
function fieldwireKey(key: string): string | undefined {
  return normalizeEndpointKey(key)?.replace(API_PREFIX, '$1');
}

/** A bucket name (`catch-all`, `GET /projects/{id}/tasks:hour`) normalised, or undefined. */
function bucketKey(name: string): string | undefined {
  if (name === CATCH_ALL) return name;
  const [, endpoint = '', window = ''] = BUCKET_KEY.exec(name) ?? [];
  const key = fieldwireKey(endpoint);
  return key ? `${key}:${window}` : undefined;
}

/**
 * The endpoint key Fieldwire's per-endpoint buckets are named by: `METHOD /path` without
 * query, host or a leading `/api/vN`, ids replaced by `:id`. Buckets are `${key}:minute` and
 * `${key}:hour`.
 *
 * ```ts
 * import { fieldwireEndpoint } from 'rx-ratelimit';
 * fieldwireEndpoint({ method: 'GET', url: 'https://client-api.us.fieldwire.com/api/v3/projects/123/tasks?page=2' });
 * // 'GET /projects/:id/tasks'
 * ```
 */
export function fieldwireEndpoint(request: Pick<RequestInfo, 'method' | 'url'>): string {
  return endpointKey(request).replace(API_PREFIX, '$1');
}

/** What a 429 body says: the per-endpoint format, or the legacy one. */
type Body =
  | {
      kind: 'endpoint';
      throttledBy: Window | undefined;
      minute: number | undefined;
      hour: number | undefined;
      retryAt: number | undefined;
    }
  | { kind: 'legacy'; retryAt: number | undefined };

function readBody(raw: unknown): Body | undefined {
  const body = bodyValue(raw);
  if (field(body, 'error') === true || typeof field(body, 'request_retry_after') === 'string') {
    return { kind: 'legacy', retryAt: time(field(body, 'request_retry_after')) };
  }
  for (const error of items(field(body, 'errors'))) {
    const details = field(error, 'details');
    if (
      field(error, 'code') !== 'rate_limit_exceeded' &&
      field(error, 'type') !== 'rate_limit_error' &&
      details === undefined
    )
      continue;
    const by = field(details, 'throttled_by');
    const message = field(error, 'message');
    const fromMessage = typeof message === 'string' ? /retry after (.+)$/i.exec(message.slice(0, 200))?.[1] : undefined;
    return {
      kind: 'endpoint',
      throttledBy: by === 'minute' || by === 'hour' ? by : undefined,
      minute: countOf(field(details, 'endpoint_minute_limit')),
      hour: countOf(field(details, 'endpoint_hour_limit')),
      retryAt: time(field(details, 'request_retry_after')) ?? time(fromMessage),
    };
  }
  return undefined;
}

function time(v: unknown): number | undefined {
  return typeof v === 'string' ? parseTimestamp(v) : undefined;
}

function read(res: ResponseLike, request: RequestInfo, legacy: ReadonlySet<string>): ResponseReading {
  const key = fieldwireEndpoint(request);
  const limited = res.status === 429;
  const body = limited ? readBody(res.body) : undefined;

  // Tier 1, catch-all: X-RateLimit-Limit/-Remaining/-Reset. A lone X-RateLimit-Reset is the legacy format's.
  const all = {
    limit: parseCount(res.header('x-ratelimit-limit')),
    remaining: parseCount(res.header('x-ratelimit-remaining')),
  };
  const hasAll = all.limit !== undefined || all.remaining !== undefined;
  const allReset = hasAll ? parseReset(res.header('x-ratelimit-reset'), 'unix-seconds') : undefined;

  // Tier 2, per endpoint: ratelimit-{limit,remaining}-{minute,hour}, ratelimit-reset (0: not exceeded).
  const tier2 = (w: Window) => ({
    limit: parseCount(res.header(`ratelimit-limit-${w}`)) ?? (body?.kind === 'endpoint' ? body[w] : undefined),
    remaining: parseCount(res.header(`ratelimit-remaining-${w}`)),
  });
  const minute = tier2('minute');
  const hour = tier2('hour');
  const endpointReset = parseReset(res.header('ratelimit-reset'), 'unix-seconds');

  // Which window threw the 429: the body says; else the headers at 0; else the legacy shape.
  let tier: Tier;
  if (limited) {
    if (body?.kind === 'legacy') tier = 'legacy';
    else if (body?.throttledBy) tier = body.throttledBy;
    else if (all.remaining === 0) tier = CATCH_ALL;
    else if (hour.remaining === 0) tier = 'hour';
    else if (minute.remaining === 0) tier = 'minute';
    else if (body) tier = undefined;
    else if (legacy.has(key) || (!hasAll && res.header('x-ratelimit-reset') !== undefined)) tier = 'legacy';
    else if (hasAll) tier = CATCH_ALL;
  }

  const retry = limited
    ? retryFields(res, tier === CATCH_ALL ? undefined : body?.retryAt, retryReset(res, tier, allReset, endpointReset))
    : {};
  // ratelimit-reset, request_retry_after and retry-after all say when the endpoint's next request may go.
  const endpointAt = endpointReset ?? (tier === 'minute' || tier === 'hour' ? asReset(retry.retryAfter) : undefined);

  const buckets: BucketReading[] = [];
  if (hasAll) buckets.push(compact({ name: CATCH_ALL, ...all, reset: allReset }));
  for (const [w, r] of [
    ['minute', minute],
    ['hour', hour],
  ] as const) {
    if (r.limit === undefined && r.remaining === undefined) continue;
    const reset = r.remaining === 0 || tier === w ? endpointAt : undefined;
    buckets.push(compact({ name: `${key}:${w}`, ...r, reset }));
  }
  if (!limited) return { outcome: 'ok', buckets };
  const limitedBy = tier === CATCH_ALL ? CATCH_ALL : tier && `${key}:${tier === 'legacy' ? 'minute' : tier}`;
  return compact({ outcome: 'limited' as const, buckets, ...retry, limitedBy });
}

/** The reset header that tells the retry time of the window that threw the 429. */
function retryReset(
  res: ResponseLike,
  tier: Tier,
  allReset: ResetValue | undefined,
  endpointReset: ResetValue | undefined,
) {
  if (tier === CATCH_ALL) return allReset;
  if (tier === 'legacy') return parseReset(res.header('x-ratelimit-reset'), 'timestamp');
  return endpointReset;
}

function asReset(retry: RetryAfter | undefined): ResetValue | undefined {
  return retry === undefined ? undefined : 'at' in retry ? { at: retry.at } : { inMs: retry.delayMs };
}

/**
 * Fieldwire: two tiers at once. Every request counts against `catch-all` (3,000 per 5 minutes,
 * `X-RateLimit-*`, reset in unix seconds) and against its endpoint's `${key}:minute` and
 * `${key}:hour` buckets (`ratelimit-*-minute/-hour`, `ratelimit-reset`), whose limits are hints
 * from `endpoints` until the headers tell. A 429 holds only the window that threw it: the
 * body's `throttled_by`, the catch-all (which holds everything), or, for the legacy format
 * (`{"error": true, "request_retry_after": …}`), the endpoint's minute. The retry time is
 * `retry-after`, else the body's `request_retry_after`, else the reset header.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({
 *   provider: providers.fieldwire({ endpoints: { 'GET /projects/:id/tasks': { minute: 50, hour: 3000 } } }),
 *   key: 'fieldwire-token',
 * });
 * ```
 */
export function fieldwire(options: FieldwireOptions = {}): Provider {
  const o = parseOptions('providers.fieldwire', schema, options) as FieldwireOptions;
  // Keys were checked by the schema; normalised here so every spelling finds its endpoint.
  const endpoints = new Map(Object.entries(o.endpoints ?? {}).map(([k, v]) => [fieldwireKey(k) ?? k, v]));
  const hints = new Map(Object.entries(o.hints ?? {}).map(([k, v]) => [bucketKey(k) ?? k, v]));
  const declared = new Map(Object.entries(o.legacyLimits ?? {}).map(([k, v]) => [fieldwireKey(k) ?? k, v]));
  const legacy = new Set([...(o.legacy ?? []).map((k) => fieldwireKey(k) ?? k), ...declared.keys()]);
  // The catch-all tells nothing until its 429, and the docs do not say whether its 5 minutes
  // are fixed (aligned to the clock, or opened by a first request) or slide: a sliding window,
  // never more than the limit in any 5 minutes, is within every one of them. Counted as a
  // window opened by our first request, it let the limit go at its end and the limit again at
  // the next one's start, twice the limit within one window aligned to the clock.
  const catchAll = hinted(
    { name: CATCH_ALL, limit: 3000, windowMs: 300_000, rolling: true },
    undefined,
    hints.get(CATCH_ALL),
  );
  const extra = o.extraBuckets ?? [];
  const perEndpoint = (key: string, w: Window): BucketSpec => {
    const name = `${key}:${w}`;
    // A legacy endpoint's window is held in its `:minute` bucket: the declared numbers, or none
    // (its length is not a minute, only unknown) until its first 429 teaches them. Declared, they
    // slide, as the catch-all's: nothing tells the phase of the server's fixed windows before a
    // 429, and a window opened by our first request let the limit go again at its end, inside a
    // window of the server's that had counted our last calls of the one before.
    const declaredLimits = declared.get(key);
    const spec = legacy.has(key)
      ? w === 'minute'
        ? declaredLimits
          ? { name, limit: declaredLimits.limit, windowMs: declaredLimits.windowMs, rolling: true }
          : { name }
        : { name }
      : compact({ name, limit: endpoints.get(key)?.[w], windowMs: WINDOWS[w] });
    return hinted(spec, undefined, hints.get(name));
  };
  return defineProvider({
    name: 'fieldwire',
    bucketKinds: [rollingWindows],
    buckets: (request) => {
      const key = fieldwireEndpoint(request);
      return [catchAll, perEndpoint(key, 'minute'), perEndpoint(key, 'hour'), ...extra];
    },
    read: (res, request) => read(res, request, legacy),
  });
}
