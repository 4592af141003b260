/**
 * `rx-ratelimit/nestjs`: a dynamic module that registers limiters by name, makes them
 * injectable, and paces `@nestjs/axios` `HttpService` calls through them.
 *
 * ```ts
 * import { Module } from '@nestjs/common';
 * import { HttpModule } from '@nestjs/axios';
 * import { providers } from 'rx-ratelimit';
 * import { RateLimitModule } from 'rx-ratelimit/nestjs';
 *
 * const token = process.env['API_TOKEN'] ?? '';
 *
 * @Module({
 *   imports: [
 *     HttpModule,
 *     RateLimitModule.forRoot({
 *       isGlobal: true,
 *       limiters: { pipedrive: { provider: providers.pipedrive({ plan: 'advanced' }), key: token } },
 *     }),
 *   ],
 * })
 * export class AppModule {}
 * ```
 *
 * Nothing here needs `emitDecoratorMetadata`: every provider is a factory with an explicit
 * `inject` list. Only this module imports Nest (`@nestjs/common`); `@nestjs/axios` is used
 * through its `HttpService` type only.
 *
 * @packageDocumentation
 */
import {
  ConfigurableModuleBuilder,
  Inject,
  type ConfigurableModuleAsyncOptions,
  type DynamicModule,
  type OnApplicationShutdown,
  type Provider as NestProvider,
} from '@nestjs/common';
import type { HttpService } from '@nestjs/axios';
import type { AxiosRequestConfig, AxiosResponse } from 'axios';
import { combineLatest, defer, map, Observable, of } from 'rxjs';
import type { Limiter } from '../core/limiter.js';
import { createLimiterPool, LimiterPool, type LimiterPoolOptions } from '../core/pool.js';
import { shareLimiter, type SharedLimiter } from '../core/registry.js';
import type { LimiterOptions } from '../core/options.js';
import type { RequestInfo } from '../core/request.js';
import type { LimiterSnapshot } from '../core/state.js';
import { rateLimit, type RateLimitConfig } from '../operators/rateLimit.js';
import { captureRaw, withIdempotencyKey } from './axios.js';
// Re-exported so that this entry's declarations load rx-ratelimit/axios's: its augmentation adds
// `rateLimit` (priority, idempotencyKey…) to AxiosRequestConfig, which HttpService calls take.
export type { AxiosRequestRateLimit } from './axios.js';
export {
  RateLimitExceptionFilter,
  type RateLimitExceptionBody,
  type RateLimitExceptionFilterOptions,
} from './nestjsFilter.js';
import {
  axiosRequestHeaders,
  checkPriority,
  idempotencyKeyOf,
  isLimiter,
  listenAbort,
  requestInfo,
  resolveUrl,
} from './common.js';

// ---------------------------------------------------------------------------------------------
// Options and tokens

/** A limiter to register: options for `createLimiter`, or a limiter you created yourself. */
export type LimiterDefinition = LimiterOptions | Limiter;

/**
 * Options of {@link RateLimitModule.forRoot}, and what the `forRootAsync` factory returns.
 *
 * ```ts
 * import { providers } from 'rx-ratelimit';
 * import type { RateLimitModuleOptions } from 'rx-ratelimit/nestjs';
 *
 * const options: RateLimitModuleOptions = {
 *   limiters: { procore: { provider: providers.procore(), key: 'company-42' } },
 * };
 * ```
 */
export interface RateLimitModuleOptions {
  /** One limiter per name (one per credential and provider): options, or a `Limiter`. */
  readonly limiters?: Readonly<Record<string, LimiterDefinition>>;
  /**
   * One pool of limiters per name, for many tenants of one provider (a limiter per customer
   * token, made on first use, evicted when idle): options for `createLimiterPool`, or a pool.
   * Inject it with `@InjectLimiterPool(name)`; `registry.tenantHttp(httpService, name)` paces
   * each call by the limiter of the credential it carries.
   */
  readonly pools?: Readonly<Record<string, LimiterPoolOptions | LimiterPool>>;
}

/**
 * Settings of the module itself, accepted by both `forRoot` and `forRootAsync` next to the
 * options.
 */
export interface RateLimitModuleExtras {
  /** Register the module globally: every module can inject its limiters. @default false */
  readonly isGlobal?: boolean;
  /**
   * Names to make injectable with {@link getLimiterToken} / {@link InjectLimiter}. `forRoot`
   * adds the keys of `limiters` itself; `forRootAsync` cannot know them before its factory
   * runs, so list them here (every limiter stays reachable through {@link LimiterRegistry.get}).
   */
  readonly limiterNames?: readonly string[];
}

/**
 * The injection token of the limiter registered under `name`.
 *
 * ```ts
 * import { getLimiterToken } from 'rx-ratelimit/nestjs';
 * const token: string = getLimiterToken('pipedrive'); // 'rx-ratelimit:limiter:pipedrive'
 * ```
 */
export function getLimiterToken(name: string): string {
  return `rx-ratelimit:limiter:${name}`;
}

/**
 * The injection token of the rate-limited `HttpService` that {@link RateLimitModule.forFeature}
 * provides for `name` (when given `http`).
 *
 * ```ts
 * import { getRateLimitedHttpToken } from 'rx-ratelimit/nestjs';
 * const token: string = getRateLimitedHttpToken('pipedrive'); // 'rx-ratelimit:http:pipedrive'
 * ```
 */
export function getRateLimitedHttpToken(name: string): string {
  return `rx-ratelimit:http:${name}`;
}

/**
 * Injects the limiter registered under `name`: `@InjectLimiter('pipedrive') limiter: Limiter`.
 * Shorthand for `@Inject(getLimiterToken(name))`. Parameter decorators need
 * `experimentalDecorators` in the app's tsconfig (as every Nest app has); without them, use
 * factory providers with `inject: [getLimiterToken(name)]`.
 */
export function InjectLimiter(name: string): PropertyDecorator & ParameterDecorator {
  return Inject(getLimiterToken(name));
}

/**
 * Injects the limiter pool registered under `name` (`pools` of `forRoot`):
 * `@InjectLimiterPool('pipedrive') pool: LimiterPool`. Pools share the limiters' tokens
 * ({@link getLimiterToken}), so a name is either a limiter or a pool.
 */
export function InjectLimiterPool(name: string): PropertyDecorator & ParameterDecorator {
  return Inject(getLimiterToken(name));
}

// ---------------------------------------------------------------------------------------------
// The registry

/**
 * Every limiter the module registered, by name. Inject it by its class
 * (`inject: [LimiterRegistry]`, or as a constructor parameter with decorator metadata).
 *
 * ```ts
 * import type { LimiterRegistry } from 'rx-ratelimit/nestjs';
 * declare const registry: LimiterRegistry;
 * registry.snapshot$().subscribe((all) => console.log(all['pipedrive']?.buckets));
 * ```
 */
export class LimiterRegistry implements OnApplicationShutdown {
  private readonly limiters = new Map<string, Limiter>();
  private readonly pools = new Map<string, LimiterPool>();
  /** Limiters this registry created from options (held in the process-wide share). */
  private readonly held: SharedLimiter[] = [];
  /** Pools this registry created from options (closed with it). */
  private readonly ownPools: LimiterPool[] = [];

  /** Made by {@link RateLimitModule} from its options; inject it rather than constructing it. */
  constructor(options: RateLimitModuleOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('RateLimitModule: options must be an object with `limiters`');
    }
    const defs: unknown = options.limiters ?? {};
    if (typeof defs !== 'object' || defs === null || Array.isArray(defs)) {
      throw new TypeError('RateLimitModule: `limiters` must be an object of limiters or limiter options by name');
    }
    const poolDefs: unknown = options.pools ?? {};
    if (typeof poolDefs !== 'object' || poolDefs === null || Array.isArray(poolDefs)) {
      throw new TypeError('RateLimitModule: `pools` must be an object of limiter pools or pool options by name');
    }
    try {
      for (const [name, def] of Object.entries(poolDefs as Record<string, LimiterPoolOptions | LimiterPool>)) {
        if (Object.hasOwn(defs, name)) {
          throw new TypeError(`RateLimitModule: "${name}" names both a limiter and a pool; give each its own name`);
        }
        if (def instanceof LimiterPool) {
          this.pools.set(name, def);
          continue;
        }
        const pool = toPool(name, def);
        this.ownPools.push(pool);
        this.pools.set(name, pool);
      }
      for (const [name, def] of Object.entries(defs as Record<string, LimiterDefinition>)) {
        if (isLimiter(def)) {
          this.limiters.set(name, def);
          continue;
        }
        const hold = toShared(name, def);
        this.held.push(hold);
        this.limiters.set(name, hold.limiter);
      }
    } catch (error) {
      void this.close();
      throw error;
    }
  }

  /**
   * Lets go of the limiters this registry created from options: the last registration of a
   * provider + key in the process closes it (a Redis store's connections included), so
   * `app.close()` leaves nothing open. Limiters you passed in as objects are yours to close.
   * Nest calls it on shutdown (`OnApplicationShutdown`).
   */
  async close(): Promise<void> {
    const held = this.held.splice(0);
    const pools = this.ownPools.splice(0);
    await Promise.all([...held.map((h) => h.release()), ...pools.map((p) => p.close())]);
  }

  /** Nest's shutdown hook: {@link LimiterRegistry.close}. */
  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  /** The limiter registered under `name`; throws an `Error` naming the known ones if none is. */
  get(name: string): Limiter {
    const limiter = this.limiters.get(name);
    if (!limiter) {
      const known = [...this.limiters.keys()].map((n) => `"${n}"`).join(', ') || 'none';
      throw new Error(`RateLimitModule: no limiter named "${name}" (registered: ${known})`);
    }
    return limiter;
  }

  /** Is a limiter registered under `name`? */
  has(name: string): boolean {
    return this.limiters.has(name);
  }

  /** The limiter pool registered under `name`; throws an `Error` naming the known ones if none is. */
  pool(name: string): LimiterPool {
    const pool = this.pools.get(name);
    if (!pool) {
      const known = [...this.pools.keys()].map((n) => `"${n}"`).join(', ') || 'none';
      throw new Error(`RateLimitModule: no limiter pool named "${name}" (registered: ${known})`);
    }
    return pool;
  }

  /** Is a limiter pool registered under `name`? */
  hasPool(name: string): boolean {
    return this.pools.has(name);
  }

  /** The limiter or the pool registered under `name` (what its injection token gives). */
  resolve(name: string): Limiter | LimiterPool {
    return this.pools.get(name) ?? this.get(name);
  }

  /** Names of the registered limiters, in registration order. */
  names(): string[] {
    return [...this.limiters.keys()];
  }

  /**
   * The current state of every limiter, by name, computed now. A pool's live limiters are
   * listed as `<pool name>/<key label>` (e.g. `pipedrive/key_3f2a…`): tenants added at runtime
   * appear as they come, evicted ones go; never a key.
   */
  snapshot(): Record<string, LimiterSnapshot> {
    const out: Record<string, LimiterSnapshot> = {};
    for (const [name, limiter] of this.limiters) out[name] = limiter.snapshot;
    for (const [name, pool] of this.pools) for (const s of pool.snapshot().limiters) out[`${name}/${s.key}`] = s;
    return out;
  }

  /**
   * The state of every limiter, by name: emits at once, then whenever any of them changes.
   * Ready to serve as server-sent events (`@Sse()`) or to log.
   */
  snapshot$(): Observable<Record<string, LimiterSnapshot>> {
    const names = this.names();
    const pools = [...this.pools.entries()];
    if (names.length === 0 && pools.length === 0) return of({});
    return combineLatest([
      combineLatest(names.map((name) => this.get(name).state$)).pipe(startWithEmpty(names.length)),
      combineLatest(pools.map(([, pool]) => pool.state$)).pipe(startWithEmpty(pools.length)),
    ]).pipe(
      map(([states, poolStates]) => {
        const out: Record<string, LimiterSnapshot> = {};
        names.forEach((name, i) => (out[name] = states[i] as LimiterSnapshot));
        pools.forEach(([name], i) => {
          for (const s of poolStates[i]?.limiters ?? []) out[`${name}/${s.key}`] = s;
        });
        return out;
      }),
    );
  }

  /**
   * `httpService`'s calls paced by the limiter registered under `name`: see
   * {@link rateLimitedHttp}.
   */
  http(httpService: HttpService, name: string, options: RateLimitedHttpOptions = {}): RateLimitedHttp {
    return rateLimitedHttp(httpService, this.get(name), options);
  }

  /**
   * `httpService` paced per tenant by the pool registered under `name`: each call goes through
   * the pool's limiter for the credential it carries (see {@link tenantHttp}).
   */
  tenantHttp(httpService: HttpService, name: string, options: TenantHttpOptions = {}): TenantHttp {
    return tenantHttp(httpService, this.pool(name), options);
  }
}

/** `combineLatest([])` never emits: an empty list of sources stands for one empty emission. */
function startWithEmpty<T>(count: number): (source: Observable<T[]>) => Observable<T[]> {
  return (source) => (count === 0 ? of([]) : source);
}

function toPool(name: string, def: LimiterPoolOptions): LimiterPool {
  try {
    return createLimiterPool(def);
  } catch (error) {
    if (error instanceof TypeError) {
      throw new TypeError(`RateLimitModule: pool "${name}": ${error.message}`, { cause: error });
    }
    throw error;
  }
}

function toShared(name: string, def: LimiterOptions): SharedLimiter {
  try {
    return shareLimiter(def, `RateLimitModule limiter "${name}"`);
  } catch (error) {
    if (error instanceof TypeError) {
      throw new TypeError(`RateLimitModule: limiter "${name}": ${error.message}`, { cause: error });
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// The module

/** The injection token of the module's options. */
export const RATE_LIMIT_MODULE_OPTIONS = 'RATE_LIMIT_MODULE_OPTIONS';

const builder = new ConfigurableModuleBuilder<RateLimitModuleOptions>({
  optionsInjectionToken: RATE_LIMIT_MODULE_OPTIONS,
})
  .setClassMethodName('forRoot')
  .setExtras<RateLimitModuleExtras>({ isGlobal: false, limiterNames: [] }, (definition, extras) => {
    const names = [...new Set(extras.limiterNames ?? [])];
    const byName: NestProvider[] = names.map((name) => ({
      provide: getLimiterToken(name),
      useFactory: (registry: LimiterRegistry) => registry.resolve(name),
      inject: [LimiterRegistry],
    }));
    return {
      ...definition,
      global: extras.isGlobal ?? false,
      providers: [
        ...(definition.providers ?? []),
        {
          provide: LimiterRegistry,
          useFactory: (o: RateLimitModuleOptions) => new LimiterRegistry(o),
          inject: [RATE_LIMIT_MODULE_OPTIONS],
        },
        ...byName,
      ],
      exports: [...(definition.exports ?? []), LimiterRegistry, ...names.map(getLimiterToken)],
    };
  });

const { ConfigurableModuleClass } = builder.build();

/** What {@link RateLimitModule.forRoot} accepts: the options and the module's extras. */
export type RateLimitModuleForRootOptions = RateLimitModuleOptions & RateLimitModuleExtras;
/**
 * What {@link RateLimitModule.forRootAsync} accepts: `useFactory` + `inject` + `imports`
 * (or `useClass` / `useExisting` with a `create()` method), and the module's extras.
 */
export type RateLimitModuleAsyncOptions = ConfigurableModuleAsyncOptions<RateLimitModuleOptions> &
  RateLimitModuleExtras;

/**
 * Registers limiters by name. Provides and exports {@link LimiterRegistry} and, for each name,
 * the limiter under {@link getLimiterToken}`(name)`.
 *
 * ```ts
 * import { providers } from 'rx-ratelimit';
 * import { RateLimitModule } from 'rx-ratelimit/nestjs';
 * // Your own config module (or @nestjs/config's):
 * declare class ConfigModule {}
 * declare class ConfigService {
 *   get(name: string): string;
 * }
 *
 * RateLimitModule.forRootAsync({
 *   imports: [ConfigModule],
 *   inject: [ConfigService],
 *   useFactory: (config: ConfigService) => ({
 *     limiters: { procore: { provider: providers.procore(), key: config.get('PROCORE_TOKEN') } },
 *   }),
 *   limiterNames: ['procore'],
 *   isGlobal: true,
 * });
 * ```
 */
export class RateLimitModule extends ConfigurableModuleClass {
  /** Registers the given limiters; each name is injectable with {@link getLimiterToken}. */
  static override forRoot(options: RateLimitModuleForRootOptions): DynamicModule {
    const names = [
      ...(options.limiterNames ?? []),
      ...Object.keys((options as Partial<RateLimitModuleOptions>).limiters ?? {}),
      ...Object.keys((options as Partial<RateLimitModuleOptions>).pools ?? {}),
    ];
    return super.forRoot({ ...options, limiterNames: names });
  }

  /**
   * Makes limiters that the root module registered injectable in a feature module, by name, and
   * optionally a rate-limited `HttpService` for each under {@link getRateLimitedHttpToken}. It
   * registers nothing new, so feature modules never create a second limiter for a token: call
   * `forRoot` (or `forRootAsync`) once, with `isGlobal: true`, in the root module. A name the
   * root module did not register fails at bootstrap with an error listing those it did.
   *
   * ```ts
   * import { HttpModule, HttpService } from '@nestjs/axios';
   * import { Module } from '@nestjs/common';
   * import { RateLimitModule } from 'rx-ratelimit/nestjs';
   *
   * @Module({
   *   imports: [
   *     RateLimitModule.forFeature(['pipedrive'], {
   *       imports: [HttpModule.register({ baseURL: 'https://api.pipedrive.com' })],
   *       http: HttpService,
   *     }),
   *   ],
   * })
   * export class DealsModule {}
   * ```
   */
  static forFeature(names: readonly string[], options: RateLimitFeatureOptions = {}): DynamicModule {
    if (!Array.isArray(names) || names.some((n) => typeof n !== 'string')) {
      throw new TypeError('RateLimitModule.forFeature: `names` must be an array of limiter names');
    }
    const unique = [...new Set(names)];
    const limiters: NestProvider[] = unique.map((name) => ({
      provide: getLimiterToken(name),
      useFactory: (registry: LimiterRegistry) => registry.resolve(name),
      inject: [LimiterRegistry],
    }));
    const http = options.http;
    const clients: NestProvider[] =
      http === undefined
        ? []
        : unique.map((name) => ({
            provide: getRateLimitedHttpToken(name),
            useFactory: (service: HttpService, registry: LimiterRegistry) =>
              registry.hasPool(name)
                ? registry.tenantHttp(service, name, options.httpOptions ?? {})
                : registry.http(service, name, options.httpOptions ?? {}),
            inject: [http, LimiterRegistry],
          }));
    return {
      module: RateLimitFeatureModule,
      imports: [...(options.imports ?? [])],
      providers: [...limiters, ...clients],
      exports: [...unique.map(getLimiterToken), ...(http === undefined ? [] : unique.map(getRateLimitedHttpToken))],
    };
  }

  /**
   * Registers the limiters a factory returns (`useFactory`, `inject`, `imports`). Names listed
   * in `limiterNames` are injectable by token; every limiter is reachable through the registry.
   */
  static override forRootAsync(options: RateLimitModuleAsyncOptions): DynamicModule {
    return super.forRootAsync(options);
  }
}

/** The module {@link RateLimitModule.forFeature} returns. */
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
export class RateLimitFeatureModule {}

/** Options of {@link RateLimitModule.forFeature}. */
export interface RateLimitFeatureOptions {
  /** Modules the feature's providers need: the `HttpModule` whose `HttpService` to pace. */
  readonly imports?: NonNullable<DynamicModule['imports']>;
  /**
   * The `HttpService` class (from `@nestjs/axios`, passed in so that this module does not load
   * it): provides, per name, `registry.http(httpService, name)` under
   * {@link getRateLimitedHttpToken}.
   */
  readonly http?: HttpServiceClass;
  /** Settings of those rate-limited services (`maxRetries`, `priority`…; `key` for a pool's). */
  readonly httpOptions?: TenantHttpOptions;
}

// ---------------------------------------------------------------------------------------------
// HttpService

/** The `HttpService` class of `@nestjs/axios` (or a subclass), as {@link RateLimitFeatureOptions.http} takes it. */
export type HttpServiceClass = abstract new (...args: never[]) => HttpService;

/**
 * Settings of {@link rateLimitedHttp}: those of the `rateLimit` operator (`maxRetries`,
 * `retryNonIdempotent`, `reserve`…) and a default priority. Per-request settings go in the
 * axios config's `rateLimit` field (`priority`, `idempotencyKey`, `retry`, `skip`), as with
 * `rx-ratelimit/axios`.
 */
export interface RateLimitedHttpOptions extends RateLimitConfig {
  /** Priority of requests that do not set `config.rateLimit.priority`. @default 0 */
  readonly priority?: number;
}

/**
 * The methods of `HttpService`, each returning `HttpService`'s own observable passed through
 * `rateLimit`. Cold like `HttpService`'s: each subscription waits for a permit, then sends.
 */
export interface RateLimitedHttp {
  /** The limiter every call goes through. */
  readonly limiter: Limiter;
  /** The wrapped service. */
  readonly httpService: HttpService;
  /** `HttpService.request`, paced (the method comes from `config.method`). */
  request<T = unknown>(config: AxiosRequestConfig): Observable<AxiosResponse<T>>;
  /** `HttpService.get`, paced; identical GETs in flight at once may share one request (`dedupe`). */
  get<T = unknown>(url: string, config?: AxiosRequestConfig): Observable<AxiosResponse<T>>;
  /** `HttpService.delete`, paced. */
  delete<T = unknown>(url: string, config?: AxiosRequestConfig): Observable<AxiosResponse<T>>;
  /** `HttpService.head`, paced. */
  head<T = unknown>(url: string, config?: AxiosRequestConfig): Observable<AxiosResponse<T>>;
  /** `HttpService.post`, paced; retried after a 429 only with an idempotency key or `retryNonIdempotent`. */
  post<T = unknown, D = unknown>(url: string, data?: D, config?: AxiosRequestConfig<D>): Observable<AxiosResponse<T>>;
  /** `HttpService.put`, paced. */
  put<T = unknown, D = unknown>(url: string, data?: D, config?: AxiosRequestConfig<D>): Observable<AxiosResponse<T>>;
  /** `HttpService.patch`, paced; retried after a 429 only with an idempotency key or `retryNonIdempotent`. */
  patch<T = unknown, D = unknown>(url: string, data?: D, config?: AxiosRequestConfig<D>): Observable<AxiosResponse<T>>;
}

/**
 * Wraps `@nestjs/axios`'s `HttpService` so that every call goes through `rateLimit(limiter,
 * { method, url })`: the daily quota guard, the throttle (wait for a permit, then subscribe to
 * `HttpService`'s observable) and the retry of 429s on requests safe to repeat. All calls
 * through the same limiter, from every service, share one budget.
 *
 * The limiter sees the full URL (`httpService.axiosRef.getUri(config)`: base URL and params),
 * the method, the priority, an `Idempotency-Key` header and the request's headers. Identical
 * GETs in flight share one response (`rateLimit`'s dedupe; with the limiter's `cache`, a fresh
 * one is served from memory): same full URL and the same headers (defaults and config, `auth`,
 * `withCredentials`, `responseType`), so requests sent as different users never share. On an
 * `HttpService` whose axios instance has request interceptors of the app's (they may add an
 * `Authorization`), nothing is shared unless `config.rateLimit.shareKey` says so. The config
 * passed on to `HttpService` carries `rateLimit: { skip: true }`, so interceptors installed by
 * `attachRateLimiter` on the same axios instance do not gate it twice. An `AbortSignal` in the
 * config aborts a request that is still queued too: it then ends with axios's `CanceledError`,
 * nothing sent. A `config.rateLimit.skip` request goes straight to `HttpService`.
 *
 * ```ts
 * import type { HttpService } from '@nestjs/axios';
 * import { firstValueFrom } from 'rxjs';
 * import type { Limiter } from 'rx-ratelimit';
 * import { rateLimitedHttp } from 'rx-ratelimit/nestjs';
 *
 * declare const httpService: HttpService;
 * declare const limiter: Limiter;
 * const api = rateLimitedHttp(httpService, limiter, { maxRetries: 3 });
 * const res = await firstValueFrom(api.get<{ id: number }>('https://api.example.com/v1/deals/1'));
 * ```
 */
export function rateLimitedHttp(
  httpService: HttpService,
  limiter: Limiter,
  options: RateLimitedHttpOptions = {},
): RateLimitedHttp {
  return { limiter, ...pacedHttp('rateLimitedHttp', httpService, () => limiter, options) };
}

/** Options of {@link tenantHttp}. */
export interface TenantHttpOptions extends RateLimitedHttpOptions {
  /**
   * The pool key of a call: the credential it is sent with, so the budget paced is the one the
   * provider counts, whichever tenant the code meant. Runs for each call, with the config as
   * passed (the instance's default headers are not in it). A call for which it returns
   * `undefined` or `''` fails with a `TypeError` before anything is sent.
   * @default the `Authorization` header, else `x-api-token`, else the `api_token` query parameter
   */
  readonly key?: (config: AxiosRequestConfig) => string | undefined;
}

/** `HttpService` paced per tenant: each call by the pool's limiter for its credential. */
export interface TenantHttp extends Omit<RateLimitedHttp, 'limiter'> {
  /** The pool whose limiters pace the calls. */
  readonly pool: LimiterPool;
}

/**
 * Wraps `HttpService` for many tenants: each call goes through `pool.get(key)`, where `key`
 * is the credential the call carries (`options.key` to read it elsewhere), as
 * {@link rateLimitedHttp} does for one limiter. The tenant of an incoming request (a header,
 * the JWT's subject, a CLS value) picks which credential your code sends; the limiter follows
 * the credential actually sent, so two tenants sharing one token share one budget, and a
 * tenant first seen at runtime gets its limiter on its first call.
 *
 * ```ts
 * import type { HttpService } from '@nestjs/axios';
 * import { firstValueFrom } from 'rxjs';
 * import { createLimiterPool, providers } from 'rx-ratelimit';
 * import { tenantHttp } from 'rx-ratelimit/nestjs';
 *
 * declare const httpService: HttpService;
 * declare const tenantToken: string;
 * const pool = createLimiterPool({ provider: providers.pipedrive({ plan: 'advanced' }) });
 * const api = tenantHttp(httpService, pool);
 * const res = await firstValueFrom(
 *   api.get('https://api.pipedrive.com/v1/deals', { headers: { 'x-api-token': tenantToken } }),
 * );
 * ```
 */
export function tenantHttp(httpService: HttpService, pool: LimiterPool, options: TenantHttpOptions = {}): TenantHttp {
  if (!(pool instanceof LimiterPool))
    throw new TypeError('tenantHttp: `pool` must be a LimiterPool (createLimiterPool)');
  const { key, ...rest } = options;
  if (key !== undefined && typeof key !== 'function')
    throw new TypeError('tenantHttp: option `key` must be a function');
  const keyOf = key ?? credentialOf;
  const pick = (cfg: AxiosRequestConfig): Limiter => {
    const k = keyOf(cfg);
    if (typeof k !== 'string' || k === '') {
      throw new TypeError(
        `tenantHttp: no tenant key for ${(cfg.method ?? 'get').toUpperCase()} ${cfg.url ?? ''}`.trimEnd() +
          (key ? ': options.key returned none' : ': it carries no Authorization, x-api-token or api_token'),
      );
    }
    return pool.get(k);
  };
  return { pool, ...pacedHttp('tenantHttp', httpService, pick, rest) };
}

/** The credential a call carries: `Authorization`, else `x-api-token`, else `api_token` in its params or URL. */
function credentialOf(config: AxiosRequestConfig): string | undefined {
  const headers = config.headers as unknown;
  const header = (name: string): string | undefined => {
    if (typeof headers !== 'object' || headers === null) return undefined;
    const get = (headers as { get?: unknown }).get;
    if (typeof get === 'function') {
      const v: unknown = (get as (n: string) => unknown).call(headers, name);
      return typeof v === 'string' && v !== '' ? v : undefined;
    }
    for (const [k, v] of Object.entries(headers))
      if (k.toLowerCase() === name && typeof v === 'string' && v !== '') return v;
    return undefined;
  };
  const fromHeaders = header('authorization') ?? header('x-api-token');
  if (fromHeaders !== undefined) return fromHeaders;
  const params = config.params as unknown;
  if (typeof params === 'object' && params !== null) {
    const v =
      params instanceof URLSearchParams ? params.get('api_token') : (params as Record<string, unknown>)['api_token'];
    if (typeof v === 'string' && v !== '') return v;
  }
  const url = config.url;
  if (typeof url === 'string' && url.includes('api_token=')) {
    try {
      const v = new URL(url, 'http://localhost').searchParams.get('api_token');
      if (v) return v;
    } catch {
      // Not a URL: no credential in it.
    }
  }
  return undefined;
}

/** The methods of a paced `HttpService`, each call's limiter chosen by `pick`. */
function pacedHttp(
  where: string,
  httpService: HttpService,
  pick: (config: AxiosRequestConfig) => Limiter,
  options: RateLimitedHttpOptions,
): Omit<RateLimitedHttp, 'limiter'> {
  const { priority: defaultPriority, ...config } = options;
  checkPriority(where, defaultPriority);

  const gate = <T>(
    method: string,
    cfg: AxiosRequestConfig,
    send: (c: AxiosRequestConfig) => Observable<AxiosResponse<T>>,
  ): Observable<AxiosResponse<T>> => {
    if (cfg.rateLimit?.skip) return send(cfg);
    // The limiter is chosen at subscription (a pool's may have been evicted since the call), and
    // a call with no tenant key errors the observable, as any failed request does.
    return defer(() => gateWith(pick(cfg), method, cfg, send));
  };

  const gateWith = <T>(
    limiter: Limiter,
    method: string,
    cfg: AxiosRequestConfig,
    send: (c: AxiosRequestConfig) => Observable<AxiosResponse<T>>,
  ): Observable<AxiosResponse<T>> => {
    const info = infoOf(httpService, method, cfg, defaultPriority);
    const headers = idempotencyHeaders(httpService, method, cfg);
    const passOn: AxiosRequestConfig = {
      ...cfg,
      ...(headers === undefined ? {} : { headers }),
      rateLimit: { ...cfg.rateLimit, skip: true },
    };
    // The limiter reads the raw answer of the transport: interceptors on `axiosRef` that
    // resolve with the body or reject with it cannot hide its status and headers.
    const gated$ = defer(() => {
      const capture = captureRaw(httpService.axiosRef as HttpService['axiosRef'] | undefined, passOn);
      return new Observable<AxiosResponse<T>>((subscriber) => {
        capture.begin();
        return send(capture.config).subscribe(subscriber);
      }).pipe(rateLimit<AxiosResponse<T>>(limiter, info, { extractResponse: capture.extract, ...config }));
    });
    const signal = cfg.signal;
    if (!signal) return gated$;
    return new Observable<AxiosResponse<T>>((subscriber) => {
      const forward = {
        next: (value: AxiosResponse<T>) => subscriber.next(value),
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      };
      // Already aborted, or aborted while queued or waiting to retry: let axios end it with
      // its CanceledError (it sends nothing with an aborted signal).
      if (signal.aborted) return send(passOn).subscribe(forward);
      let inner = gated$.subscribe(forward);
      const stop = listenAbort(signal, () => {
        inner.unsubscribe();
        inner = send(passOn).subscribe(forward);
      });
      return () => {
        stop();
        inner.unsubscribe();
      };
    });
  };

  return {
    httpService,
    request: <T>(cfg: AxiosRequestConfig) =>
      gate<T>(cfg.method ?? httpService.axiosRef?.defaults?.method ?? 'get', cfg, (c) => httpService.request<T>(c)),
    get: <T>(url: string, cfg: AxiosRequestConfig = {}) =>
      gate<T>('get', { ...cfg, url }, (c) => httpService.get<T>(url, strip(c))),
    delete: <T>(url: string, cfg: AxiosRequestConfig = {}) =>
      gate<T>('delete', { ...cfg, url }, (c) => httpService.delete<T>(url, strip(c))),
    head: <T>(url: string, cfg: AxiosRequestConfig = {}) =>
      gate<T>('head', { ...cfg, url }, (c) => httpService.head<T>(url, strip(c))),
    post: <T, D>(url: string, data?: D, cfg: AxiosRequestConfig<D> = {}) =>
      gate<T>('post', { ...cfg, url }, (c) => httpService.post<T, D>(url, data, strip(c) as AxiosRequestConfig<D>)),
    put: <T, D>(url: string, data?: D, cfg: AxiosRequestConfig<D> = {}) =>
      gate<T>('put', { ...cfg, url }, (c) => httpService.put<T, D>(url, data, strip(c) as AxiosRequestConfig<D>)),
    patch: <T, D>(url: string, data?: D, cfg: AxiosRequestConfig<D> = {}) =>
      gate<T>('patch', { ...cfg, url }, (c) => httpService.patch<T, D>(url, data, strip(c) as AxiosRequestConfig<D>)),
  };
}

/** The request's headers with `Idempotency-Key` from `rateLimit.idempotencyKey`, unless it has one. */
function idempotencyHeaders(
  httpService: HttpService,
  method: string,
  config: AxiosRequestConfig,
): AxiosRequestConfig['headers'] {
  const m = method.toLowerCase();
  const defaultHeaders = (httpService.axiosRef as HttpService['axiosRef'] | undefined)?.defaults?.headers as unknown as
    Record<string, unknown> | undefined;
  return withIdempotencyKey(
    config.headers,
    config.rateLimit?.idempotencyKey,
    defaultHeaders?.[m],
    defaultHeaders?.['common'],
    defaultHeaders,
  );
}

/** The config of a shorthand call, without the `url` added to compute the limiter's info. */
function strip(config: AxiosRequestConfig): AxiosRequestConfig {
  const { url: _url, ...rest } = config;
  return rest;
}

function infoOf(
  httpService: HttpService,
  method: string,
  config: AxiosRequestConfig,
  defaultPriority: number | undefined,
): RequestInfo {
  const m = method.toLowerCase();
  const instance = httpService.axiosRef as HttpService['axiosRef'] | undefined;
  const defaults = instance?.defaults;
  const defaultHeaders = defaults?.headers as unknown as Record<string, unknown> | undefined;
  return requestInfo({
    method: m,
    url: urlOf(httpService, { ...config, method: m }),
    priority: config.rateLimit?.priority ?? defaultPriority,
    idempotencyKey:
      config.rateLimit?.idempotencyKey ??
      idempotencyKeyOf(config.headers, defaultHeaders?.[m], defaultHeaders?.['common'], defaultHeaders),
    retry: config.rateLimit?.retry,
    cost: config.rateLimit?.cost,
    headers: axiosRequestHeaders(instance, m, config),
    // A stream can be read once: never hand the same one to two subscribers.
    shareKey: config.rateLimit?.shareKey ?? (config.responseType === 'stream' ? false : undefined),
  });
}

/** The full URL, params included; the bare URL when there is no axios instance (a mock). */
function urlOf(httpService: HttpService, config: AxiosRequestConfig): string | undefined {
  const instance = httpService.axiosRef as HttpService['axiosRef'] | undefined;
  if (instance && typeof instance.getUri === 'function') {
    try {
      return instance.getUri(config) || undefined;
    } catch {
      // A params serializer that throws: axios fails the same way when it sends.
    }
  }
  return resolveUrl(config.baseURL ?? instance?.defaults?.baseURL, config.url);
}
