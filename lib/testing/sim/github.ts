/**
 * GitHub, from its REST docs ("Rate limits for the REST API"): a primary limit per resource
 * (`core` 5,000 requests an hour, `search` 30 a minute, `code_search` 10 a minute, `graphql`
 * 5,000 an hour), each window starting at its first request; every response carries
 * `x-ratelimit-limit`, `-remaining`, `-used`, `-reset` (unix seconds) and `-resource`. Past it:
 * 403 (or 429) with `x-ratelimit-remaining: 0` and "API rate limit exceeded". A secondary limit on
 * content creation (80 writes a minute, 500 an hour; counted here as sliding windows, which the
 * docs leave open) answers 403 (or 429) with `retry-after` and "secondary rate limit". A path
 * under `/forbidden` answers a 403 that is not rate limiting (a permission error).
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
}

export const GITHUB_DEFAULTS: GithubConfig = {
  core: 5000,
  search: 30,
  codeSearch: 10,
  graphql: 5000,
  contentPerMinute: 80,
  contentPerHour: 500,
  limitedStatus: 403,
};

type Resource = 'core' | 'search' | 'code_search' | 'graphql';

/** A window that starts at its first request. */
interface Window {
  start: number;
  used: number;
}

export interface GithubState {
  readonly primary: Map<Resource, Window>;
  /** Send times of admitted content-creating requests within the last hour, oldest first. */
  readonly content: number[];
  limitedUntil: number;
}

export function githubState(): GithubState {
  return { primary: new Map(), content: [], limitedUntil: 0 };
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
  if (creates) {
    const hourMs = GITHUB_HOUR_MS / ctx.scale;
    const minuteMs = GITHUB_MINUTE_MS / ctx.scale;
    while (state.content.length > 0 && (state.content[0] ?? 0) <= now - hourMs) state.content.shift();
    const inMinute = state.content.filter((t) => t > now - minuteMs);
    const full = inMinute.length >= cfg.contentPerMinute || state.content.length >= cfg.contentPerHour;
    if (full) {
      // Free again when the oldest write of the full window leaves it.
      const minuteFree = inMinute.length >= cfg.contentPerMinute ? (inMinute[0] ?? now) + minuteMs : now;
      const hourFree = state.content.length >= cfg.contentPerHour ? (state.content[0] ?? now) + hourMs : now;
      const until = Math.max(minuteFree, hourFree);
      state.limitedUntil = Math.max(state.limitedUntil, until);
      const body = jsonBody(
        {
          message: 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.',
          documentation_url: DOCS,
        },
        ctx.layout,
      );
      return {
        status: cfg.limitedStatus,
        headers: { ...headers(), 'retry-after': String(secondsUntil(now, until)) },
        body,
        sentWhileLimited,
        limited: true,
      };
    }
    state.content.push(now);
  }
  w.used += 1;
  if (ctx.path === '/forbidden' || ctx.path.startsWith('/forbidden/')) {
    const body = jsonBody({ message: 'Resource not accessible by integration', documentation_url: DOCS }, ctx.layout);
    return { status: 403, headers: headers(), body, sentWhileLimited, limited: false };
  }
  return { status: creates ? 201 : 200, headers: headers(), body: '{}', sentWhileLimited };
}
