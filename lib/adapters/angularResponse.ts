/**
 * Reading Angular's `HttpResponse` and `HttpErrorResponse` as the limiter's `ResponseLike`
 * (`extractAngularResponse`, exported by `rx-ratelimit/angular`).
 */
import {
  HttpErrorResponse,
  HttpEventType,
  HttpHeaderResponse,
  HttpResponse,
  type HttpHeaders,
} from '@angular/common/http';
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
  // Only the events HttpClient makes before an answer, by their exact shape: a body of its own
  // with a numeric `type` (a Discord message) is an answer on a stream of bodies.
  { beforeAnswer: isEventBeforeAnswer },
);

/** @internal A response's status, headers and body as the limiter's `ResponseLike`. */
export function toResponseLike(status: number, headers: HttpHeaders, body: unknown): ResponseLike {
  // `HttpHeaders.get` returns the first value only; an XHR response may carry several.
  const get = (name: string): string | null => headers.getAll(name)?.join(', ') ?? null;
  return responseLike(status, { get }, body === null ? undefined : body);
}

/**
 * @internal An event HttpClient emits before a request's answer, by its exact shape: `Sent`
 * (`{ type: 0 }` alone), an upload or download progress (`type` 1 or 3 with a numeric
 * `loaded`), or the headers (`HttpHeaderResponse`).
 */
export function isEventBeforeAnswer(x: unknown): boolean {
  if (x instanceof HttpHeaderResponse) return true;
  if (typeof x !== 'object' || x === null || x instanceof HttpResponse) return false;
  const e = x as { type?: unknown; loaded?: unknown };
  if (e.type === (HttpEventType.Sent as number)) return Object.keys(x).length === 1;
  return (
    (e.type === (HttpEventType.UploadProgress as number) || e.type === (HttpEventType.DownloadProgress as number)) &&
    typeof e.loaded === 'number'
  );
}

/** @internal An Angular `HttpEvent` that is not a full response: `{ type: HttpEventType.Sent }` and the like. */
export function isPartialEvent(x: unknown): boolean {
  if (typeof x !== 'object' || x === null) return false;
  const type = (x as { type?: unknown }).type;
  return typeof type === 'number' && type !== (HttpEventType.Response as number);
}
