import type { ResponseLike } from './response.js';
import { shareIdentity, type RequestInfo } from './request.js';
import { hex, randomBytes } from './hmac.js';
import { sha256Hex } from './sha256.js';

/** Settings of the GET response cache (`createLimiter({ cache })`). */
export interface CacheOptions {
  /** How long a response stays fresh, ms. */
  readonly ttlMs: number;
  /** Most responses kept; the oldest goes first. @default 500 */
  readonly maxEntries?: number | undefined;
  /**
   * Most bytes of responses kept, all together (per limiter); the oldest go first, and a
   * response larger than this is not kept. A response counts its body's size when the body is a
   * string, bytes or a `Blob`, else its `Content-Length`, else 64 KiB. An estimate: a parsed JSON
   * body takes more memory than its text, and a compressed answer's `Content-Length` is less.
   * @default 4_194_304 (4 MiB: the 500 entries of 8 KiB each)
   */
  readonly maxBytes?: number | undefined;
}

/** Longest `Cache-Control` or `Vary` value read; a longer one (hostile, or broken) is not cached. */
const MAX_DIRECTIVES_CHARS = 1024;

/**
 * Identical GETs in flight at once share one request, and (opt-in) recent GET responses are
 * served from memory: both spend less of the quota, as Procore's and TEOS's docs ask.
 *
 * "Identical" is one rule for every way in (`rateLimit`, and through it the axios, NestJS and
 * Angular adapters), {@link shareIdentity}: same method, same URL (or `shareKey`) and the same
 * headers, all of them. So one user's response never reaches another user's request, even on
 * one limiter, and a response in one language or format never answers a request for another.
 * A request whose headers are not known (`rateLimit` without `headers` or `shareKey`) is not
 * shared. The identity holds credentials in clear: it is kept only as a SHA-256 of it salted
 * per limiter, in memory, never in events or state.
 */
export class RequestSharing {
  // Each made on first use: every limiter has a RequestSharing, and at 10,000 tenants two empty
  // maps and a salt per limiter were about 0.5 KB each, for requests that mostly share nothing.
  /** Requests in flight (queued included), opaque here (what `rateLimit` registers), by key. */
  private inFlight: Map<string, object> | undefined = undefined;
  private cache: Map<string, { value: unknown; expiresAt: number; bytes: number }> | undefined = undefined;
  /** The estimated size of the responses in `cache`, bytes. */
  bytes = 0;
  /** Salts the keys, so that a key (in a heap dump, say) cannot be checked against guesses made elsewhere. */
  private salt: string | undefined = undefined;

  constructor(
    readonly dedupe: boolean,
    private readonly cacheOptions: CacheOptions | undefined,
  ) {}

  get caching(): boolean {
    return this.cacheOptions !== undefined;
  }

  /** The key of a request that may be shared (see {@link shareIdentity}), or `undefined`. */
  keyOf(info: RequestInfo): string | undefined {
    if (!this.dedupe && !this.caching) return undefined;
    const identity = shareIdentity(info);
    return identity === undefined ? undefined : sha256Hex((this.salt ??= `${hex(randomBytes(16))}\n`) + identity);
  }

  cached(key: string, now: number): { value: unknown } | undefined {
    const entry = this.cache?.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.drop(key);
      return undefined;
    }
    return { value: entry.value };
  }

  /**
   * Keeps a response for `ttlMs` when the cache is on and the response allows it (see
   * {@link mayCache}). `headersKnown`: the key was made with the request's headers.
   */
  store(key: string, value: unknown, now: number, res: ResponseLike, headersKnown: boolean): void {
    const options = this.cacheOptions;
    if (!options || !mayCache(res, headersKnown)) return;
    const cache = (this.cache ??= new Map());
    const bytes = sizeOf(res);
    const maxBytes = options.maxBytes ?? 4_194_304;
    this.drop(key);
    if (bytes > maxBytes) return;
    cache.set(key, { value, expiresAt: now + options.ttlMs, bytes });
    this.bytes += bytes;
    const max = options.maxEntries ?? 500;
    // Map keeps insertion order: the first keys are the oldest. The new one fits on its own.
    for (const k of cache.keys()) {
      if (cache.size <= max && this.bytes <= maxBytes) break;
      this.drop(k);
    }
  }

  private drop(key: string): void {
    const entry = this.cache?.get(key);
    if (entry) {
      this.bytes -= entry.bytes;
      this.cache?.delete(key);
    }
  }

  /** The request in flight under `key`. */
  pending(key: string): object | undefined {
    return this.inFlight?.get(key);
  }

  track(key: string, shared: object): void {
    (this.inFlight ??= new Map()).set(key, shared);
  }

  untrack(key: string, shared: object): void {
    if (this.inFlight?.get(key) === shared) this.inFlight.delete(key);
  }

  get size(): number {
    return this.cache?.size ?? 0;
  }
}

/**
 * May this 2xx response be served again from memory? Not with `Cache-Control: no-store`,
 * `no-cache` (it must be revalidated first, which this cache does not do) or `private` (meant
 * for one user's cache), not with `Set-Cookie` (a session or token the server gave this one
 * request: served again, a later caller would get the same session), not with `Vary: *`, and
 * with any other `Vary` only when the request's headers were part of its key (every header
 * is: a request that differs in a header the response varies on has another key). A directive
 * list too long to be honest is not cached.
 */
export function mayCache(res: ResponseLike, headersKnown: boolean): boolean {
  if (res.header('set-cookie') !== undefined) return false;
  const control = res.header('cache-control');
  if (control !== undefined) {
    if (control.length > MAX_DIRECTIVES_CHARS) return false;
    for (const part of control.split(',')) {
      const name = (part.split('=', 1)[0] ?? '').trim().toLowerCase();
      if (name === 'no-store' || name === 'no-cache' || name === 'private') return false;
    }
  }
  const vary = res.header('vary');
  if (vary !== undefined && vary.trim() !== '') {
    if (vary.length > MAX_DIRECTIVES_CHARS || !headersKnown) return false;
    if (vary.split(',').some((name) => name.trim() === '*')) return false;
  }
  return true;
}

/** What a response whose size is not known counts for in the cache's `maxBytes`. */
const UNKNOWN_SIZE = 65_536;

/**
 * A response's size for the cache, in bytes, from what is known without reading or walking
 * it: a string, `ArrayBuffer`, typed array or `Blob` body's own size, else a positive
 * `Content-Length`, else {@link UNKNOWN_SIZE} (a parsed JSON body of a chunked answer, a fetch
 * `Response` whose body is a stream, an empty body).
 */
function sizeOf(res: ResponseLike): number {
  const body = res.body;
  if (typeof body === 'string') return body.length;
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return body.byteLength;
  if (body instanceof Blob) return body.size; // a global in Node >= 18 and every browser
  // A list, a sign or garbage is NaN: not a size.
  const length = Number(res.header('content-length'));
  return length > 0 ? length : UNKNOWN_SIZE;
}

/** A copy each subscriber can consume on its own: fetch `Response`s are cloned, others shared. */
export function copyOf<T>(value: T): T {
  const v = value as { clone?: unknown; bodyUsed?: unknown };
  if (typeof v === 'object' && v !== null && typeof v.clone === 'function' && typeof v.bodyUsed === 'boolean') {
    return (v.clone as () => T).call(v);
  }
  return value;
}
