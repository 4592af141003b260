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
import * as z from 'zod/mini';
import { parseOptions } from '../core/options.js';
import { listOf } from '../core/schema.js';
import { checkAll, checkHttpOptions, type HttpServiceClass, type TenantHttpOptions } from './nestjsHttp.js';
import { LimiterRegistry, MODULE_OPTION_SHAPE, type RateLimitModuleOptions } from './nestjsRegistry.js';
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

// Every option of the module's methods, so that a misspelt one fails when the module is declared
// rather than leaving its setting at the default (`global: true`) or registering nothing
// (`limiter: {…}`). Each limiter's and pool's options are createLimiter's and createLimiterPool's,
// checked by them when the app boots; `httpOptions` are checked by checkHttpOptions.
const fn = (what: string) => z.custom<unknown>((v) => typeof v === 'function', what);
const list = (what: string) => z.custom<unknown>((v) => Array.isArray(v), what);
const EXTRAS_SHAPE = {
  isGlobal: z.optional(z.boolean()),
  limiterNames: z.optional(listOf(z.string())),
} satisfies Record<keyof RateLimitModuleExtras, z.ZodMiniType>;
const FOR_ROOT_OPTIONS = z.strictObject({
  ...MODULE_OPTION_SHAPE,
  ...EXTRAS_SHAPE,
} satisfies Record<keyof RateLimitModuleForRootOptions, z.ZodMiniType>);
const FOR_ROOT_ASYNC_OPTIONS = z.strictObject({
  imports: z.optional(list('an array of modules')),
  useFactory: z.optional(fn('a function returning the options')),
  useClass: z.optional(fn('a class with a create() method')),
  // An injection token, as Nest reads it.
  useExisting: z.optional(z.unknown()),
  inject: z.optional(list('an array of injection tokens')),
  provideInjectionTokensFrom: z.optional(list('an array of providers')),
  ...EXTRAS_SHAPE,
} satisfies Record<keyof RateLimitModuleAsyncOptions, z.ZodMiniType>);

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
  /**
   * Registers the given limiters; each name is injectable with {@link getLimiterToken}. An
   * unknown option (`limiter`, `global`) throws a `TypeError` naming each at once; a bad limiter
   * or pool option fails at bootstrap, naming the limiter or pool.
   */
  static override forRoot(options: RateLimitModuleForRootOptions): DynamicModule {
    parseOptions('RateLimitModule.forRoot', FOR_ROOT_OPTIONS, options);
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
   * root module did not register fails at bootstrap with an error listing those it did; an
   * unknown option, or a bad one in `httpOptions`, throws a `TypeError` naming each at once.
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
    const where = 'RateLimitModule.forFeature';
    // Checked here, as `names` are, rather than when the app boots and makes the services.
    checkAll(where, [
      () => {
        if (!Array.isArray(names) || names.some((n) => typeof n !== 'string'))
          throw new TypeError(`${where}: \`names\` must be an array of limiter names`);
      },
      () => parseOptions(where, FEATURE_OPTIONS, options),
      () => {
        const httpOptions = (options as Partial<RateLimitFeatureOptions> | null)?.httpOptions;
        if (httpOptions !== undefined) checkHttpOptions(`${where}: httpOptions`, httpOptions);
      },
    ]);
    // `key` picks a pool's limiter; a limiter of its own has no other to pick.
    const { key: _key, ...limiterHttpOptions } = options.httpOptions ?? {};
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
                : registry.http(service, name, limiterHttpOptions),
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
   * An unknown option of its own (`useFactroy`) throws a `TypeError` at once; one in what the
   * factory returns fails at bootstrap, as `forRoot`'s do.
   */
  static override forRootAsync(options: RateLimitModuleAsyncOptions): DynamicModule {
    parseOptions('RateLimitModule.forRootAsync', FOR_ROOT_ASYNC_OPTIONS, options);
    return super.forRootAsync(options);
  }
}

/** The module {@link RateLimitModule.forFeature} returns. */
// eslint-disable-next-line @typescript-eslint/no-extraneous-class -- a Nest module
export class RateLimitFeatureModule {}

const FEATURE_OPTIONS = z.strictObject({
  imports: z.optional(list('an array of modules')),
  http: z.optional(fn('the HttpService class (of @nestjs/axios)')),
  httpOptions: z.optional(z.unknown()),
} satisfies Record<keyof RateLimitFeatureOptions, z.ZodMiniType>);

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
