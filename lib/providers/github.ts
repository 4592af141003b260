import * as z from 'zod/mini';
import { oneOf } from '../core/schema.js';
import { parseOptions } from '../core/options.js';
import { rollingWindows } from '../core/rollingBucket.js';
import { methodOf, type RequestInfo } from '../core/request.js';
import type { ResponseLike } from '../core/response.js';
import { parseCount } from '../headers/count.js';
import { defineProvider } from './define.js';
import { checkBucketNames, commonShape, endpointPath, field, hinted, type CommonProviderOptions } from './endpoint.js';
import { compact, readCounters, readRetryAfter, type CounterHeaders } from './read.js';
import { DEFAULT_BUCKET, ResourceRoutes, resourceName } from './resources.js';
import type { BucketReading, BucketSpec, Provider, ResponseReading } from './types.js';

/**
 * Options of `providers.github()`.
 *
 * ```ts
 * import { providers, type GithubOptions } from 'rx-ratelimit';
 * const options: GithubOptions = { hints: { core: { limit: 15_000 } }, contentCreation: 'fixed' };
 * const github = providers.github(options);
 * ```
 */
export interface GithubOptions extends CommonProviderOptions {
  /**
   * How the secondary content-creation limits (80 writes a minute, 500 an hour; GitHub sends no
   * header for them) are counted: `'rolling'` windows (any minute, any hour; the memory store
   * only), `'fixed'` windows (works with a shared store, but a burst across a window's edge may
   * meet a 403 that then pauses the limiter), or `false` to leave them out. @default 'rolling'
   */
  readonly contentCreation?: 'rolling' | 'fixed' | false;
  /**
   * Count GitHub's secondary points per minute: `points:rest` (900 a minute) for REST requests,
   * `points:graphql` (2,000 a minute) for the GraphQL endpoint. A REST GET, HEAD or OPTIONS
   * costs 1 point and a POST, PATCH, PUT or DELETE 5; a GraphQL request 1 (its mutations cost 5:
   * the request does not show which it is, so pass `cost: { 'points:graphql': 5 }` with one).
   * GitHub sends no header for them, and answers past them with a 403 or 429 that pauses the
   * limiter ([Rate limits for the REST
   * API](https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api), "About
   * secondary rate limits" and "Calculating points for the secondary rate limit"). Its docs put
   * the limit on "requests to a single endpoint" yet say 900 points "for REST API endpoints":
   * one bucket for all of REST is the safe reading. Windows as `contentCreation` (`'fixed'`
   * there makes these fixed too). `false` leaves them out. @default true
   */
  readonly secondaryPoints?: boolean;
}

/**
 * The primary-limit resources GitHub names in `x-ratelimit-resource` (the list of `GET
 * /rate_limit`), with the documented budget of an authenticated user where the docs give one (a
 * hint until the headers tell; a resource without one sends one request at a time until its
 * first response reports it). A resource not listed here is learnt from the answers (see `read`).
 */
const RESOURCES: Readonly<Record<string, { readonly limit?: number; readonly windowMs?: number }>> = {
  core: { limit: 5000, windowMs: 3_600_000 },
  search: { limit: 30, windowMs: 60_000 },
  code_search: { limit: 10, windowMs: 60_000 },
  graphql: { limit: 5000, windowMs: 3_600_000 },
  integration_manifest: {},
  dependency_snapshots: {},
  dependency_sbom: {},
  code_scanning_upload: {},
  // The docs name it and do not say which of the autofix endpoints count against it: their
  // routes are learnt from the answers.
  code_scanning_autofix: {},
  actions_runner_registration: {},
  // "No longer in use for any API endpoints" (the Source Imports API is gone); an older server
  // that still names it is learnt from its answers.
  source_import: {},
  scim: {},
  audit_log: {},
};
const CONTENT_MINUTE = 'content:minute';
const CONTENT_HOUR = 'content:hour';
const POINTS_REST = 'points:rest';
const POINTS_GRAPHQL = 'points:graphql';
/** GitHub's secondary points: most REST writes cost 5, reads 1 (GraphQL: a mutation 5, a query 1). */
const WRITE_POINTS = 5;
const SECONDARY_WAIT_MS = 60_000;
const HEADERS: CounterHeaders = {
  limit: 'x-ratelimit-limit',
  remaining: 'x-ratelimit-remaining',
  reset: 'x-ratelimit-reset',
};
/** A route GitHub has named no resource for yet (never a bucket: `ResourceRoutes` hands it back). */
const UNLEARNT: BucketSpec = { name: DEFAULT_BUCKET };
/** A body message (first characters only) that says a rate limit was exceeded. */
const LIMIT_MESSAGE = /rate limit/i;
const MESSAGE_CHARS = 500;

const SECONDARY = [CONTENT_MINUTE, CONTENT_HOUR, POINTS_REST, POINTS_GRAPHQL];
const known = (name: string) => Object.hasOwn(RESOURCES, name) || SECONDARY.includes(name);
const schema = z
  .strictObject({
    ...commonShape,
    contentCreation: z.optional(oneOf(['rolling', 'fixed', false])),
    secondaryPoints: z.optional(z.boolean()),
  })
  .check(
    z.superRefine(checkBucketNames(known, [...Object.keys(RESOURCES), ...SECONDARY].map((n) => `"${n}"`).join(', '))),
  );

/**
 * The primary-limit resource a request counts against, from its URL (GitHub Enterprise Server's
 * `/api/v3` and `/api/graphql` prefixes included).
 *
 * ```ts
 * import { githubResource } from 'rx-ratelimit';
 * githubResource({ url: 'https://api.github.com/search/code?q=x' }); // 'code_search'
 * githubResource({ method: 'POST', url: '/graphql' });             // 'graphql'
 * ```
 */
export function githubResource(request: Pick<RequestInfo, 'method' | 'url'>): string {
  const raw = endpointPath(request.url);
  const path = raw.startsWith('/api/v3/') ? raw.slice('/api/v3'.length) : raw;
  if (path === '/graphql' || path === '/api/graphql') return 'graphql';
  if (path === '/search/code' || path.startsWith('/search/code/')) return 'code_search';
  if (path.startsWith('/search/')) return 'search';
  if (path.startsWith('/scim/')) return 'scim';
  if (path.startsWith('/app-manifests/') && path.endsWith('/conversions')) return 'integration_manifest';
  if (path.endsWith('/dependency-graph/snapshots')) return 'dependency_snapshots';
  if (path.endsWith('/dependency-graph/sbom')) return 'dependency_sbom';
  if (path.endsWith('/code-scanning/sarifs')) return 'code_scanning_upload';
  if (path.endsWith('/actions/runners/registration-token')) return 'actions_runner_registration';
  if (path.endsWith('/audit-log')) return 'audit_log';
  return 'core';
}

/** Writes count as content-generating: GitHub does not list which requests do. */
const isContentWrite = (request: RequestInfo) => ['POST', 'PATCH', 'PUT', 'DELETE'].includes(methodOf(request));

/** Does the body's `message` (or a text body) say a rate limit was exceeded? */
function saysRateLimit(body: unknown): boolean {
  const message = typeof body === 'string' ? body : field(body, 'message');
  return typeof message === 'string' && LIMIT_MESSAGE.test(message.slice(0, MESSAGE_CHARS));
}

function primary(res: ResponseLike, name: string): BucketReading | undefined {
  const counters = readCounters(res, name, HEADERS, 'unix-seconds');
  if (!counters || counters.limit !== undefined) return counters;
  // `x-ratelimit-used` + remaining is the limit when the limit header is missing.
  const used = parseCount(res.header('x-ratelimit-used'));
  const limit = used !== undefined && counters.remaining !== undefined ? used + counters.remaining : undefined;
  return limit !== undefined && Number.isSafeInteger(limit) ? compact({ ...counters, limit }) : counters;
}

/**
 * GitHub's REST and GraphQL APIs: one primary bucket per resource (`core` 5,000 an hour, `search`
 * 30 a minute, `code_search` 10 a minute, `graphql`, …; hints until `x-ratelimit-limit/-remaining/
 * -reset/-used/-resource` tell), chosen from the URL; an answer naming another resource (one not
 * listed too) puts its counters in that resource's bucket and its route's later requests there,
 * never in core's (bounded: 32 resources, 1,024 routes a server). The secondary
 * content-creation limits (80 writes a minute, 500 an hour) as `content:minute` and
 * `content:hour` on POST, PATCH, PUT and DELETE; the secondary points (900 a minute for REST, a
 * write 5; 2,000 for GraphQL) as `points:rest` and `points:graphql` (`secondaryPoints`). A 429,
 * or a 403 with `retry-after`, `x-ratelimit-remaining: 0` or a "rate limit" message, pauses
 * every stream: until `retry-after`, else the reset, else one minute. Any other
 * 403 (a permission error) is an ordinary answer. The secondary limit of 100 concurrent requests
 * is the limiter's `maxConcurrent` unless its options give another.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.github(), key: 'github-user-or-app' });
 * ```
 */
export function github(options: GithubOptions = {}): Provider {
  const o = parseOptions('providers.github', schema, options) as GithubOptions;
  const mode = o.contentCreation ?? 'rolling';
  const extra = o.extraBuckets ?? [];
  const rolling = mode === 'rolling' ? { rolling: true } : {};
  const content: BucketSpec[] =
    mode === false
      ? []
      : [
          hinted({ name: CONTENT_MINUTE, limit: 80, windowMs: 60_000, ...rolling }, o.hints),
          hinted({ name: CONTENT_HOUR, limit: 500, windowMs: 3_600_000, ...rolling }, o.hints),
        ];
  const pointWindows = mode === 'fixed' ? {} : { rolling: true };
  const points = (name: string, limit: number): BucketSpec[] =>
    o.secondaryPoints !== false ? [hinted({ name, limit, windowMs: 60_000, ...pointWindows }, o.hints)] : [];
  const restPoints = points(POINTS_REST, 900);
  const graphqlPoints = points(POINTS_GRAPHQL, 2000);
  const reads = new Map<string, readonly BucketSpec[]>();
  const writes = new Map<string, readonly BucketSpec[]>();
  for (const [name, spec] of Object.entries(RESOURCES)) {
    const own = hinted({ name, ...spec }, o.hints);
    const pts = name === 'graphql' ? graphqlPoints : restPoints;
    reads.set(name, [own, ...pts, ...extra]);
    writes.set(name, [own, ...content, ...pts, ...extra]);
  }
  // The resource each route's answers named, where it is not the one its URL gives: learnt per
  // provider object (a pool's tenants share it, as they share GitHub's routes), per server, and
  // bounded (`ResourceRoutes`: 32 resources and 1,024 routes a server).
  const routes = new ResourceRoutes(UNLEARNT, {});
  let learnt = false;
  // The buckets of a resource this profile does not list, made once per resource a server named.
  const unlisted = new WeakMap<BucketSpec, { reads: readonly BucketSpec[]; writes: readonly BucketSpec[] }>();
  /** The spec of the resource an answer named for `request`'s route, when one did. */
  const named = (request: RequestInfo): BucketSpec | undefined => {
    if (!learnt) return undefined;
    const spec = routes.bucketsFor(request)[0];
    return spec === UNLEARNT ? undefined : spec;
  };
  const resourceOf = (request: RequestInfo) => named(request)?.name ?? githubResource(request);
  // Names a server may not give a resource of its own: the bucket of an unknown route, the
  // caller's own budgets (their numbers are theirs), and the properties of every object
  // (`constructor`: a table keyed by bucket name, the caller's too, would find one anyway).
  const reserved = new Set([
    DEFAULT_BUCKET,
    ...SECONDARY,
    ...extra.map((b) => b.name),
    ...Object.getOwnPropertyNames(Object.prototype),
  ]);
  return defineProvider({
    name: 'github',
    bucketKinds: [rollingWindows],
    // "No more than 100 concurrent requests are allowed" (REST and GraphQL together).
    maxConcurrent: 100,
    buckets: (request) => {
      const spec = named(request);
      const resource = spec?.name ?? githubResource(request);
      // GraphQL is one POST endpoint: its writes are mutations, not told apart here.
      const write = isContentWrite(request) && resource !== 'graphql';
      const listed = (write ? writes : reads).get(resource);
      if (listed || !spec) return listed ?? [];
      let own = unlisted.get(spec);
      if (!own) {
        own = { reads: [spec, ...restPoints, ...extra], writes: [spec, ...content, ...restPoints, ...extra] };
        unlisted.set(spec, own);
      }
      return write ? own.writes : own.reads;
    },
    // A REST write costs 5 secondary points; a read, and a GraphQL request (its body is not
    // seen: a mutation's caller passes its cost), 1.
    cost: (request, bucket) => (bucket.name === POINTS_REST && isContentWrite(request) ? WRITE_POINTS : undefined),
    read(res, request): ResponseReading {
      const current = resourceOf(request);
      const counters = primary(res, current);
      const told = resourceName(res.header('x-ratelimit-resource'));
      // The counters are those of the resource GitHub names. One other than the request counted
      // against (a resource this profile does not list, or one its URL does not show) is
      // learnt for the request's route: its counters go to that resource's bucket, and the
      // route's requests count against it from now on. Written into the URL's bucket, a small
      // budget (100, none left) would replace core's 5,000 and refuse every core request;
      // written into a bucket no request declares, it would count against every request. A
      // name that cannot be learnt (a reserved one, or past the bounds) gives no counters.
      let name: string | undefined = current;
      if (counters && told !== undefined && told !== current) {
        const learned = reserved.has(told) ? DEFAULT_BUCKET : routes.learn(request, told);
        if (learned === DEFAULT_BUCKET) name = undefined;
        else {
          name = learned;
          learnt = true;
        }
      }
      const bucket = counters && name !== undefined ? { ...counters, name } : undefined;
      const buckets = bucket ? [bucket] : [];
      const retry = readRetryAfter(res);
      const spent = bucket?.remaining === 0;
      const limited =
        res.status === 429 ||
        (res.status === 403 && (retry.retryAfter !== undefined || spent || saysRateLimit(res.body)));
      if (!limited) return { outcome: 'ok', buckets };
      if (retry.retryAfter)
        return { outcome: 'limited', buckets, ...retry, ...(spent ? { limitedBy: bucket.name } : {}) };
      if (spent && bucket.reset && 'at' in bucket.reset)
        return {
          outcome: 'limited',
          buckets,
          retryAfter: { at: bucket.reset.at },
          retrySource: 'reset',
          limitedBy: bucket.name,
        };
      // A secondary limit without retry-after: the doc says to wait at least a minute.
      return { outcome: 'limited', buckets, retryAfter: { delayMs: SECONDARY_WAIT_MS }, retrySource: 'body' };
    },
  });
}
