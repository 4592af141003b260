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
  type Provider as NestProvider,
} from '@nestjs/common';
import type { HttpService } from '@nestjs/axios';
import { checkHttpOptions, type HttpServiceClass, type TenantHttpOptions } from './nestjsHttp.js';
import { LimiterRegistry, type RateLimitModuleOptions } from './nestjsRegistry.js';
// Re-exported so that this entry's declarations load rx-ratelimit/axios's: its augmentation adds
// `rateLimit` (priority, idempotencyKey…) to AxiosRequestConfig, which HttpService calls take.
export type { AxiosRequestRateLimit } from './axios.js';
export {
  RateLimitExceptionFilter,
  type RateLimitExceptionBody,
  type RateLimitExceptionFilterOptions,
} from './nestjsFilter.js';
export {
  rateLimitedHttp,
  tenantHttp,
  type HttpServiceClass,
  type RateLimitedHttp,
  type RateLimitedHttpOptions,
  type TenantHttp,
  type TenantHttpOptions,
} from './nestjsHttp.js';
export { LimiterRegistry, type LimiterDefinition, type RateLimitModuleOptions } from './nestjsRegistry.js';

// ---------------------------------------------------------------------------------------------
// Options and tokens

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
// The module

/**
 * The injection token of the module's options, inside the module only: they hold every key in
 * clear, so the module does not export them, and other modules reach the limiters through
 * {@link LimiterRegistry} and {@link getLimiterToken} instead.
 */
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
    // Checked here, as `names` are, rather than when the app boots and makes the services.
    if (options.httpOptions !== undefined)
      checkHttpOptions('RateLimitModule.forFeature: httpOptions', options.httpOptions);
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
