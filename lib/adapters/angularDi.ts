/**
 * Limiters through Angular's dependency injection: {@link provideRateLimiting} creates them in an
 * environment injector (per application in the browser, per request under SSR), the
 * {@link RATE_LIMITERS} token hands them out, {@link rateLimitingInterceptor} paces `HttpClient`
 * with them, and TransferState carries the server's last readings to the browser's limiters.
 * Re-exported by `rx-ratelimit/angular`.
 *
 * @packageDocumentation
 */
import type { HttpInterceptorFn, HttpRequest } from '@angular/common/http';
import {
  DestroyRef,
  inject,
  InjectionToken,
  makeEnvironmentProviders,
  makeStateKey,
  PLATFORM_ID,
  TransferState,
  type EnvironmentProviders,
} from '@angular/core';
import type { Limiter } from '../core/limiter.js';
import type { LimiterPool } from '../core/pool.js';
import type { SharedLimiter } from '../core/registry.js';
import { byHostKey, entryForUrl, readHostKey } from './angularHosts.js';
import { buildInterceptor, type RateLimitInterceptorOptions } from './angularInterceptor.js';
import {
  recordedResponses,
  replayResponses,
  TRANSFER_RECORDER,
  type RecordedResponse,
  type TransferRecorder,
} from './angularTransfer.js';
import { isLimiter } from './common.js';

/**
 * Makes the limiter of one API. Runs in an injection context (it may `inject()` the signed-in
 * user's token, Angular's `REQUEST`…), once per environment injector that provides it: once per
 * application in a browser, once per request under SSR. It may return a `Limiter`, or what
 * `shareLimiter` returns (released when the injector is destroyed: the end of the request).
 */
export type LimiterFactory = () => Limiter | SharedLimiter;

/**
 * One API's limiters by tenant, for {@link RateLimitingOptions.pools}: a limiter pool, and how a
 * request names its tenant (the key of its limiter in the pool).
 */
export interface LimiterPoolBinding {
  /**
   * The pool. A `LimiterPool` is shared by every injector that provides it and never closed
   * here (close it yourself); a factory runs in the injection context, once per environment
   * injector (once per request under SSR), and its pool is closed when that injector is destroyed.
   */
  readonly pool: LimiterPool | (() => LimiterPool);
  /**
   * The request's tenant: the name of a request header whose value is the key (`'x-api-token'`,
   * `'authorization'`: a request is paced by the budget of the credential it carries), or a
   * function of the request. A request that names none (header absent, function returns
   * `undefined`) goes around the pool unpaced, and the first such request per host is logged
   * with `console.warn`. A key is at most 8,192 characters; it is never logged.
   */
  readonly tenant: string | ((req: HttpRequest<unknown>) => string | undefined);
}

/** Options of {@link provideRateLimiting}. */
export interface RateLimitingOptions {
  /**
   * Limiter factories by host (`'api.pipedrive.com'`, or with the port, `'localhost:8080'`,
   * tried first), in a plain object. A key is read as a URL's host is (any case, a Unicode name,
   * a trailing dot; `'api.example.com:443'` matches `https://api.example.com/`); one that is no
   * host throws a `TypeError`. A host absent from `limiters` and `pools` is not limited. @default {}
   */
  readonly limiters?: Readonly<Record<string, LimiterFactory>>;
  /**
   * Limiter pools by host, for an API called with many tenants' credentials (a limiter per
   * customer token, made on first use, evicted when idle): each request goes through the
   * limiter of its tenant. A host is in `limiters` or in `pools`, not both. Pools carry no
   * readings from the server render to the browser. @default {}
   */
  readonly pools?: Readonly<Record<string, LimiterPoolBinding>>;
  /**
   * Carry each limiter's last readings from the server render to the browser (TransferState),
   * so that the browser's limiter starts from what the server knew, not from a cold guess.
   * Readings are replayed only into a limiter of the same provider and key label. @default true
   */
  readonly transferState?: boolean;
}

/**
 * The limiters of the current environment injector, by host as `provideRateLimiting` reads its
 * keys: lower case, a Unicode name in its ASCII form (`xn--…`), no trailing dot, `:port` where the
 * key named one.
 */
export const RATE_LIMITERS = new InjectionToken<ReadonlyMap<string, Limiter>>('rx-ratelimit RATE_LIMITERS');

/** One host's pool and the tenant of a request, as {@link RATE_LIMITER_POOLS} holds them. */
export interface BoundLimiterPool {
  readonly pool: LimiterPool;
  /** The request's tenant key, or `undefined` when it names none. */
  readonly tenantOf: (req: HttpRequest<unknown>) => string | undefined;
}

/** The limiter pools of the current environment injector, by host as in {@link RATE_LIMITERS}. */
export const RATE_LIMITER_POOLS = new InjectionToken<ReadonlyMap<string, BoundLimiterPool>>(
  'rx-ratelimit RATE_LIMITER_POOLS',
);

/** Longest tenant key a request may carry (a JWT in `Authorization` fits). */
const MAX_TENANT_LENGTH = 8192;

/** Duck-typed, so that `rx-ratelimit/angular` does not bundle the pool's class. */
function isLimiterPool(x: unknown): x is LimiterPool {
  const p = x as Partial<LimiterPool> | null;
  return typeof p === 'object' && p !== null && typeof p.get === 'function' && typeof p.close === 'function';
}

/** Checks `pools` and turns each binding's `tenant` into a function of the request. */
function parsePools(
  pools: unknown,
  limiterHosts: ReadonlyMap<string, unknown>,
): Map<string, { pool: LimiterPoolBinding['pool']; tenantOf: BoundLimiterPool['tenantOf'] }> {
  const out = new Map<string, { pool: LimiterPoolBinding['pool']; tenantOf: BoundLimiterPool['tenantOf'] }>();
  if (pools === undefined) return out;
  if (typeof pools !== 'object' || pools === null) {
    throw new TypeError('provideRateLimiting: option `pools` must be an object of { pool, tenant } by host');
  }
  for (const [host, { key, value }] of byHostKey<Partial<LimiterPoolBinding> | null>(
    'provideRateLimiting',
    'pools',
    pools,
  )) {
    const { pool, tenant } = value ?? {};
    const where = `provideRateLimiting: option \`pools\`, "${key}"`;
    if (limiterHosts.has(host)) {
      throw new TypeError(`${where}: the host is in \`limiters\` too; give it a limiter or a pool, not both`);
    }
    if (!isLimiterPool(pool) && typeof pool !== 'function') {
      throw new TypeError(`${where}: \`pool\` must be a LimiterPool or a function returning one`);
    }
    const header = typeof tenant === 'string' && /^[!#$%&'*+.^`|~\w-]{1,256}$/.test(tenant) ? tenant : undefined;
    if (header === undefined && typeof tenant !== 'function') {
      throw new TypeError(`${where}: \`tenant\` must be a header name or a function of the request`);
    }
    out.set(host, {
      pool,
      tenantOf:
        header === undefined
          ? (tenant as BoundLimiterPool['tenantOf'])
          : // Every value, as they are sent (a header set twice goes as "a, b"): the first alone
            // paced the request as one tenant while it went with two credentials.
            (req) => req.headers.getAll(header)?.join(', ') || undefined,
    });
  }
  return out;
}

/** The entry of `host` in `map` ({@link injectLimiter}, {@link injectLimiterPool}); throws naming the hosts there are. */
function byHost<T>(name: string, map: ReadonlyMap<string, T> | null, host: string): T {
  const key = readHostKey(host);
  const found = key === undefined ? undefined : map?.get(key);
  if (!map || !found) {
    throw new Error(
      `${name}: provideRateLimiting (in the providers here) has nothing for "${host}" (it has ${[...(map?.keys() ?? [])].join(', ') || 'none'})`,
    );
  }
  return found;
}

/**
 * What one host's limiter carries from the server to the browser. A page holds a list of them
 * per host (one per injector that has a limiter for it); an older page held one.
 */
interface Carried {
  readonly provider: string;
  readonly key: string;
  /** The server's clock (epoch ms) when it wrote the page: how old each reading was then. */
  readonly servedAt: number;
  readonly responses: readonly RecordedResponse[];
}

const TRANSFER_KEY = makeStateKey<Record<string, Carried | Carried[]>>('rx-ratelimit');

/**
 * The readings of one page, by its `TransferState`: every injector that provides limiters (the
 * application's, a route's) adds its own, as Angular keeps one `onSerialize` callback per key
 * and a page one value. On the server: each injector's limiters with the recorder of its
 * render, written once, together. In the browser: what the page carried, read once, until the
 * limiter of each host (and provider and key) takes its part. A module-level map, but keyed by
 * the page's own `TransferState` (one per application; per render under SSR) and weak: two
 * apps, or two renders, never see each other's.
 */
const pages = new WeakMap<
  TransferState,
  {
    readonly sources: Array<readonly [ReadonlyMap<string, Limiter>, TransferRecorder]>;
    readonly carried: Map<string, unknown>;
    /**
     * When the page arrived (its navigation's first byte, else when the browser read it), on
     * `performance.now()`'s clock, which no one steps.
     */
    readonly readAt: number;
  }
>();

/**
 * Environment providers that create the app's limiters through DI, for `bootstrapApplication`'s
 * (or a route's) providers. Each factory runs once per injector, when a limiter is first needed;
 * under SSR that is once per request, so a limiter keyed by the user is never shared with
 * another user's render. The readings carried to the browser (`transferState`) are those of
 * every injector that provides limiters, a route's with the application's. Use with
 * {@link rateLimitingInterceptor}.
 *
 * ```ts
 * import { provideHttpClient, withFetch, withInterceptors } from '@angular/common/http';
 * import { type ApplicationConfig } from '@angular/core';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { provideRateLimiting, rateLimitingInterceptor } from 'rx-ratelimit/angular';
 *
 * export const appConfig: ApplicationConfig = {
 *   providers: [
 *     provideRateLimiting({
 *       limiters: {
 *         'api.procore.com': () => createLimiter({ provider: providers.procore(), key: 'company-7' }),
 *       },
 *     }),
 *     provideHttpClient(withFetch(), withInterceptors([rateLimitingInterceptor()])),
 *   ],
 * };
 * ```
 */
export function provideRateLimiting(options: RateLimitingOptions): EnvironmentProviders {
  const given = options as Partial<RateLimitingOptions> | null;
  if (typeof given !== 'object' || given === null || (given.limiters === undefined && given.pools === undefined)) {
    throw new TypeError(
      'provideRateLimiting: options must be an object with `limiters` (factories by host) and/or `pools`',
    );
  }
  const factories = new Map<string, LimiterFactory>();
  for (const [host, { key, value }] of byHostKey<unknown>('provideRateLimiting', 'limiters', given.limiters ?? {})) {
    if (typeof value !== 'function') {
      throw new TypeError(`provideRateLimiting: option \`limiters\` must map hosts to factories; "${key}" does not`);
    }
    factories.set(host, value as LimiterFactory);
  }
  const pools = parsePools(options.pools, factories);
  const transfer = options.transferState ?? true;
  if (typeof transfer !== 'boolean')
    throw new TypeError('provideRateLimiting: option `transferState` must be a boolean');

  return makeEnvironmentProviders([
    {
      provide: RATE_LIMITERS,
      useFactory: (): ReadonlyMap<string, Limiter> => {
        const destroyRef = inject(DestroyRef);
        const out = new Map<string, Limiter>();
        for (const [host, factory] of factories) {
          const made = factory();
          const limiter = isLimiter(made) ? made : (made as Partial<SharedLimiter> | null)?.limiter;
          if (!isLimiter(limiter)) {
            throw new TypeError(
              `provideRateLimiting: the factory of "${host}" must return a Limiter or a SharedLimiter`,
            );
          }
          if (!isLimiter(made)) destroyRef.onDestroy(() => void (made as SharedLimiter).release());
          out.set(host, limiter);
        }
        if (transfer) carry(out);
        return out;
      },
    },
    // One per injector that provides limiters (an application's, a route's): under SSR, per render.
    ...(transfer ? [{ provide: TRANSFER_RECORDER, useFactory: (): TransferRecorder => new Map() }] : []),
    {
      provide: RATE_LIMITER_POOLS,
      useFactory: (): ReadonlyMap<string, BoundLimiterPool> => {
        const destroyRef = inject(DestroyRef);
        const out = new Map<string, BoundLimiterPool>();
        for (const [host, { pool, tenantOf }] of pools) {
          const made = isLimiterPool(pool) ? pool : pool();
          if (!isLimiterPool(made)) {
            throw new TypeError(`provideRateLimiting: the \`pool\` function of "${host}" must return a LimiterPool`);
          }
          // A pool made for this injector ends with it (under SSR: with the request).
          if (made !== pool) destroyRef.onDestroy(() => void made.close());
          out.set(host, { pool: made, tenantOf });
        }
        return out;
      },
    },
  ]);
}

/**
 * On the server, adds the limiters' readings to the page; in the browser, replays what the page
 * carried for them, once.
 */
function carry(limiters: ReadonlyMap<string, Limiter>): void {
  const state = inject(TransferState, { optional: true });
  if (!state) return;
  const server = inject(PLATFORM_ID) === 'server';
  let page = pages.get(state);
  if (!page) {
    const carried = server ? null : state.get(TRANSFER_KEY, null);
    page = {
      sources: [],
      carried: new Map(carried && typeof carried === 'object' ? Object.entries(carried) : []),
      readAt: pageArrivedAt(),
    };
    pages.set(state, page);
    if (server) state.onSerialize(TRANSFER_KEY, written(page.sources));
    else state.remove(TRANSFER_KEY);
  }
  if (server) {
    page.sources.push([limiters, inject(TRANSFER_RECORDER)]);
    return;
  }
  const now = Date.now();
  // A limiter made later (at the first request, in a lazy route) replays the page as old as it
  // is by then: the time since the page arrived, on a clock no one steps, adds to its age.
  const elapsedMs = performance.now() - page.readAt;
  for (const [host, limiter] of limiters) {
    // Another user's (or provider's) readings are not this limiter's budget.
    const mine = (c: unknown): c is Carried => {
      const p = c as Partial<Carried> | null;
      return p?.provider === limiter.provider.name && p.key === limiter.key && Array.isArray(p.responses);
    };
    const list = [page.carried.get(host) ?? []].flat();
    page.carried.set(
      host,
      list.filter((c) => !mine(c)),
    );
    for (const c of list.filter(mine).slice(-8)) {
      replayResponses(limiter, c.responses.filter(isRecorded).slice(-8), now, c.servedAt, elapsedMs);
    }
  }
}

/**
 * When this page's first byte arrived (`responseStart` of its navigation, on `performance.now()`'s
 * clock): after the server wrote it, so the time since is no more than the page's age. Now where
 * there is no such entry (a page the app fetched itself, a server, a test).
 */
function pageArrivedAt(): number {
  const now = performance.now();
  try {
    const [nav] = performance.getEntriesByType('navigation') as PerformanceNavigationTiming[];
    const at = nav?.responseStart;
    return typeof at === 'number' && at > 0 && at <= now ? at : now;
  } catch {
    return now;
  }
}

/** The page's value: each injector's limiters' last readings by host, as of `servedAt`. */
function written(sources: ReadonlyArray<readonly [ReadonlyMap<string, Limiter>, TransferRecorder]>) {
  return (): Record<string, Carried[]> => {
    const servedAt = Date.now();
    const out = new Map<string, Carried[]>();
    for (const [limiters, recorder] of sources) {
      for (const [host, limiter] of limiters) {
        const responses = recordedResponses(recorder, limiter);
        if (responses.length === 0) continue;
        const { name: provider } = limiter.provider;
        out.set(host, [...(out.get(host) ?? []), { provider, key: limiter.key, servedAt, responses }]);
      }
    }
    return Object.fromEntries(out);
  };
}

/** A recorded response as it came out of the page (hostile until checked). */
function isRecorded(x: unknown): x is RecordedResponse {
  const r = x as Partial<RecordedResponse> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    Number.isInteger(r.status) &&
    typeof r.method === 'string' &&
    typeof r.url === 'string' &&
    typeof r.at === 'number' &&
    Array.isArray(r.headers) &&
    r.headers.length <= 32 &&
    r.headers.every(
      (h: unknown) => Array.isArray(h) && h.length === 2 && typeof h[0] === 'string' && typeof h[1] === 'string',
    )
  );
}

/**
 * The limiter {@link provideRateLimiting} made for `host`, in an injection context (a
 * component's field, a service's constructor). Throws naming the host when there is none.
 *
 * ```ts
 * import { Component } from '@angular/core';
 * import { injectLimiter } from 'rx-ratelimit/angular';
 *
 * @Component({ selector: 'app-pipedrive-budget', template: '{{ limiter.snapshot.queued }} waiting' })
 * export class PipedriveBudget {
 *   readonly limiter = injectLimiter('api.pipedrive.com');
 * }
 * ```
 */
export function injectLimiter(host: string): Limiter {
  return byHost('injectLimiter', inject(RATE_LIMITERS, { optional: true }), host);
}

/**
 * The limiter pool {@link provideRateLimiting} has for `host` (its `pools` option), in an
 * injection context: for a status page of the tenants ({@link limiterPoolStatus}), or to reach a
 * tenant's limiter (`pool.get(key)`). Throws naming the host when there is none.
 *
 * ```ts
 * import { Component } from '@angular/core';
 * import { injectLimiterPool, limiterPoolStatus } from 'rx-ratelimit/angular';
 *
 * @Component({ selector: 'app-tenants', template: '{{ status().paused }} tenants paused' })
 * export class Tenants {
 *   readonly status = limiterPoolStatus(injectLimiterPool('api.pipedrive.com'));
 * }
 * ```
 */
export function injectLimiterPool(host: string): LimiterPool {
  return byHost('injectLimiterPool', inject(RATE_LIMITER_POOLS, { optional: true }), host).pool;
}

/**
 * The interceptor for limiters from {@link provideRateLimiting}: each request goes through the
 * limiter of its host in the current injector, or, for a host of `pools`, through its tenant's
 * limiter in the host's pool (see {@link rateLimitInterceptor} for what it does, and for
 * `options`). Requests to other hosts pass through untouched.
 */
export function rateLimitingInterceptor(
  options: Omit<RateLimitInterceptorOptions, 'limiters'> = {},
): HttpInterceptorFn {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('rateLimitingInterceptor: options must be an object');
  }
  const warned = new Set<string>();
  return buildInterceptor(
    'rateLimitingInterceptor',
    options,
    (req, url) => {
      if (!url) return undefined;
      const limiters = inject(RATE_LIMITERS, { optional: true });
      if (!limiters) {
        throw new Error('rateLimitingInterceptor: no limiters here; add provideRateLimiting(...) to the providers');
      }
      const limiter = entryForUrl(limiters, url);
      if (limiter) return limiter;
      const bound = entryForUrl(inject(RATE_LIMITER_POOLS), url);
      if (!bound) return undefined;
      const tenant = bound.tenantOf(req);
      if (!tenant) {
        if (!warned.has(url.host)) {
          warned.add(url.host);
          console.warn(`rx-ratelimit: a request to ${url.host} names no tenant for its limiter pool: it goes unpaced`);
        }
        return undefined;
      }
      if (typeof tenant !== 'string' || tenant.length > MAX_TENANT_LENGTH) {
        throw new TypeError(
          `rateLimitingInterceptor: the tenant of a request to ${url.host} must be a string of at most ${MAX_TENANT_LENGTH} characters`,
        );
      }
      return bound.pool.get(tenant);
    },
    true,
  );
}
