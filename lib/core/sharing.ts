import { methodOf, type RequestInfo } from './request.js';

/** Settings of the GET response cache (`createLimiter({ cache })`). */
export interface CacheOptions {
  /** How long a response stays fresh, ms. */
  readonly ttlMs: number;
  /** Most responses kept; the oldest goes first. @default 500 */
  readonly maxEntries?: number | undefined;
}

/**
 * Identical GETs in flight at once share one request, and (opt-in) recent GET responses are
 * served from memory: both spend less of the quota, as Procore's and TEOS's docs ask. Per
 * limiter, so per credential: one user's response never reaches another's requests.
 */
export class RequestSharing {
  /**
   * Requests in flight (queued included), opaque here (what `rateLimit` registers). By share
   * key, split so that the usual key, `${method} ${url}`, is never built: GETs and HEADs by
   * their URL (a string the caller already holds), other keys as they are.
   */
  private readonly inFlight = {
    GET: new Map<string, object>(),
    HEAD: new Map<string, object>(),
    other: new Map<string, object>(),
  };
  private readonly cache = new Map<string, { value: unknown; expiresAt: number }>();

  constructor(
    readonly dedupe: boolean,
    private readonly cacheOptions: CacheOptions | undefined,
  ) {}

  get caching(): boolean {
    return this.cacheOptions !== undefined;
  }

  cached(key: string, now: number): { value: unknown } | undefined {
    const entry = this.cache.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.cache.delete(key);
      return undefined;
    }
    return { value: entry.value };
  }

  store(key: string, value: unknown, now: number): void {
    if (!this.cacheOptions) return;
    this.cache.delete(key);
    this.cache.set(key, { value, expiresAt: now + this.cacheOptions.ttlMs });
    const max = this.cacheOptions.maxEntries ?? 500;
    // Map keeps insertion order: the first keys are the oldest.
    for (const k of this.cache.keys()) {
      if (this.cache.size <= max) break;
      this.cache.delete(k);
    }
  }

  /** Drops every cached response (after a write that changes what GETs return, say). */
  clear(): void {
    this.cache.clear();
  }

  /** The request in flight with the same share key as `info` (which has one). */
  pending(info: RequestInfo): object | undefined {
    const [map, key] = this.slot(info);
    return map.get(key);
  }

  track(info: RequestInfo, shared: object): void {
    const [map, key] = this.slot(info);
    map.set(key, shared);
  }

  untrack(info: RequestInfo, shared: object): void {
    const [map, key] = this.slot(info);
    if (map.get(key) === shared) map.delete(key);
  }

  /**
   * Where `shareKeyOf(info)` is kept: keys equal as strings land on the same map and key (a
   * custom key "GET /a" meets the URL "/a" of a GET).
   */
  private slot(info: RequestInfo): [Map<string, object>, string] {
    const custom = info.shareKey;
    if (typeof custom === 'string') {
      if (custom.startsWith('GET ')) return [this.inFlight.GET, custom.slice(4)];
      if (custom.startsWith('HEAD ')) return [this.inFlight.HEAD, custom.slice(5)];
      return [this.inFlight.other, custom];
    }
    return [methodOf(info) === 'HEAD' ? this.inFlight.HEAD : this.inFlight.GET, info.url ?? ''];
  }

  get size(): number {
    return this.cache.size;
  }
}

/** A copy each subscriber can consume on its own: fetch `Response`s are cloned, others shared. */
export function copyOf<T>(value: T): T {
  const v = value as { clone?: unknown; bodyUsed?: unknown };
  if (typeof v === 'object' && v !== null && typeof v.clone === 'function' && typeof v.bodyUsed === 'boolean') {
    return (v.clone as () => T).call(v);
  }
  return value;
}
