/**
 * Reading Angular's `HttpResponse` and `HttpErrorResponse` as the limiter's `ResponseLike`
 * (`extractAngularResponse`, exported by `rx-ratelimit/angular`).
 */
import { HttpErrorResponse, HttpEventType, HttpResponse, type HttpHeaders } from '@angular/common/http';
import { extractResponse, responseLike, type ResponseExtractor, type ResponseLike } from '../core/response.js';

/**
 * Reads Angular's `HttpResponse` and `HttpErrorResponse` as the limiter's `ResponseLike`
 * (headers by case-insensitive name, repeated ones joined with `", "`; the body of a response,
 * the `error` body of an error). An `HttpErrorResponse` with status 0 (no answer: network
 * error, CORS refusal) and the other `HttpEvent`s (`Sent`, progress, `ResponseHeader`) carry
 * no complete response: `undefined`. Anything else goes to the default `extractResponse`.
 *
 * ```ts
 * import { HttpErrorResponse, HttpHeaders } from '@angular/common/http';
 * import { extractAngularResponse } from 'rx-ratelimit/angular';
 *
 * const error = new HttpErrorResponse({ status: 429, headers: new HttpHeaders({ 'Retry-After': '2' }) });
 * extractAngularResponse(error)?.header('retry-after'); // '2'
 * ```
 */
export const extractAngularResponse: ResponseExtractor = Object.assign(
  (x: unknown) => {
    if (x instanceof HttpResponse) return toResponseLike(x.status, x.headers, x.body);
    if (x instanceof HttpErrorResponse) return x.status > 0 ? toResponseLike(x.status, x.headers, x.error) : undefined;
    if (isPartialEvent(x)) return undefined;
    return extractResponse(x);
  },
  // HttpClient's stream (`observe: 'events'`, an interceptor's) holds events; its answer is an
  // `HttpResponse`, never a plain value.
  { beforeAnswer: isPartialEvent },
);

/** @internal A response's status, headers and body as the limiter's `ResponseLike`. */
export function toResponseLike(status: number, headers: HttpHeaders, body: unknown): ResponseLike {
  // `HttpHeaders.get` returns the first value only; an XHR response may carry several.
  const get = (name: string): string | null => headers.getAll(name)?.join(', ') ?? null;
  return responseLike(status, { get }, body === null ? undefined : body);
}

/** @internal An Angular `HttpEvent` that is not a full response: `{ type: HttpEventType.Sent }` and the like. */
export function isPartialEvent(x: unknown): boolean {
  if (typeof x !== 'object' || x === null) return false;
  const type = (x as { type?: unknown }).type;
  return typeof type === 'number' && type !== (HttpEventType.Response as number);
}
