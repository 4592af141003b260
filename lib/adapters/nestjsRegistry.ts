/**
 * The limiters and pools that `RateLimitModule` registers by name (`LimiterRegistry`), and the
 * options they are made from. Part of `rx-ratelimit/nestjs` (`nestjs.ts`, which re-exports it).
 */
import type { OnApplicationShutdown } from '@nestjs/common';
import type { HttpService } from '@nestjs/axios';
import { combineLatest, map, of, type Observable } from 'rxjs';
import * as z from 'zod/mini';
import type { Limiter } from '../core/limiter.js';
import { createLimiterPool, LimiterPool } from '../core/pool.js';
import type { LimiterPoolOptions } from '../core/poolOptions.js';
import { shareLimiter, type SharedLimiter } from '../core/registry.js';
import { parseOptions, type LimiterOptions } from '../core/options.js';
import type { LimiterSnapshot } from '../core/state.js';
import { isLimiter } from './common.js';
import {
  rateLimitedHttp,
  tenantHttp,
  type RateLimitedHttp,
  type RateLimitedHttpOptions,
  type TenantHttp,
  type TenantHttpOptions,
} from './nestjsHttp.js';

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

/** What `limiters` and `pools` must be: an object by name (each entry is checked when it is made). */
const byName = (what: string) =>
  z.custom<object>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), what);

/**
 * @internal The options of the module, what `forRoot` takes besides its extras and what the
 * `forRootAsync` factory returns, for a `strictObject`: every name, so that a misspelt one
 * (`limiter`, `pool`) fails instead of registering nothing.
 */
export const MODULE_OPTION_SHAPE = {
  limiters: z.optional(byName('an object of limiters or limiter options by name')),
  pools: z.optional(byName('an object of limiter pools or pool options by name')),
} satisfies Record<keyof RateLimitModuleOptions, z.ZodMiniType>;

/** An extra of `forRootAsync` returned by its factory, where it does nothing. */
const misplaced = z.custom<never>(
  () => false,
  'given to forRootAsync itself, beside `useFactory`, not in the options the factory returns',
);

/** The registry's options; the module's extras are refused with where they belong. */
const REGISTRY_OPTIONS = z.strictObject({
  ...MODULE_OPTION_SHAPE,
  isGlobal: z.optional(misplaced),
  limiterNames: z.optional(misplaced),
});

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
    // Each limiter's and pool's options are checked when it is made (createLimiter's own check).
    parseOptions('RateLimitModule', REGISTRY_OPTIONS, options);
    const defs: object = options.limiters ?? {};
    const poolDefs: object = options.pools ?? {};
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
