/**
 * `ResponseLike`: the one shape every adapter turns its client's responses and errors into, so
 * that providers and the limiter never see axios, fetch or Angular types.
 */

/** A response as the limiter reads it. */
export interface ResponseLike {
  /** HTTP status code. */
  readonly status: number;
  /** Header value by case-insensitive name; repeated headers joined with `", "`. */
  header(name: string): string | undefined;
  /** Parsed JSON or text body when the client already read it; `undefined` otherwise. */
  readonly body?: unknown;
}

/** Header containers {@link responseLike} reads: `Headers`, `AxiosHeaders`, `HttpHeaders`, a `Map` or a plain object. */
export type HeaderSource =
  | {
      /** A header's value by name (case-insensitive), or `null`/`undefined` when absent. */
      get(name: string): string | null | undefined;
    }
  | Iterable<[string, string]>
  | Readonly<Record<string, unknown>>;

/**
 * Builds a {@link ResponseLike} from a status, any common header container (a WHATWG `Headers`,
 * axios `AxiosHeaders`, Angular `HttpHeaders`, a `Map`, or a plain object whose values are
 * strings, numbers or arrays) and an optional body.
 *
 * ```ts
 * import { responseLike } from 'rx-ratelimit';
 * const res = responseLike(429, { 'Retry-After': '3' });
 * res.header('retry-after'); // '3'
 * ```
 */
export function responseLike(status: number, headers: HeaderSource | null | undefined, body?: unknown): ResponseLike {
  const header = headerReader(headers);
  return body === undefined ? { status, header } : { status, header, body };
}

function headerReader(headers: HeaderSource | null | undefined): (name: string) => string | undefined {
  if (headers == null) return () => undefined;
  // Headers, HttpHeaders and AxiosHeaders all answer case-insensitively already.
  if (typeof (headers as { get?: unknown }).get === 'function' && !(headers instanceof Map)) {
    const h = headers as { get(name: string): unknown };
    return (name) => joinValue(h.get(name));
  }
  const lower = new Map<string, string>();
  const entries: Iterable<[string, unknown]> =
    headers instanceof Map || Symbol.iterator in headers
      ? (headers as Iterable<[string, unknown]>)
      : Object.entries(headers as Record<string, unknown>);
  for (const [k, v] of entries) {
    const value = joinValue(v);
    if (value === undefined) continue;
    const key = k.toLowerCase();
    const prev = lower.get(key);
    lower.set(key, prev === undefined ? value : `${prev}, ${value}`);
  }
  return (name) => lower.get(name.toLowerCase());
}

function joinValue(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (Array.isArray(v)) {
    const parts = v.filter((x): x is string | number => typeof x === 'string' || typeof x === 'number');
    return parts.length ? parts.join(', ') : undefined;
  }
  return undefined;
}

/** A function that finds the response inside a value or error a request emitted. */
export interface ResponseExtractor {
  (valueOrError: unknown): ResponseLike | undefined;
  /**
   * Is `value` an event that comes before the request's answer, not the answer (Angular's
   * `Sent` and progress events)? A request made while only such events are out joins the one
   * in flight (with `dedupe`) and gets its answer; after any other value it is sent anew. Without
   * it, every value is taken for the answer: a body is never mistaken for an event.
   */
  readonly beforeAnswer?: (value: unknown) => boolean;
}

/**
 * Finds the HTTP response in whatever a request observable emitted or threw, by shape: an
 * axios response or `AxiosError.response`, a fetch `Response`, Angular's `HttpResponse` and
 * `HttpErrorResponse`, RxJS `AjaxResponse`/`AjaxError`, or a `ResponseLike`. Returns
 * `undefined` when there is no response (a network error, a plain value).
 *
 * ```ts
 * import { extractResponse } from 'rx-ratelimit';
 * declare const axiosError: unknown; // what an axios call threw
 * const res = extractResponse(axiosError); // ResponseLike | undefined
 * ```
 */
export const extractResponse: ResponseExtractor = (x) => {
  if (typeof x !== 'object' || x === null) return undefined;
  const o = x as Record<string, unknown>;
  if (typeof o['status'] === 'number' && typeof o['header'] === 'function') return o as unknown as ResponseLike;
  // axios: AxiosError carries the response; AxiosResponse has status + headers + data.
  if (typeof o['response'] === 'object' && o['response'] !== null && 'isAxiosError' in o) {
    return extractResponse(o['response']);
  }
  const status = o['status'];
  if (typeof status !== 'number' || status <= 0) return undefined;
  if ('headers' in o && typeof o['headers'] === 'object' && o['headers'] !== null) {
    const body = 'data' in o ? o['data'] : 'config' in o ? undefined : (o['error'] ?? bodyOf(o));
    return responseLike(status, o['headers'] as HeaderSource, body);
  }
  // RxJS ajax: AjaxResponse.responseHeaders, AjaxError.xhr.
  if (typeof o['responseHeaders'] === 'object' && o['responseHeaders'] !== null) {
    return responseLike(status, o['responseHeaders'] as HeaderSource, o['response']);
  }
  const xhr = o['xhr'] as { getResponseHeader?: (n: string) => string | null } | undefined;
  if (xhr && typeof xhr.getResponseHeader === 'function') {
    const get = xhr.getResponseHeader.bind(xhr);
    return responseLike(status, { get }, o['response']);
  }
  return undefined;
};

function bodyOf(o: Record<string, unknown>): unknown {
  // Angular HttpResponse keeps the body in `body`; a fetch Response's `body` is a stream we
  // must not consume, so only plain (non-stream) bodies are taken.
  const b = o['body'];
  if (b === null || b === undefined) return undefined;
  if (typeof b === 'object' && typeof (b as { getReader?: unknown }).getReader === 'function') return undefined;
  return b;
}
