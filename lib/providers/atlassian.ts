import * as z from 'zod/mini';
import { int, mapOf, oneOf } from '../core/schema.js';
import { parseOptions } from '../core/options.js';
import { methodOf, type RequestInfo } from '../core/request.js';
import type { ResponseLike } from '../core/response.js';
import { parseCount } from '../headers/count.js';
import { parseHttpDate } from '../headers/httpDate.js';
import { parseRateLimit, parseRateLimitPolicy } from '../headers/ietf.js';
import { parseReset, type ResetValue } from '../headers/reset.js';
import { defineProvider } from './define.js';
import { commonShape, endpointPath, hinted, normalizeEndpointKey, type CommonProviderOptions } from './endpoint.js';
import { compact, isServedFromCache, readRetryAfter } from './read.js';
import type { BucketReading, BucketSpec, Provider, ResponseReading } from './types.js';

/**
 * Options of `providers.atlassian()` (Jira Cloud and Confluence Cloud).
 *
 * ```ts
 * import { providers, type AtlassianOptions } from 'rx-ratelimit';
 * const options: AtlassianOptions = { auth: 'app', endpoints: { 'GET /rest/api/3/issue/:key': 150 } };
 * const jira = providers.atlassian(options);
 * ```
 */
export interface AtlassianOptions extends CommonProviderOptions {
  /**
   * `'app'`: a Forge, Connect or OAuth 2.0 (3LO) app, subject to the hourly points quota and
   * the burst limits; `'api-token'`: basic auth with an API token, which the points quota does
   * not apply to (burst limits only). @default 'app'
   */
  readonly auth?: 'app' | 'api-token';
  /**
   * Requests per second of an endpoint by HTTP method, over the documented defaults (GET and
   * POST 100, PUT, PATCH and DELETE 50).
   */
  readonly burstPerSecond?: Readonly<Partial<Record<'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', number>>>;
  /**
   * Endpoints with a limit of their own, requests per second, keyed `METHOD /path` with `:id`
   * or `{placeholders}` for ids and issue keys (`'GET /rest/api/3/issue/{issueIdOrKey}': 150`).
   */
  readonly endpoints?: Readonly<Record<string, number>>;
}

const QUOTA = 'quota';
const BURST = 'burst';
/** Per-issue write buckets are named `issue:<issue key or id>`. */
const ISSUE = 'issue';
const HOUR_MS = 3_600_000;
const SECOND_MS = 1000;
/** Burst limits by method, requests per second (Jira's "Burst API Rate Limit Thresholds"). */
const PER_METHOD: Readonly<Record<string, number>> = { GET: 100, POST: 100, PUT: 50, PATCH: 50, DELETE: 50 };
const DEFAULT_PER_SECOND = 50;
/** A Jira issue key as a path segment (`ABC-123`). */
const ISSUE_KEY = /^[A-Z][A-Z0-9_]{0,254}-\d{1,18}$/;
const MAX_URL = 8192;
const API_VERSION = /\/rest\/api\/(\d{1,3})(?=[/?#]|$)/;
const VERSIONED = /^\/rest\/api\/v(\d{1,3})(?=\/|$)/;
/** The issue a path writes to: `/rest/api/<version>/issue/<key or id>`, under any prefix (`/ex/jira/<cloudId>`). */
const ISSUE_PATH = /\/rest\/api\/(?:\d{1,3}|latest)\/issue\/([^/?#]{1,64})(?=[/?#]|$)/;
/** An issue key (`ABC-123`, a project key of at most 40 characters) or id, as a per-issue bucket names it. */
const ISSUE_REF = /^(?:[A-Z][A-Z0-9_]{0,39}-\d{1,18}|\d{1,18})$/;
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/**
 * Most issues whose writes are counted in a bucket of their own (those a 429 for the per-issue
 * write limit named last); past it, the one named longest ago goes back to its endpoint's burst bucket alone.
 */
const MAX_HOT_ISSUES = 256;
/** `RateLimit-Reason` values: lower-case words and dashes; longer or other is ignored. */
const REASON = /^[a-z][a-z-]{0,79}$/;
/** Policy names of the points quota in the structured fields. */
const QUOTA_POLICIES = new Set(['global-app-quota', 'tenant-app-quota']);

const perSecond = int().check(z.positive());
const schema = z
  .strictObject({
    ...commonShape,
    auth: z.optional(oneOf(['app', 'api-token'])),
    burstPerSecond: z.optional(
      z.strictObject({
        GET: z.optional(perSecond),
        POST: z.optional(perSecond),
        PUT: z.optional(perSecond),
        PATCH: z.optional(perSecond),
        DELETE: z.optional(perSecond),
      }),
    ),
    endpoints: z.optional(mapOf(perSecond)),
  })
  .check(
    z.superRefine((o, ctx) => {
      for (const name of Object.keys(o.hints ?? {}))
        if (name !== QUOTA && name !== BURST)
          ctx.addIssue({
            code: 'custom',
            message: `keyed by "${QUOTA}" or "${BURST}" (every endpoint's burst bucket)`,
            path: ['hints', name],
          });
      (o.extraBuckets ?? []).forEach((b, i) => {
        if (b.name === QUOTA || b.name.startsWith(`${BURST}:`) || b.name.startsWith(`${ISSUE}:`))
          ctx.addIssue({
            code: 'custom',
            message: 'a name not used by the provider',
            path: ['extraBuckets', i, 'name'],
          });
      });
      for (const key of Object.keys(o.endpoints ?? {}))
        if (normalizeEndpointKey(key) === undefined)
          ctx.addIssue({ code: 'custom', message: 'keyed by "METHOD /path"', path: ['endpoints', key] });
    }),
  );

/**
 * The endpoint a request's burst limit is counted on: `METHOD /path`, with ids and Jira issue
 * keys (`ABC-123`) as `:id`, so every issue shares its endpoint's bucket.
 *
 * ```ts
 * import { atlassianEndpoint } from 'rx-ratelimit';
 * atlassianEndpoint({ method: 'put', url: 'https://x.atlassian.net/rest/api/3/issue/ABC-123?notify=false' });
 * // 'PUT /rest/api/3/issue/:id'
 * ```
 */
export function atlassianEndpoint(request: Pick<RequestInfo, 'method' | 'url'>): string {
  // The API version (`/rest/api/3`) is all digits, which endpointPath takes for an id: keep it.
  const url = (request.url ?? '').slice(0, MAX_URL).replace(API_VERSION, '/rest/api/v$1');
  const path = endpointPath(url)
    .replace(VERSIONED, '/rest/api/$1')
    .split('/')
    .map((s) => (ISSUE_KEY.test(s) ? ':id' : s))
    .join('/');
  return `${methodOf(request)} ${path}`;
}

/**
 * The issue a write goes to, as its per-issue bucket names it (`ABC-123`, or an id), from the
 * request's path; `undefined` for a read, or a path naming no single issue (`POST
 * /rest/api/3/issue`, `/issue/bulk`).
 */
function issueOf(request: RequestInfo): string | undefined {
  if (!WRITES.has(methodOf(request))) return undefined;
  const ref = ISSUE_PATH.exec((request.url ?? '').slice(0, MAX_URL))?.[1];
  return ref !== undefined && ISSUE_REF.test(ref) ? ref : undefined;
}

/** What a `RateLimit-Reason` says was exceeded. */
type Reason = 'quota' | 'burst' | 'issue';

/**
 * The kind of limit a `RateLimit-Reason` names: the points quota (`jira-quota-global-based`,
 * `jira-quota-tenant-based`, Confluence's `confluence-quota-…` and the `conf-global-based`
 * seen in practice), the burst limit (`…-burst-based`) or the per-issue write limit
 * (`…-per-issue-on-write`). `undefined` for anything else.
 */
function reasonOf(value: string | undefined): Reason | undefined {
  const text = value?.trim().toLowerCase() ?? '';
  if (!REASON.test(text)) return undefined;
  if (text.endsWith('-burst-based')) return 'burst';
  if (text.endsWith('-per-issue-on-write')) return 'issue';
  if (text.endsWith('-global-based') || text.endsWith('-tenant-based')) return 'quota';
  return undefined;
}

/**
 * The end of the quota window the server's `Date` falls in: windows of `windowMs` (an hour unless
 * the policy's `w` says otherwise) aligned to the epoch, so the top of the next UTC hour. Without
 * a `Date` (browsers hide it from cross-origin scripts), the window the calendar time the limiter
 * gives falls in, told as a delay from it.
 */
function nextHour(res: ResponseLike, calendarNow: number | undefined, windowMs = HOUR_MS): ResetValue {
  const date = parseHttpDate(res.header('date'));
  if (date !== undefined) return { at: (Math.floor(date / windowMs) + 1) * windowMs };
  const now = calendarNow ?? Date.now();
  return { inMs: (Math.floor(now / windowMs) + 1) * windowMs - now };
}

/** Seconds to whole ms, `undefined` past a day (a window or reset longer is junk here). */
function msOf(seconds: number | undefined): number | undefined {
  if (seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return undefined;
  const ms = Math.round(seconds * 1000);
  return ms <= 86_400_000 ? ms : undefined;
}

type Fields = Map<string, { q?: number; w?: number; r?: number; t?: number }>;

/**
 * The structured fields: per policy name, its quota, window, remaining and seconds to reset,
 * the enforced ones (`RateLimit-Policy`, `RateLimit`) first, then their beta forms
 * (`Beta-RateLimit-Policy`, `Beta-RateLimit`). A missing `r` means "well within the limits":
 * no remaining then.
 */
function structured(res: ResponseLike): Fields[] {
  if (isServedFromCache(res)) return [];
  return ['', 'beta-'].map((prefix) => {
    const out: Fields = new Map();
    for (const p of parseRateLimitPolicy(res.header(`${prefix}ratelimit-policy`)) ?? [])
      out.set(p.name, { q: p.quota, ...(p.windowSeconds !== undefined && { w: p.windowSeconds }) });
    // An entry without `r` ("well within its limits") is skipped by parseRateLimit: its `t` is
    // lost, and the quota's reset is then the top of the next UTC hour, which it is anyway.
    for (const l of parseRateLimit(res.header(`${prefix}ratelimit`)) ?? [])
      out.set(l.name, {
        ...out.get(l.name),
        r: l.remaining,
        ...(l.resetSeconds !== undefined && { t: l.resetSeconds }),
      });
    return out;
  });
}

/** The first policy whose name `matches`, enforced fields before beta ones. */
function policy(fields: Fields[], matches: (name: string) => boolean) {
  for (const map of fields) for (const [name, f] of map) if (matches(name)) return f;
  return undefined;
}

/**
 * Atlassian's Jira Cloud and Confluence Cloud: the hourly points quota of an app (`quota`,
 * 65,000 points an hour by default, resetting at the top of each UTC hour; read from
 * `RateLimit-Policy`/`RateLimit` or their `Beta-` forms, `"global-app-quota";q=…;w=…` and
 * `…;r=…;t=…`) and the burst limit of each endpoint and method (`burst:METHOD /path`, GET and
 * POST 100 a second, PUT, PATCH and DELETE 50, paced evenly; `X-RateLimit-Limit/-Remaining/
 * -Reset` with an ISO 8601 reset). A 429's `RateLimit-Reason` names the limit: the quota holds
 * back every request until `Retry-After` (else the reset, else the next UTC hour); a burst limit
 * only that endpoint; a per-issue write limit (`…-per-issue-on-write`) only writes to that
 * issue, which from then on also count against a bucket of their own (`issue:ABC-123`; for the
 * last 256 issues named so). One request costs one point here; Jira charges more for reads that
 * return objects, and the limiter corrects from `r` once it is sent.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.atlassian(), key: 'my-forge-app' });
 * ```
 */
export function atlassian(options: AtlassianOptions = {}): Provider {
  const o = parseOptions('providers.atlassian', schema, options) as AtlassianOptions;
  const hasQuota = (o.auth ?? 'app') === 'app';
  const quota = hinted({ name: QUOTA, limit: 65_000, windowMs: HOUR_MS, quota: true }, o.hints);
  const extra = o.extraBuckets ?? [];
  const endpoints = new Map<string, number>();
  for (const [key, limit] of Object.entries(o.endpoints ?? {})) {
    const [method = 'GET', path = ''] = key.trim().split(/\s+/, 2);
    endpoints.set(atlassianEndpoint({ method, url: path }), limit);
  }
  const perMethod: Readonly<Record<string, number | undefined>> = { ...PER_METHOD, ...o.burstPerSecond };
  const burstHint = o.hints?.[BURST];
  // Issues a per-issue write limit was hit on, oldest named first: their writes count against a
  // bucket of their own, so that waiting for one issue holds back no write to any other. Only
  // those: a bucket for every issue written would grow with every issue a caller names.
  const hot = new Set<string>();
  const issueBucket = (request: RequestInfo): string | undefined => {
    const issue = issueOf(request);
    return issue !== undefined && hot.has(issue) ? `${ISSUE}:${issue}` : undefined;
  };
  /** A 429 for the per-issue write limit named `issue`: its writes count against its own bucket from now on. */
  const learnIssue = (issue: string): string => {
    hot.delete(issue);
    hot.add(issue);
    if (hot.size > MAX_HOT_ISSUES) hot.delete(hot.values().next().value as string);
    return `${ISSUE}:${issue}`;
  };

  function burstOf(request: RequestInfo): BucketSpec {
    const endpoint = atlassianEndpoint(request);
    const limit = endpoints.get(endpoint) ?? perMethod[methodOf(request)] ?? DEFAULT_PER_SECOND;
    // The doc asks to design for the steady rate, not the burst buffer: spread it evenly.
    return hinted({ name: `${BURST}:${endpoint}`, limit, windowMs: SECOND_MS, pacing: 'smooth' }, undefined, burstHint);
  }

  return defineProvider({
    name: 'atlassian',
    buckets: (request) => {
      const issue = issueBucket(request);
      return [...(hasQuota ? [quota] : []), burstOf(request), ...(issue ? [{ name: issue }] : []), ...extra];
    },
    read(res, request, now): ResponseReading {
      const burstName = burstOf(request).name;
      const reason = res.status === 429 ? reasonOf(res.header('ratelimit-reason')) : undefined;
      const fields = structured(res);
      const quotaReading = hasQuota ? quotaFrom(fields, res, now) : undefined;
      const burstReading = burstFrom(fields, burstName);
      // X-RateLimit-*: "the current rate-limit scope". On a 429 the reason names it; otherwise
      // it is the request rate ("for request rate limits, the allowed requests per second").
      const counters = countersOf(res);
      const xQuota = counters && reason === 'quota' && hasQuota ? { ...counters, name: QUOTA } : undefined;
      const xBurst =
        counters && (reason === 'burst' || (reason === undefined && res.status !== 429))
          ? { ...counters, name: burstName }
          : undefined;
      const q = merge(quotaReading, xQuota);
      const b = merge(burstReading, xBurst);
      // A per-issue write limit holds that issue's writes only (named by the reading, the
      // limiter makes its bucket). Its counters are not taken: the two windows (writes per 2 s
      // and per 30 s) share the reason, and which one they describe is not told.
      const issue = reason === 'issue' ? issueOf(request) : undefined;
      const issueName = issue === undefined ? undefined : learnIssue(issue);
      const buckets = [q, b, issueName === undefined ? undefined : { name: issueName }].filter(
        (r): r is BucketReading => r !== undefined,
      );
      if (res.status !== 429) return { outcome: 'ok', buckets };
      const limitedBy =
        reason === 'quota'
          ? hasQuota
            ? QUOTA
            : undefined
          : reason === undefined
            ? undefined
            : (issueName ?? burstName);
      const by = limitedBy === undefined ? {} : { limitedBy };
      const retry = readRetryAfter(res);
      if (retry.retryAfter) return { outcome: 'limited', buckets, ...retry, ...by };
      const reset =
        limitedBy === QUOTA
          ? (q?.reset ?? nextHour(res, now))
          : limitedBy === undefined
            ? undefined
            : limitedBy === issueName
              ? counters?.reset
              : b?.reset;
      if (reset)
        return {
          outcome: 'limited',
          buckets,
          retryAfter: 'at' in reset ? { at: reset.at } : { delayMs: reset.inMs },
          retrySource: 'reset',
          ...by,
        };
      return { outcome: 'limited', buckets, ...by };
    },
  });
}

/** The points quota from the structured fields (`global-app-quota` or `tenant-app-quota`). */
function quotaFrom(fields: Fields[], res: ResponseLike, now: number | undefined): BucketReading | undefined {
  const f = policy(fields, (name) => QUOTA_POLICIES.has(name));
  if (f === undefined) return undefined;
  const windowMs = msOf(f.w);
  const inMs = msOf(f.t);
  return compact({
    name: QUOTA,
    limit: f.q,
    remaining: f.r,
    windowMs: windowMs !== undefined && windowMs > 0 ? windowMs : undefined,
    // `t` is seconds to reset; without it the quota still resets at the top of the UTC hour.
    reset:
      inMs !== undefined
        ? { inMs }
        : nextHour(res, now, windowMs !== undefined && windowMs >= 1000 ? windowMs : HOUR_MS),
  });
}

/** The request's burst bucket from the structured fields (a policy named `…-burst-based`). */
function burstFrom(fields: Fields[], name: string): BucketReading | undefined {
  const f = policy(fields, (n) => n.endsWith('-burst-based'));
  if (f === undefined) return undefined;
  const windowMs = msOf(f.w);
  const inMs = msOf(f.t);
  return compact({
    name,
    limit: f.q,
    remaining: f.r,
    windowMs: windowMs !== undefined && windowMs > 0 ? windowMs : undefined,
    reset: inMs === undefined ? undefined : { inMs },
  });
}

/** `X-RateLimit-Limit/-Remaining/-Reset` (the reset an ISO 8601 time), nameless. */
function countersOf(res: ResponseLike): Omit<BucketReading, 'name'> | undefined {
  const limit = parseCount(res.header('x-ratelimit-limit'));
  const remaining = parseCount(res.header('x-ratelimit-remaining'));
  const reset = parseReset(res.header('x-ratelimit-reset'), 'timestamp');
  if (limit === undefined && remaining === undefined && reset === undefined) return undefined;
  return compact({ limit, remaining, reset });
}

/** Two readings of one bucket: the second's fields win where it has them. */
function merge(a: BucketReading | undefined, b: BucketReading | undefined): BucketReading | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return { ...a, ...b };
}
