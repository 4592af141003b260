/**
 * Buckets chosen by the response: a server that names, in a header of each response, which of
 * its budgets the response's numbers belong to (GitHub's `x-ratelimit-resource: search`). The
 * name is only known after a request, while a request's buckets are chosen before it is sent,
 * so the resource is learnt per route (`endpointKey`: method and path, ids as `:id`) from the
 * responses, and later requests of that route count against it. Pure apart from what it
 * learns: no clock, no I/O; bounded memory.
 */
import type { RequestInfo } from '../core/request.js';
import { endpointKey } from './endpoint.js';
import type { BucketSpec } from './types.js';

/** Most resources a server may name; a reading naming one more goes to `default`. */
export const MAX_RESOURCES = 32;
/** Most routes whose resource is remembered; past it, the route learnt longest ago is forgotten. */
export const MAX_ROUTES = 1024;
/** Longest route key remembered (a longer one is not learnt: its requests and numbers stay on `default`). */
const MAX_ROUTE_CHARS = 512;
/** Longest header value looked at; a longer one names nothing. */
const MAX_VALUE_CHARS = 128;
/** A resource name: a token of lower-case letters, digits, `_`, `-` and `.`, at most 64 characters. */
const RESOURCE = /^[a-z0-9][a-z0-9_.-]{0,63}$/;

/** The bucket of requests whose resource is not known yet, and of readings naming none. */
export const DEFAULT_BUCKET = 'default';

/**
 * A resource name from a header value: trimmed, lower-cased, and only when it is a short token
 * (`core`, `code_search`, `graphql`); `undefined` for anything else.
 *
 * ```ts
 * import { resourceName } from 'rx-ratelimit';
 * resourceName(' Search '); // 'search'
 * resourceName('a b');      // undefined
 * ```
 */
export function resourceName(value: string | undefined): string | undefined {
  if (value === undefined || value.length > MAX_VALUE_CHARS) return undefined;
  const name = value.trim().toLowerCase();
  return RESOURCE.test(name) ? name : undefined;
}

/** Most servers (origins) whose resources are remembered; past it, the one used longest ago is forgotten. */
export const MAX_ORIGINS = 256;
/** Longest origin told apart; a longer one is learnt as no origin at all (as a relative URL). */
const MAX_ORIGIN_CHARS = 256;

/**
 * What one provider learns of the resources its servers name, per server (the origin of the
 * request's URL; a relative URL is a server of its own): the route of each request to the
 * resource its last response named (at most `MAX_ROUTES`, oldest learnt forgotten first), and
 * the resources seen (at most `MAX_RESOURCES`). A provider object is often shared by many
 * credentials (a pool's tenants): those of one API share what it names, as is right, but a
 * server of one tenant (a self-hosted instance) cannot rename another server's routes or fill
 * its resources, and what it names stays among its own requests.
 */
export class ResourceRoutes {
  private readonly servers = new Map<string, ServerRoutes>();
  /**
   * `lane`: the `default` bucket's spec, for requests of a route not learnt yet; `hint`: the
   * documented figures each resource starts from (until its headers tell).
   */
  constructor(
    private readonly lane: BucketSpec,
    private readonly hint: Omit<BucketSpec, 'name'>,
  ) {}

  /** The buckets `request` counts against: its route's resource, else `default`. */
  bucketsFor(request: RequestInfo): readonly BucketSpec[] {
    const server = this.servers.get(originOf(request.url));
    const resource = server?.routes.get(endpointKey(request));
    return (resource !== undefined && server?.specs.get(resource)) || [this.lane];
  }

  /**
   * A response to `request` named `resource`: its route counts against it from now on. Returns
   * the bucket its numbers go to: the resource, or `default` when `MAX_RESOURCES` others are
   * known already or the route is too long to remember (then the route is not learnt).
   */
  learn(request: RequestInfo, resource: string): string {
    const route = endpointKey(request);
    // Numbers go only to a bucket the request's route is known to count against: one no
    // request declares would be a bucket the limiter counts every request against.
    if (route.length > MAX_ROUTE_CHARS) return DEFAULT_BUCKET;
    const origin = originOf(request.url);
    let server = this.servers.get(origin);
    if (server) {
      // Used: moved to the end, so that the server used longest ago goes first.
      this.servers.delete(origin);
    } else {
      server = { routes: new Map(), specs: new Map() };
      if (this.servers.size >= MAX_ORIGINS) {
        const oldest = this.servers.keys().next();
        if (!oldest.done) this.servers.delete(oldest.value);
      }
    }
    this.servers.set(origin, server);
    const { routes, specs } = server;
    if (!specs.has(resource)) {
      if (specs.size >= MAX_RESOURCES) return DEFAULT_BUCKET;
      specs.set(resource, [{ ...this.hint, name: resource }]);
    }
    if (routes.get(route) === resource) return resource;
    // Deleted first so that a route learnt again moves to the end: the oldest learnt goes first.
    routes.delete(route);
    routes.set(route, resource);
    if (routes.size > MAX_ROUTES) {
      const oldest = routes.keys().next();
      if (!oldest.done) routes.delete(oldest.value);
    }
    return resource;
  }
}

/** What one server named: its routes' resources, and the buckets of those resources. */
interface ServerRoutes {
  readonly routes: Map<string, string>;
  readonly specs: Map<string, readonly BucketSpec[]>;
}

/**
 * The server of a URL, as the origin (`https://api.github.com`, lower-cased), read without a
 * parse of the whole URL (a hostile one may be megabytes); '' for a relative URL or one whose
 * origin is too long to tell.
 */
function originOf(url: string | undefined): string {
  if (url === undefined) return '';
  const scheme = /^[a-z][a-z0-9+.-]{0,15}:\/\//i.exec(url.slice(0, 24));
  if (!scheme) return '';
  let end = scheme[0].length;
  const stop = Math.min(url.length, MAX_ORIGIN_CHARS + 1);
  while (end < stop && !'/?#'.includes(url.charAt(end))) end++;
  return end > MAX_ORIGIN_CHARS ? '' : url.slice(0, end).toLowerCase();
}
