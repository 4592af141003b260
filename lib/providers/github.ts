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
   * GitHub sends no header for them. Its docs put the limit on "requests to a single endpoint"
   * yet say 900 points "for REST API endpoints": one bucket for all of REST is the safe reading.
   * Windows as `contentCreation` (`'fixed'` there makes these fixed too). @default false
   */
  readonly secondaryPoints?: boolean;
}

/**
 * The primary-limit resources GitHub names in `x-ratelimit-resource`, with the documented
 * budget of an authenticated user where the docs give one (a hint until the headers tell; a
 * resource without one sends one request at a time until its first response reports it).
 */
const RESOURCES: Readonly<Record<string, { readonly limit?: number; readonly windowMs?: number }>> = {
  core: { limit: 5000, windowMs: 3_600_000 },
  search: { limit: 30, windowMs: 60_000 },
  code_search: { limit: 10, windowMs: 60_000 },
  graphql: { limit: 5000, windowMs: 3_600_000 },
  integration_manifest: {},
  dependency_snapshots: {},
  code_scanning_upload: {},
  actions_runner_registration: {},
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
const RESOURCE_NAME = /^[a-z_]{1,40}$/;
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
 * -reset/-used/-resource` tell), chosen from the URL. The secondary content-creation limits (80
 * writes a minute, 500 an hour) as `content:minute` and `content:hour` on POST, PATCH, PUT and
 * DELETE. A 429, or a 403 with `retry-after`, `x-ratelimit-remaining: 0` or a "rate limit"
 * message, pauses every stream: until `retry-after`, else the reset, else one minute. Any other
 * 403 (a permission error) is an ordinary answer. Give the limiter `maxConcurrent: 100` for the
 * secondary concurrency limit.
 *
 * ```ts
 * import { createLimiter, providers } from 'rx-ratelimit';
 * const limiter = createLimiter({ provider: providers.github(), key: 'github-user-or-app', maxConcurrent: 100 });
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
    o.secondaryPoints ? [hinted({ name, limit, windowMs: 60_000, ...pointWindows }, o.hints)] : [];
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
  return defineProvider({
    name: 'github',
    bucketKinds: [rollingWindows],
    buckets: (request) => {
      const resource = githubResource(request);
      // GraphQL is one POST endpoint: its writes are mutations, not told apart here.
      const table = isContentWrite(request) && resource !== 'graphql' ? writes : reads;
      return table.get(resource) ?? [];
    },
    // A REST write costs 5 secondary points; a read, and a GraphQL request (its body is not
    // seen: a mutation's caller passes its cost), 1.
    cost: (request, bucket) => (bucket.name === POINTS_REST && isContentWrite(request) ? WRITE_POINTS : undefined),
    read(res, request): ResponseReading {
      const told = res.header('x-ratelimit-resource')?.trim().toLowerCase() ?? '';
      // The server's name wins when it is one we know; an unknown name would make a bucket
      // that every request counts against, so the URL's resource is used instead.
      const name = RESOURCE_NAME.test(told) && Object.hasOwn(RESOURCES, told) ? told : githubResource(request);
      const bucket = primary(res, name);
      const buckets = bucket ? [bucket] : [];
      const retry = readRetryAfter(res);
      const spent = bucket?.remaining === 0;
      const limited =
        res.status === 429 ||
        (res.status === 403 && (retry.retryAfter !== undefined || spent || saysRateLimit(res.body)));
      if (!limited) return { outcome: 'ok', buckets };
      if (retry.retryAfter) return { outcome: 'limited', buckets, ...retry, ...(spent ? { limitedBy: name } : {}) };
      if (spent && bucket.reset && 'at' in bucket.reset)
        return {
          outcome: 'limited',
          buckets,
          retryAfter: { at: bucket.reset.at },
          retrySource: 'reset',
          limitedBy: name,
        };
      // A secondary limit without retry-after: the doc says to wait at least a minute.
      return { outcome: 'limited', buckets, retryAfter: { delayMs: SECONDARY_WAIT_MS }, retrySource: 'body' };
    },
  });
}
