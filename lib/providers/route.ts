/**
 * A request's route: method and path, ids as `:id` (`GET /projects/:id/tasks`). Names
 * per-endpoint buckets and what costs are learnt per. Pure, linear regexes, capped input.
 */
import { withoutLeadingUserInfo } from '../core/events.js';
import type { RequestInfo } from '../core/request.js';

const DIGITS = /^\d+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** 16+ hex digits with at least one digit (ObjectIds, hashes; not words such as "facade"). */
const LONG_HEX = /^(?=[a-f]*\d)[0-9a-f]{16,}$/i;
/** A placeholder as API references write it: `:id`, `{project_id}`. */
const PLACEHOLDER = /^(?::[a-z_][\w-]*|\{[^{}]*\})$/i;
const SCHEME_HOST = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i;
/** Longest URL prefix an endpoint key is made from; servers refuse longer request lines (8 KB is common). */
const MAX_URL_LENGTH = 8192;

function isId(segment: string): boolean {
  return DIGITS.test(segment) || UUID.test(segment) || LONG_HEX.test(segment) || PLACEHOLDER.test(segment);
}

/**
 * The path of a URL with scheme, host, query and fragment removed, empty and trailing slashes
 * dropped, and every id-like segment (all digits, a UUID, 16+ hex digits, or a placeholder
 * such as `{project_id}` or `:id`) replaced by `:id`. Relative and absolute URLs give the same
 * path, so do `/projects/42/tasks` and `/projects/{project_id}/tasks`.
 *
 * ```ts
 * import { endpointPath } from 'rx-ratelimit';
 * endpointPath('https://api.example.com/projects/42/tasks?page=2'); // '/projects/:id/tasks'
 * ```
 */
export function endpointPath(url: string | undefined): string {
  // A caller's URL may be huge: only its first MAX_URL_LENGTH characters name the endpoint (a
  // per-segment scan of 100 KB of `//a` took 10 ms).
  const noQuery = (url ?? '').slice(0, MAX_URL_LENGTH).split(/[?#]/, 1)[0] ?? '';
  // User-info goes in every form fetch and axios read it in (`//u:pw@h`, `https:///u:pw@h`,
  // `https:u:pw@h`, a tab in the scheme…); a scheme-relative URL keeps its host as a segment.
  const segments = withoutLeadingUserInfo(noQuery)
    .replace(SCHEME_HOST, '')
    .split('/')
    .filter((s) => s !== '')
    .map((s) => (isId(s) ? ':id' : s));
  return `/${segments.join('/')}`;
}

/**
 * A request's endpoint key, `METHOD /path` (method upper-cased, `GET` when absent; path as
 * {@link endpointPath} gives it). Names per-endpoint buckets such as `"GET /projects/:id/tasks:minute"`.
 *
 * ```ts
 * import { endpointKey } from 'rx-ratelimit';
 * endpointKey({ method: 'get', url: '/projects/9f1c2e4a-1b2c-4d5e-8f90-123456789abc/tasks' }); // 'GET /projects/:id/tasks'
 * ```
 */
export function endpointKey(request: Pick<RequestInfo, 'method' | 'url'>): string {
  return `${(request.method ?? 'GET').toUpperCase()} ${endpointPath(request.url)}`;
}
