/**
 * Limiters through Angular's dependency injection: {@link provideRateLimiting} creates them in an
 * environment injector (per application in the browser, per request under SSR), the
 * {@link RATE_LIMITERS} token hands them out, {@link rateLimitingInterceptor} paces `HttpClient`
 * with them, and TransferState carries the server's last readings to the browser's limiters.
 * Re-exported by `rx-ratelimit/angular`.
 *
 * @packageDocumentation
 */
import type { HttpInterceptorFn } from '@angular/common/http';
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
import type { SharedLimiter } from '../core/registry.js';
import {
  buildInterceptor,
  recordedResponses,
  replayResponses,
  type RateLimitInterceptorOptions,
  type RecordedResponse,
} from './angularInterceptor.js';
import { isLimiter } from './shared.js';

/**
 * Makes the limiter of one API. Runs in an injection context (it may `inject()` the signed-in
 * user's token, Angular's `REQUEST`…), once per environment injector that provides it: once per
 * application in a browser, once per request under SSR. It may return a `Limiter`, or what
 * `shareLimiter` returns (released when the injector is destroyed: the end of the request).
 */
export type LimiterFactory = () => Limiter | SharedLimiter;

/** Options of {@link provideRateLimiting}. */
export interface RateLimitingOptions {
  /**
   * Limiter factories by host (`'api.pipedrive.com'`, or with the port, `'localhost:8080'`,
   * tried first). A host absent from the record is not limited.
   */
  readonly limiters: Readonly<Record<string, LimiterFactory>>;
  /**
   * Carry each limiter's last readings from the server render to the browser (TransferState),
   * so that the browser's limiter starts from what the server knew, not from a cold guess.
   * Readings are replayed only into a limiter of the same provider and key label. @default true
   */
  readonly transferState?: boolean;
}

/** The limiters of the current environment injector, by host (lower case). */
export const RATE_LIMITERS = new InjectionToken<ReadonlyMap<string, Limiter>>('rx-ratelimit RATE_LIMITERS');

/** What one host's limiter carries from the server to the browser. */
interface Carried {
  readonly provider: string;
  readonly key: string;
  readonly responses: readonly RecordedResponse[];
}

const TRANSFER_KEY = makeStateKey<Record<string, Carried>>('rx-ratelimit');

/**
 * Environment providers that create the app's limiters through DI, for `bootstrapApplication`'s
 * (or a route's) providers. Each factory runs once per injector, when a limiter is first needed;
 * under SSR that is once per request, so a limiter keyed by the user is never shared with
 * another user's render. Use with {@link rateLimitingInterceptor}.
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
  if (typeof options !== 'object' || options === null || typeof options.limiters !== 'object' || !options.limiters) {
    throw new TypeError('provideRateLimiting: options must be an object with `limiters`, factories by host');
  }
  const factories = new Map<string, LimiterFactory>();
  for (const [host, factory] of Object.entries(options.limiters)) {
    if (host.includes('/')) {
      throw new TypeError(
        `provideRateLimiting: option \`limiters\` is keyed by host ("api.example.com" or "localhost:8080"), got "${host}"`,
      );
    }
    if (typeof factory !== 'function') {
      throw new TypeError(`provideRateLimiting: option \`limiters\` must map hosts to factories; "${host}" does not`);
    }
    factories.set(host.toLowerCase(), factory);
  }
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
  ]);
}

/** On the server, writes the limiters' readings into the page; in the browser, replays them once. */
function carry(limiters: ReadonlyMap<string, Limiter>): void {
  const state = inject(TransferState, { optional: true });
  if (!state) return;
  if (inject(PLATFORM_ID) === 'server') {
    state.onSerialize(TRANSFER_KEY, () => {
      const out: Record<string, Carried> = {};
      for (const [host, limiter] of limiters) {
        const responses = recordedResponses(limiter);
        if (responses.length > 0) out[host] = { provider: limiter.provider.name, key: limiter.key, responses };
      }
      return out;
    });
    return;
  }
  const carried = state.get(TRANSFER_KEY, null);
  if (!carried || typeof carried !== 'object') return;
  state.remove(TRANSFER_KEY);
  for (const [host, limiter] of limiters) {
    const c = Object.hasOwn(carried, host) ? carried[host] : undefined;
    // Another user's (or provider's) readings are not this limiter's budget.
    if (!c || c.provider !== limiter.provider.name || c.key !== limiter.key || !Array.isArray(c.responses)) continue;
    replayResponses(limiter, c.responses.filter(isRecorded).slice(-8));
  }
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
  const limiters = inject(RATE_LIMITERS, { optional: true });
  if (!limiters) throw new Error('injectLimiter: no limiters here; add provideRateLimiting(...) to the providers');
  const limiter = limiters.get(host.toLowerCase());
  if (!limiter) {
    throw new Error(
      `injectLimiter: provideRateLimiting has no limiter for "${host}" (it has ${[...limiters.keys()].join(', ') || 'none'})`,
    );
  }
  return limiter;
}

/**
 * The interceptor for limiters from {@link provideRateLimiting}: each request goes through the
 * limiter of its host in the current injector (see {@link rateLimitInterceptor} for what it does,
 * and for `options`). Requests to other hosts pass through untouched.
 */
export function rateLimitingInterceptor(
  options: Omit<RateLimitInterceptorOptions, 'limiters'> = {},
): HttpInterceptorFn {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('rateLimitingInterceptor: options must be an object');
  }
  return buildInterceptor(
    'rateLimitingInterceptor',
    options,
    (_req, url) => {
      if (!url) return undefined;
      const limiters = inject(RATE_LIMITERS, { optional: true });
      if (!limiters) {
        throw new Error('rateLimitingInterceptor: no limiters here; add provideRateLimiting(...) to the providers');
      }
      return limiters.get(url.host) ?? limiters.get(url.hostname);
    },
    true,
  );
}
