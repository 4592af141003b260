/**
 * Reading an axios response, or the response inside an `AxiosError`, as the limiter's
 * `ResponseLike` (`toResponseLike`, exported by `rx-ratelimit/axios`).
 */
import type { AxiosError, AxiosResponse } from 'axios';
import { responseLike, type ResponseLike } from '../core/response.js';
import { BODY_STATUSES, decodeBytes, MAX_BODY_BYTES, parseText } from './common.js';

/**
 * Reads an axios response, or the response inside an `AxiosError`, as the limiter's
 * `ResponseLike`. Returns `undefined` for an error without a response (network error, timeout,
 * cancel) and for anything that is not an axios value.
 *
 * Headers are read case-insensitively from `AxiosHeaders` or a plain object; repeated values
 * (arrays) are joined with `", "`. The body is `response.data` when axios parsed it. Text and
 * bytes are decoded only where a provider reads them, on a 429 or 403 and up to 256 KiB: a JSON
 * string (a `responseType: 'text'` call, a failed parse, or the raw answer of the transport) is
 * then parsed when the content type says JSON, and small `ArrayBuffer`/`Buffer` bodies are
 * decoded the same way; other statuses keep a string as it is and leave bytes out. Streams and
 * blobs are always left out (the adapter never consumes a body the caller will read).
 *
 * ```ts
 * import type { AxiosInstance } from 'axios';
 * import { toResponseLike } from 'rx-ratelimit/axios';
 * declare const api: AxiosInstance;
 * try {
 *   await api.get('/deals');
 * } catch (e) {
 *   const res = toResponseLike(e); // ResponseLike | undefined
 *   console.log(res?.status, res?.header('retry-after'));
 * }
 * ```
 */
export function toResponseLike(responseOrError: AxiosResponse | AxiosError | unknown): ResponseLike | undefined {
  if (typeof responseOrError !== 'object' || responseOrError === null) return undefined;
  const o = responseOrError as Partial<AxiosError> & Partial<AxiosResponse>;
  if (o.isAxiosError === true) return o.response ? fromResponse(o.response) : undefined;
  return fromResponse(o);
}

function fromResponse(r: Partial<AxiosResponse>): ResponseLike | undefined {
  if (typeof r.status !== 'number' || r.status <= 0) return undefined;
  if (typeof r.headers !== 'object' || r.headers === null) return undefined;
  const res = responseLike(r.status, r.headers as Parameters<typeof responseLike>[1]);
  const body = bodyOf(r.data, res.header('content-type'), BODY_STATUSES.has(r.status));
  return body === undefined ? res : responseLike(r.status, r.headers as Parameters<typeof responseLike>[1], body);
}

/** The body as a provider reads it; text and bytes are decoded only when `decode` (a 429/403). */
function bodyOf(data: unknown, contentType: string | undefined, decode: boolean): unknown {
  if (data === undefined || data === null) return undefined;
  if (typeof data === 'string') {
    if (!decode) return data;
    // A string is at least as many UTF-8 bytes as it has characters.
    return data.length > MAX_BODY_BYTES ? undefined : parseText(data, contentType);
  }
  if (typeof data !== 'object') return data;
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    if (!decode) return undefined;
    const text = decodeBytes(data);
    return text === undefined ? undefined : parseText(text, contentType);
  }
  // A Node stream, a web stream or a Blob: reading it would take it from the caller.
  const d = data as { pipe?: unknown; getReader?: unknown; arrayBuffer?: unknown };
  if (typeof d.pipe === 'function' || typeof d.getReader === 'function' || typeof d.arrayBuffer === 'function') {
    return undefined;
  }
  return data;
}
