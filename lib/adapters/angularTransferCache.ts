/**
 * Whether Angular's HTTP transfer cache (`provideClientHydration()`, `withHttpTransferCache`)
 * will answer a request from the page, asked before the request waits for a permit: its
 * interceptor is one of Angular's root interceptors, which run after every interceptor of
 * `withInterceptors`, so a response it gives reaches the limiter only once a permit was taken.
 */
import {
  HTTP_TRANSFER_CACHE_ORIGIN_MAP,
  ɵwithHttpTransferCache as withHttpTransferCache,
  type HttpRequest,
} from '@angular/common/http';
import { inject, InjectionToken, TransferState } from '@angular/core';

/** Angular's lookup of a request in the transfer cache, as its `httpResource` calls it. */
type ReadCache = (
  req: HttpRequest<unknown>,
  options: object,
  state: TransferState,
  originMap: Record<string, string> | null,
) => unknown;

/** The transfer cache's settings: whether it still answers, and its lookup. */
interface CacheOptions {
  readonly readCache?: unknown;
}

/**
 * The token of the transfer cache's settings. Angular does not export it, but it is the one
 * provider made by a factory, and not for a list, of those its `withHttpTransferCache` returns
 * (the others add its interceptor and a bootstrap listener). `undefined` if that ever changes:
 * every request then goes through the limiter, as it did before this lookup.
 */
const CACHE_OPTIONS = cacheOptionsToken();

function cacheOptionsToken(): InjectionToken<CacheOptions> | undefined {
  const made: unknown = withHttpTransferCache({});
  if (!Array.isArray(made)) return undefined;
  const found = made.filter((p: unknown): p is { provide: InjectionToken<CacheOptions> } => {
    const provider = p as { provide?: unknown; useFactory?: unknown; multi?: unknown } | null;
    return (
      provider?.provide instanceof InjectionToken &&
      typeof provider.useFactory === 'function' &&
      provider.multi !== true
    );
  });
  return found.length === 1 ? found[0]?.provide : undefined;
}

/**
 * `true` when Angular's HTTP transfer cache will answer `req` from the page: asked with Angular's
 * own lookup (`readCache`, the one `httpResource` uses), which holds every rule of its
 * interceptor (the cache still on before the app is stable, the method, the headers, the
 * request's `transferCache` option, the app's `filter`) and finds the response the server
 * render stored for that very request. Call it in the interceptor's injection context; `server`:
 * under SSR, where the origin map of `HTTP_TRANSFER_CACHE_ORIGIN_MAP` applies.
 */
export function answeredByTransferCache(req: HttpRequest<unknown>, server: boolean): boolean {
  if (CACHE_OPTIONS === undefined) return false;
  const options = inject(CACHE_OPTIONS, { optional: true });
  // No transfer cache in this app: nothing else is asked of its injector.
  if (!options || typeof options.readCache !== 'function') return false;
  const state = inject(TransferState, { optional: true });
  if (!state) return false;
  // The map is the server's alone: Angular refuses it in a browser, as its interceptor ignores it there.
  const originMap = server ? inject(HTTP_TRANSFER_CACHE_ORIGIN_MAP, { optional: true }) : null;
  try {
    return (options.readCache as ReadCache)(req, options, state, originMap) != null;
  } catch {
    // A lookup that fails tells nothing: the request goes through the limiter, as any other.
    return false;
  }
}
