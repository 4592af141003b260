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

/**
 * What one provider learns of the resources its server names: the route of each request to
 * the resource its last response named (at most `MAX_ROUTES`, oldest learnt forgotten first),
 * and the resources seen (at most `MAX_RESOURCES`).
 */
export class ResourceRoutes {
  private readonly routes = new Map<string, string>();
  private readonly specs = new Map<string, readonly BucketSpec[]>();
  /**
   * `lane`: the `default` bucket's spec, for requests of a route not learnt yet; `hint`: the
   * documented figures each resource starts from (until its headers tell).
   */
  constructor(
    private readonly lane: BucketSpec,
    private readonly hint: Omit<BucketSpec, 'name'>,
  ) {
    this.specs.set(DEFAULT_BUCKET, [lane]);
  }

  /** The buckets `request` counts against: its route's resource, else `default`. */
  bucketsFor(request: RequestInfo): readonly BucketSpec[] {
    const resource = this.routes.get(routeOf(request));
    return (resource !== undefined && this.specs.get(resource)) || [this.lane];
  }

  /**
   * A response to `request` named `resource`: its route counts against it from now on. Returns
   * the bucket its numbers go to: the resource, or `default` when `MAX_RESOURCES` others are
   * known already or the route is too long to remember (then the route is not learnt).
   */
  learn(request: RequestInfo, resource: string): string {
    const route = routeOf(request);
    // Numbers go only to a bucket the request's route is known to count against: one no
    // request declares would be a bucket the limiter counts every request against.
    if (route.length > MAX_ROUTE_CHARS) return DEFAULT_BUCKET;
    if (!this.specs.has(resource)) {
      // `default` is in `specs` too: one slot more than MAX_RESOURCES in all.
      if (this.specs.size > MAX_RESOURCES) return DEFAULT_BUCKET;
      this.specs.set(resource, [{ ...this.hint, name: resource }]);
    }
    if (this.routes.get(route) === resource) return resource;
    // Deleted first so that a route learnt again moves to the end: the oldest learnt goes first.
    this.routes.delete(route);
    this.routes.set(route, resource);
    if (this.routes.size > MAX_ROUTES) {
      const oldest = this.routes.keys().next();
      if (!oldest.done) this.routes.delete(oldest.value);
    }
    return resource;
  }
}

function routeOf(request: RequestInfo): string {
  return endpointKey(request);
}
