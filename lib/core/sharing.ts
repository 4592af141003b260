import type { Observable } from 'rxjs';

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
  private readonly inFlight = new Map<string, Observable<unknown>>();
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

  pending(key: string): Observable<unknown> | undefined {
    return this.inFlight.get(key);
  }

  track(key: string, shared: Observable<unknown>): void {
    this.inFlight.set(key, shared);
  }

  untrack(key: string, shared: Observable<unknown>): void {
    if (this.inFlight.get(key) === shared) this.inFlight.delete(key);
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
