/**
 * Reading Angular's `HttpResponse` and `HttpErrorResponse` as the limiter's `ResponseLike`
 * (`extractAngularResponse`, exported by `rx-ratelimit/angular`).
 */
import {
  HttpErrorResponse,
  HttpEventType,
  HttpHeaderResponse,
  HttpResponse,
  type HttpEvent,
  type HttpHeaders,
} from '@angular/common/http';
import { catchError, from, mergeMap, throwError, type MonoTypeOperatorFunction } from 'rxjs';
import { extractResponse, responseLike, type ResponseExtractor, type ResponseLike } from '../core/response.js';
import { BODY_STATUSES, decodeBytes, MAX_BODY_BYTES, parseText } from './common.js';

/**
 * Reads Angular's `HttpResponse` and `HttpErrorResponse` as the limiter's `ResponseLike`
 * (headers by case-insensitive name, repeated ones joined with `", "`; the body of a response,
 * the `error` body of an error, bytes of a 403 or 429 decoded as text up to 256 KiB; a `Blob` is
 * left as it is, since it can only be read asynchronously: the interceptor reads it before the
 * limiter reads its error). An `HttpErrorResponse` with status 0 (no answer: network
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

/**
 * @internal A response's status, headers and body as the limiter's `ResponseLike`. Bytes
 * (`responseType: 'arraybuffer'`) of a 403 or 429, where a provider reads a block page or a
 * limit message, are decoded as text (parsed when the content type says JSON) up to 256 KiB, as
 * the axios adapter does: undecoded, an ordinary HTML 403 read as Pipedrive's block (its rule
 * takes an HTML 403 whose text it cannot see for one), and stopped the credential for 15 minutes.
 */
export function toResponseLike(status: number, headers: HttpHeaders, body: unknown): ResponseLike {
  // `HttpHeaders.get` returns the first value only; an XHR response may carry several.
  const get = (name: string): string | null => headers.getAll(name)?.join(', ') ?? null;
  return responseLike(status, { get }, bodyOf(status, body, get('content-type') ?? undefined));
}

/** The body of a response with `status` as a provider reads it (see {@link toResponseLike}). */
function bodyOf(status: number, body: unknown, contentType: string | undefined): unknown {
  if (body === null) return undefined;
  if (!BODY_STATUSES.has(status) || !(body instanceof ArrayBuffer || ArrayBuffer.isView(body))) return body;
  const text = decodeBytes(body);
  return text === undefined ? undefined : parseText(text, contentType);
}

/**
 * @internal Holds back an `HttpErrorResponse` of a 403 or 429 whose body is a `Blob`
 * (`responseType: 'blob'`) until up to 256 KiB of it are read as text into `bodies` (by the
 * error), for the limiter's extractor: a provider tells a block page or a limit message by its
 * text, and a `Blob` can only be read asynchronously. The caller gets the error as it was, its
 * blob whole (reading a `Blob` does not use it up). A larger blob is not read, as bytes past the
 * cap are not.
 */
export function readBlobBodies(bodies: WeakMap<object, unknown>): MonoTypeOperatorFunction<HttpEvent<unknown>> {
  return catchError((error: unknown) => {
    const blob = blobBodyOf(error);
    if (blob === undefined) return throwError(() => error);
    const contentType = (error as HttpErrorResponse).headers.get('content-type') ?? undefined;
    const read = blob.text().then(
      (text) => void bodies.set(error as object, parseText(text, contentType)),
      // A blob that cannot be read is a body not read: the provider's rule for one applies.
      () => undefined,
    );
    return from(read).pipe(mergeMap(() => throwError(() => error)));
  });
}

/** The `Blob` body of a 403 or 429 `HttpErrorResponse`, when it is small enough to read. */
function blobBodyOf(error: unknown): Blob | undefined {
  if (!(error instanceof HttpErrorResponse) || !BODY_STATUSES.has(error.status)) return undefined;
  const body: unknown = error.error;
  return typeof Blob !== 'undefined' && body instanceof Blob && body.size <= MAX_BODY_BYTES ? body : undefined;
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
