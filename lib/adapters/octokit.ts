/**
 * `rx-ratelimit/octokit`: puts an Octokit instance (`@octokit/core` and everything built on it)
 * behind a limiter, with one call. No RxJS in your code, and no import of `@octokit/core` here:
 * the instance is taken by its shape.
 */
import type { Limiter } from '../core/limiter.js';
import { checkRetryNonIdempotent, isOneShotBody, isRetrySafe } from '../core/request.js';
import { responseLike, type HeaderSource } from '../core/response.js';
import {
  abortReason,
  acquirePermit,
  checkMaxRetries,
  checkPriority,
  idempotencyKeyOf,
  isLimiter,
  requestInfo,
  sleep,
  type AbortSignalLike,
} from './common.js';

/**
 * What {@link rateLimitOctokit} needs of an Octokit instance: its `hook` collection and its
 * `request.endpoint.parse` (every `@octokit/core` instance has both).
 *
 * ```ts
 * import { Octokit } from '@octokit/core';
 * import type { OctokitLike } from 'rx-ratelimit/octokit';
 * const octokit: OctokitLike = new Octokit();
 * ```
 */
export interface OctokitLike {
  readonly hook: {
    /**
     * Wraps every request of the instance (before-after-hook's `wrap`). Typed loosely (`never`)
     * so that every version's own hook types fit.
     */
    wrap(name: 'request', wrapper: never): void;
  };
  readonly request: {
    readonly endpoint: {
      /** Turns request options into the method, URL, headers and body that will be sent. */
      parse(options: never): {
        readonly method: string;
        readonly url: string;
        readonly headers?: unknown;
        readonly body?: unknown;
      };
    };
  };
}

/**
 * Settings of {@link rateLimitOctokit}. All optional.
 *
 * ```ts
 * import type { RateLimitOctokitOptions } from 'rx-ratelimit/octokit';
 * const opts: RateLimitOctokitOptions = { maxRetries: 3, priority: 1 };
 * ```
 */
export interface RateLimitOctokitOptions {
  /** Retries after the first attempt; past them the call rejects with `RetryLimitError`. @default 5 */
  readonly maxRetries?: number;
  /**
   * Send POST and PATCH again after a rate-limit answer even without an `Idempotency-Key`
   * header. Only if the API does not apply a request it refused. @default false
   */
  readonly retryNonIdempotent?: boolean;
  /** Priority of this instance's requests among those waiting on the limiter; higher goes first. @default 0 */
  readonly priority?: number;
}

/** The part of an Octokit response (resolved, or `RequestError.response`) read here. */
interface OctokitResponse {
  readonly status: number;
  readonly headers: HeaderSource;
  readonly data?: unknown;
}

/**
 * `response` when it has the shape of one, else `undefined`: a network error has none, and a
 * plugin or test double wrapped inside may resolve anything (`null`, a string).
 */
function responseOf(response: unknown): OctokitResponse | undefined {
  if (typeof response !== 'object' || response === null) return undefined;
  const { status, headers, data } = response as Partial<OctokitResponse>;
  return typeof status === 'number' && typeof headers === 'object' && headers !== null
    ? { status, headers, data }
    : undefined;
}

/**
 * Puts every request of an Octokit instance behind `limiter`: each waits for a permit, its
 * answer's rate-limit headers (and a 403's body) are read by the limiter's provider, and a
 * rate-limit answer (429, or the provider's limited 403) to a request safe to repeat (GET,
 * HEAD, PUT, DELETE…, or one with an `Idempotency-Key` header, or any with
 * `retryNonIdempotent`) is sent again when the limiter allows, up to `maxRetries` times.
 * Anything else Octokit throws is thrown as it was. Returns the same instance.
 *
 * - `request: { signal }` aborted while waiting removes the request from the queue and
 *   rejects with the signal's reason; nothing is sent.
 * - A request whose body can be read once (a Node `Readable`, a `ReadableStream`, an async
 *   iterable) is not sent again: its rate-limit answer is thrown as Octokit threw it.
 * - A response that shows the credential blocked rejects with `BlockedError`.
 * - A value that is not a response (a plugin's wrapped inside, a test double's: `null`, a
 *   string) is returned as it came; the limiter reads nothing from it.
 * - Wrap once per instance: a second call would pace each request twice.
 *
 * ```ts
 * import { Octokit } from '@octokit/core';
 * import { createLimiter, providers } from 'rx-ratelimit';
 * import { rateLimitOctokit } from 'rx-ratelimit/octokit';
 *
 * const limiter = createLimiter({ provider: providers.github(), key: 'github-user-octocat' });
 * const octokit = rateLimitOctokit(new Octokit({ auth: process.env['GITHUB_TOKEN'] }), limiter);
 * const { data } = await octokit.request('GET /repos/{owner}/{repo}/issues', { owner: 'octo', repo: 'hello' });
 * ```
 */
export function rateLimitOctokit<O extends OctokitLike>(
  octokit: O,
  limiter: Limiter,
  opts: RateLimitOctokitOptions = {},
): O {
  const where = 'rateLimitOctokit';
  if (typeof octokit?.hook?.wrap !== 'function' || typeof octokit.request?.endpoint?.parse !== 'function')
    throw new TypeError(`${where}: \`octokit\` must be an Octokit instance (with hook.wrap and request.endpoint)`);
  if (!isLimiter(limiter)) throw new TypeError(`${where}: \`limiter\` must be a limiter from createLimiter()`);
  const maxRetries = checkMaxRetries(where, opts.maxRetries);
  const priority = checkPriority(where, opts.priority);
  const retryNonIdempotent = checkRetryNonIdempotent(where, opts.retryNonIdempotent);
  const parse = octokit.request.endpoint.parse as (options: unknown) => {
    method: string;
    url: string;
    headers?: unknown;
    body?: unknown;
  };

  const wrapper = async (request: (options: unknown) => Promise<unknown>, options: unknown): Promise<unknown> => {
    const { method, url, headers, body } = parse(options);
    const { request: requestOptions, data } = options as { request?: { signal?: AbortSignalLike }; data?: unknown };
    const signal = requestOptions?.signal;
    const info = requestInfo({ method, url, priority, idempotencyKey: idempotencyKeyOf(headers), retry: undefined });
    const retrySafe = isRetrySafe(info, retryNonIdempotent);
    // A body read once (a Node `Readable`, a `ReadableStream`, an async generator) is spent by
    // the first attempt: sent again, it would go out empty or fail. Such a request is not
    // retried, whatever its method. `data` is read too, for an instance whose `parse` does not
    // return the body.
    const resendable = !isOneShotBody(body) && !isOneShotBody(data);
    for (let attempt = 1; ; attempt++) {
      const got = await acquirePermit(limiter, info, signal);
      if (got.aborted) throw abortReason(signal);
      const { permit } = got;
      let result: unknown;
      let failure: { readonly error: unknown; readonly status: number } | undefined;
      let outcome: string;
      try {
        let res: OctokitResponse | undefined;
        try {
          result = await request(options);
          res = responseOf(result);
        } catch (error) {
          res = responseOf((error as { response?: unknown } | null)?.response);
          if (res === undefined) throw error;
          failure = { error, status: res.status };
        }
        // Not a response: nothing to read, and the caller gets the value as Octokit gave it.
        if (res === undefined) return result;
        outcome = failure
          ? permit.observe(responseLike(res.status, res.headers, res.data), failure.error).outcome
          : permit.observe(responseLike(res.status, res.headers), result).outcome;
      } finally {
        permit.release();
      }
      if (outcome === 'blocked') throw limiter.blockedError(failure?.error ?? result);
      if (failure === undefined) return result;
      if (outcome !== 'limited' || !retrySafe || !resendable) throw failure.error;
      const waitMs = limiter.retryDelay(info, {
        attempts: attempt,
        maxRetries,
        status: failure.status,
        cause: failure.error,
        request: permit.request,
      });
      if (!(await sleep(limiter, waitMs, signal))) throw abortReason(signal);
    }
  };
  octokit.hook.wrap('request', wrapper as never);
  return octokit;
}
