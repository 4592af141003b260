/**
 * The HTTP boundary of a Nest app that calls rate-limited APIs: what its own clients see when a
 * call upstream could not be made. Without it, `QuotaExhaustedError`, `BlockedError` and a raw
 * 429 `AxiosError` all become `500 Internal server error`, and Nest's logger prints the
 * `AxiosError` with the request's headers (`x-api-token`, `Authorization`).
 *
 * @packageDocumentation
 */
import { Logger, type ArgumentsHost } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import * as z from 'zod/mini';
import {
  isBlockedError,
  isLimiterClosedError,
  isLimiterPoolFullError,
  isQueueFullError,
  isQuotaExhaustedError,
  isRateLimitError,
  isRetryLimitError,
  refusalWaitMs,
} from '../core/errors.js';
import { parseOptions } from '../core/options.js';
import { parseReset } from '../headers/reset.js';
import { parseRetryAfter } from '../headers/retryAfter.js';
import { toResponseLike } from './axios.js';

/** Settings of {@link RateLimitExceptionFilter}. */
export interface RateLimitExceptionFilterOptions {
  /**
   * Status for a refused upstream call: 503 (the upstream service is unavailable to this app
   * for now) or 429 (when your clients should read it as their own rate limit). A full limiter
   * pool and a closed limiter answer 503 either way. @default 503
   */
  readonly status?: 429 | 503;
  /** Where one line per refusal goes (never a credential). `false` for none. @default Nest's `Logger` */
  readonly logger?: Pick<Logger, 'warn'> | false;
  /**
   * The clock of `resumeAt` (the limiter's; virtual under `TestScheduler`). @default none: the
   * wait the error carries (`resumeInMs`, `untilInMs`), measured on the limiter's clock when it
   * was made, which no step of the wall clock moves
   */
  readonly now?: () => number;
}

/** Every option, so that a misspelt one (`statusCode: 429`) fails instead of doing nothing. */
const FILTER_OPTIONS = z.strictObject({
  status: z.optional(z.custom<429 | 503>((v) => v === 429 || v === 503, '429 or 503')),
  logger: z.optional(
    z.custom<RateLimitExceptionFilterOptions['logger']>(
      // An object, or a class with a static `warn` (Nest's own `Logger`).
      (v) =>
        v === false ||
        ((typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as Logger).warn === 'function'),
      'a logger with a `warn` method, or false',
    ),
  ),
  now: z.optional(z.custom<() => number>((v) => typeof v === 'function', 'a function returning the time in ms')),
} satisfies Record<keyof RateLimitExceptionFilterOptions, z.ZodMiniType>);

/** The JSON body of a refusal: what happened upstream, and when to come back. */
export interface RateLimitExceptionBody {
  readonly statusCode: 429 | 503;
  readonly error: string;
  readonly message: string;
  /** The upstream provider's name. */
  readonly provider?: string;
  /**
   * The error's name (`QuotaExhaustedError`, `BlockedError`, `RetryLimitError`, `QueueFullError`,
   * `LimiterPoolFullError`, `LimiterClosedError`), or `UpstreamRateLimited`.
   */
  readonly reason: string;
  /** Seconds until a retry may succeed, as in the `Retry-After` header; absent when unknown. */
  readonly retryAfter?: number;
}

const MAX_RETRY_AFTER_S = 86_400;

/**
 * An exception filter that answers for this library's refusals, and for a 429 from the upstream
 * API that reached your code, with 503 (or 429) and `Retry-After`; every other exception goes
 * to Nest's default handling unchanged. A spent budget, a block, a 429 past `maxRetries` and a
 * full queue are the upstream's limits: 503, or 429 with `status: 429`. A limiter pool with no
 * room for another tenant and a limiter closed at shutdown are this service's own state, no
 * rate limit of the caller's: 503 whatever `status` says. A `CostExceedsLimitError` is a request
 * no window can ever admit, a bug or a wrong setting: Nest's own 500, logged as an error. The
 * body names the provider and the reason, never the credential, the URL's query or the upstream
 * response. Opt in, globally:
 *
 * ```ts
 * import { Module } from '@nestjs/common';
 * import { APP_FILTER } from '@nestjs/core';
 * import { RateLimitExceptionFilter } from 'rx-ratelimit/nestjs';
 *
 * @Module({ providers: [{ provide: APP_FILTER, useClass: RateLimitExceptionFilter }] })
 * export class AppModule {}
 * ```
 *
 * or `app.useGlobalFilters(new RateLimitExceptionFilter(app.get(HttpAdapterHost).httpAdapter,
 * { status: 429 }))`.
 */
export class RateLimitExceptionFilter extends BaseExceptionFilter {
  private readonly settings: RateLimitExceptionFilterOptions;

  /**
   * `applicationRef`: the HTTP adapter, for a filter made with `new` (`app.useGlobalFilters(new
   * RateLimitExceptionFilter(app.get(HttpAdapterHost).httpAdapter))`); Nest gives it otherwise.
   * `options` are checked here: an unknown name or a bad value throws a `TypeError` naming each.
   */
  constructor(
    applicationRef?: ConstructorParameters<typeof BaseExceptionFilter>[0],
    options: RateLimitExceptionFilterOptions = {},
  ) {
    super(applicationRef);
    parseOptions('RateLimitExceptionFilter', FILTER_OPTIONS, options);
    this.settings = options;
  }

  /** Answers our errors and a raw 429 as described above; hands anything else to Nest's own filter. */
  override catch(exception: unknown, host: ArgumentsHost): void {
    const body = host.getType() === 'http' ? this.bodyOf(exception) : undefined;
    if (!body) {
      super.catch(exception, host);
      return;
    }
    const adapter = this.httpAdapterHost?.httpAdapter ?? this.applicationRef;
    const response: unknown = host.switchToHttp().getResponse();
    if (!adapter)
      throw new Error(
        'RateLimitExceptionFilter: no HTTP adapter (register it with APP_FILTER or pass app.get(HttpAdapterHost).httpAdapter)',
      );
    if (body.retryAfter !== undefined) adapter.setHeader(response, 'Retry-After', String(body.retryAfter));
    adapter.reply(response, body, body.statusCode);
    const logger = this.settings.logger ?? new Logger('RateLimit');
    if (logger)
      logger.warn(`${body.statusCode} ${body.reason}${body.provider ? ` (${body.provider})` : ''}: ${body.message}`);
  }

  /**
   * The answer for `exception`, or `undefined` for Nest's own: anything that is not a refusal
   * listed above (a `CostExceedsLimitError` included).
   */
  bodyOf(exception: unknown): RateLimitExceptionBody | undefined {
    const statusCode = this.settings.status ?? 503;
    const error = statusCode === 429 ? 'Too Many Requests' : 'Service Unavailable';
    const now = this.settings.now;
    const seconds = (ms: number | undefined) =>
      ms === undefined || !Number.isFinite(ms)
        ? undefined
        : Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(ms / 1000)));
    if (isQuotaExhaustedError(exception) || isBlockedError(exception)) {
      const quota = isQuotaExhaustedError(exception);
      // On the limiter's clock: the clock given, else the wait the error carries.
      const retryAfter = seconds(refusalWaitMs(exception, now));
      return {
        statusCode,
        error,
        message: quota
          ? `The ${exception.provider} API budget is spent for now; the request was not sent.`
          : `The ${exception.provider} API has blocked this service's credential; nothing is sent until it lifts.`,
        provider: exception.provider,
        reason: exception.name,
        ...(retryAfter === undefined ? {} : { retryAfter }),
      };
    }
    if (isRetryLimitError(exception) || isQueueFullError(exception)) {
      return {
        statusCode,
        error,
        message: `The ${exception.provider} API is rate limiting this service; try again later.`,
        provider: exception.provider,
        reason: exception.name,
      };
    }
    // Out of room for another tenant, or shutting down: this service cannot make the call now,
    // and its client is not the one over a limit, so never 429.
    if (isLimiterPoolFullError(exception) || isLimiterClosedError(exception)) {
      return {
        statusCode: 503,
        error: 'Service Unavailable',
        message: isLimiterPoolFullError(exception)
          ? `This service has no room for another ${exception.provider} credential right now; the request was not sent.`
          : `This service's ${exception.provider} limiter is closed (shutting down); the request was not sent.`,
        provider: exception.provider,
        reason: exception.name,
      };
    }
    // Ours but none of the above (a CostExceedsLimitError): Nest's own answer, even with a status.
    if (isRateLimitError(exception)) return undefined;
    // An axios error (HttpService's) with the upstream's own 429, read as the limiter reads it.
    const upstream = toResponseLike(exception);
    if (upstream?.status === 429) {
      // The upstream's headers tell wall-clock times: read on the clock given, else the wall's.
      const wall = (now ?? Date.now)();
      const parsed = parseRetryAfter(upstream.header('retry-after'), wall);
      // No Retry-After (Pipedrive, Procore): the window's reset, in any unit the headers use.
      const reset = parseReset(
        upstream.header('x-ratelimit-reset') ?? upstream.header('ratelimit-reset'),
        'auto',
        wall,
      );
      const at = (r: { at: number } | { inMs: number } | { delayMs: number } | undefined) =>
        r === undefined ? undefined : 'at' in r ? r.at : wall + ('inMs' in r ? r.inMs : r.delayMs);
      const until = at(parsed) ?? at(reset);
      const retryAfter = seconds(until === undefined ? undefined : until - wall);
      return {
        statusCode,
        error,
        message: 'The upstream API answered 429 Too Many Requests; try again later.',
        reason: 'UpstreamRateLimited',
        ...(retryAfter === undefined ? {} : { retryAfter }),
      };
    }
    return undefined;
  }
}
