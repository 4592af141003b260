/**
 * GitHub, from its REST docs ("Rate limits for the REST API"): a primary limit per resource
 * (`core` 5,000 requests an hour, `search` 30 a minute, `code_search` 10 a minute, `graphql`
 * 5,000 an hour), each window starting at its first request; every response carries
 * `x-ratelimit-limit`, `-remaining`, `-used`, `-reset` (unix seconds) and `-resource`. Past it:
 * 403 (or 429) with `x-ratelimit-remaining: 0` and "API rate limit exceeded". A secondary limit on
 * content creation (80 writes a minute, 500 an hour; counted here as sliding windows, which the
 * docs leave open) answers 403 (or 429) with `retry-after` and "secondary rate limit". So do the
 * secondary points ("Calculating points for the secondary rate limit"): 900 a minute for all of
 * REST (a GET, HEAD or OPTIONS costs 1, any other method 5) and 2,000 for GraphQL (1 a request
 * here), each over a sliding minute of the requests it let through (whether the minute slides,
 * and whether 900 is per endpoint, the docs leave open: the strict reading). A path under
 * `/forbidden` answers a 403 that is not rate limiting (a permission error).
 */
import { jsonBody, secondsUntil, unixSecondsCeil } from '../format.js';
import { JSON_TYPE, type SimContext, type SimOutcome } from './shared.js';

export const GITHUB_HOUR_MS = 3_600_000;
export const GITHUB_MINUTE_MS = 60_000;

export interface GithubConfig {
  readonly core: number;
  readonly search: number;
  readonly codeSearch: number;
  readonly graphql: number;
  readonly contentPerMinute: number;
  readonly contentPerHour: number;
  readonly limitedStatus: 403 | 429;
  /** Secondary points per sliding minute for all of REST (a read 1, a write 5). @default 900 */
  readonly restPointsPerMinute: number;
  /** Secondary points per sliding minute for GraphQL (1 a request). @default 2000 */
  readonly graphqlPointsPerMinute: number;
}

export const GITHUB_DEFAULTS: GithubConfig = {
  core: 5000,
  search: 30,
  codeSearch: 10,
  graphql: 5000,
  contentPerMinute: 80,
  contentPerHour: 500,
  limitedStatus: 403,
  restPointsPerMinute: 900,
  graphqlPointsPerMinute: 2000,
};

type Resource = 'core' | 'search' | 'code_search' | 'graphql';

/** A window that starts at its first request. */
interface Window {
  start: number;
  used: number;
}

/** The secondary points of the requests let through within the last minute, oldest first. */
interface PointLog {
  /** Arrival times. */
  readonly at: number[];
  /** Points of each request of `at`. */
  readonly points: number[];
  /** Sum of `points`. */
  sum: number;
}

export interface GithubState {
  readonly primary: Map<Resource, Window>;
  /** Send times of admitted content-creating requests within the last hour, oldest first. */
  readonly content: number[];
  /** Secondary points: REST and GraphQL. */
  readonly points: { readonly rest: PointLog; readonly graphql: PointLog };
  limitedUntil: number;
}

const pointLog = (): PointLog => ({ at: [], points: [], sum: 0 });

export function githubState(): GithubState {
  return { primary: new Map(), content: [], points: { rest: pointLog(), graphql: pointLog() }, limitedUntil: 0 };
}

/**
 * Drops what has left the sliding minute; `undefined` when `cost` more points fit, else when
 * they will (the oldest requests that keep the minute too full have left it).
 */
function pointsFreeAt(log: PointLog, now: number, minuteMs: number, cost: number, limit: number): number | undefined {
  while (log.at.length > 0 && (log.at[0] ?? now) <= now - minuteMs) {
    log.at.shift();
    log.sum -= log.points.shift() ?? 0;
  }
  if (log.sum + cost <= limit) return undefined;
  let left = log.sum;
  for (let i = 0; i < log.at.length; i++) {
    left -= log.points[i] ?? 0;
    if (left + cost <= limit) return (log.at[i] ?? now) + minuteMs;
  }
  return now + minuteMs;
}

/** A secondary-limit answer: `retry-after` until `until`, and GitHub's message. */
function secondary(
  cfg: GithubConfig,
  ctx: SimContext,
  headers: Record<string, string>,
  until: number,
  sentWhileLimited: boolean,
): SimOutcome {
  const body = jsonBody(
    {
      message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
      documentation_url: DOCS,
    },
    ctx.layout,
  );
  return {
    status: cfg.limitedStatus,
    headers: { ...headers, 'retry-after': String(secondsUntil(ctx.serverNow, until)) },
    body,
    sentWhileLimited,
    limited: true,
  };
}

function resourceOf(path: string): Resource {
  if (path === '/graphql') return 'graphql';
  if (path === '/search/code' || path.startsWith('/search/code/')) return 'code_search';
  if (path.startsWith('/search/')) return 'search';
  return 'core';
}

function limitOf(resource: Resource, cfg: GithubConfig): { limit: number; windowMs: number } {
  switch (resource) {
    case 'core':
      return { limit: cfg.core, windowMs: GITHUB_HOUR_MS };
    case 'graphql':
      return { limit: cfg.graphql, windowMs: GITHUB_HOUR_MS };
    case 'search':
      return { limit: cfg.search, windowMs: GITHUB_MINUTE_MS };
    case 'code_search':
      return { limit: cfg.codeSearch, windowMs: GITHUB_MINUTE_MS };
  }
}

const DOCS = 'https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api';
/** Secondary points of a REST request other than a GET, HEAD or OPTIONS. */
const WRITE_POINTS = 5;

export function githubHandle(state: GithubState, ctx: SimContext, cfg: GithubConfig): SimOutcome {
  const now = ctx.serverNow;
  const resource = resourceOf(ctx.path);
  const { limit, windowMs: documented } = limitOf(resource, cfg);
  const windowMs = documented / ctx.scale;
  let w = state.primary.get(resource);
  if (w === undefined || now >= w.start + windowMs) {
    w = { start: now, used: 0 };
    state.primary.set(resource, w);
  }
  const sentWhileLimited = now < state.limitedUntil;
  const end = w.start + windowMs;
  const headers = (): Record<string, string> => ({
    'Content-Type': JSON_TYPE,
    'x-ratelimit-limit': String(limit),
    'x-ratelimit-remaining': String(Math.max(0, limit - w.used)),
    'x-ratelimit-reset': String(unixSecondsCeil(end)),
    'x-ratelimit-used': String(w.used),
    'x-ratelimit-resource': resource,
  });
  if (w.used >= limit) {
    state.limitedUntil = Math.max(state.limitedUntil, end);
    const body = jsonBody({ message: 'API rate limit exceeded for user ID 1.', documentation_url: DOCS }, ctx.layout);
    return { status: cfg.limitedStatus, headers: headers(), body, sentWhileLimited, limited: true };
  }
  const creates = resource !== 'graphql' && ['POST', 'PATCH', 'PUT', 'DELETE'].includes(ctx.method);
  const minuteMs = GITHUB_MINUTE_MS / ctx.scale;
  const graphql = resource === 'graphql';
  const points = graphql ? state.points.graphql : state.points.rest;
  const cost = graphql || ['GET', 'HEAD', 'OPTIONS'].includes(ctx.method) ? 1 : WRITE_POINTS;
  const pointsFree = pointsFreeAt(
    points,
    now,
    minuteMs,
    cost,
    graphql ? cfg.graphqlPointsPerMinute : cfg.restPointsPerMinute,
  );
  if (pointsFree !== undefined) {
    state.limitedUntil = Math.max(state.limitedUntil, pointsFree);
    return secondary(cfg, ctx, headers(), pointsFree, sentWhileLimited);
  }
  if (creates) {
    const hourMs = GITHUB_HOUR_MS / ctx.scale;
    while (state.content.length > 0 && (state.content[0] ?? 0) <= now - hourMs) state.content.shift();
    const inMinute = state.content.filter((t) => t > now - minuteMs);
    const full = inMinute.length >= cfg.contentPerMinute || state.content.length >= cfg.contentPerHour;
    if (full) {
      // Free again when the oldest write of the full window leaves it.
      const minuteFree = inMinute.length >= cfg.contentPerMinute ? (inMinute[0] ?? now) + minuteMs : now;
      const hourFree = state.content.length >= cfg.contentPerHour ? (state.content[0] ?? now) + hourMs : now;
      const until = Math.max(minuteFree, hourFree);
      state.limitedUntil = Math.max(state.limitedUntil, until);
      return secondary(cfg, ctx, headers(), until, sentWhileLimited);
    }
    state.content.push(now);
  }
  points.at.push(now);
  points.points.push(cost);
  points.sum += cost;
  w.used += 1;
  if (ctx.path === '/forbidden' || ctx.path.startsWith('/forbidden/')) {
    const body = jsonBody({ message: 'Resource not accessible by integration', documentation_url: DOCS }, ctx.layout);
    return { status: 403, headers: headers(), body, sentWhileLimited, limited: false };
  }
  return { status: creates ? 201 : 200, headers: headers(), body: '{}', sentWhileLimited };
}
