/**
 * `rx-ratelimit/axios`: paces axios calls by the limiter, either as cold observables for RxJS
 * code ({@link rateLimitedRequest}) or at the instance's transport for code that only uses
 * promises ({@link attachRateLimiter}). Only types are imported from axios statically: the one
 * runtime use, axios's `getAdapter` to turn an instance's adapter setting (`['xhr', 'http',
 * 'fetch']`) into a function, loads `axios` on the first request that needs it (the default
 * `axios` instance brings its own). The module adds nothing to a bundle that does not already
 * contain axios, and works with whichever copy the app or an SDK uses.
 */
export type { AxiosRequestRateLimit } from './axiosSettings.js';
export { toResponseLike } from './axiosResponse.js';
export { rateLimitedRequest, type RateLimitedRequestOptions } from './axiosRequest.js';
export {
  attachRateLimiter,
  rateLimitInterceptor,
  type AxiosInstanceLike,
  type RateLimitInterceptor,
  type RateLimitInterceptorOptions,
} from './axiosInterceptor.js';
/** @internal */
export { captureRaw } from './axiosTransport.js';
/** @internal */
export { withIdempotencyKey } from './axiosRequest.js';
