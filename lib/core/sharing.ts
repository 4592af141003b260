import type { SchedulerLike, Subscription } from 'rxjs';
import type { ResponseExtractor, ResponseLike } from './response.js';
import { shareIdentity, type RequestInfo } from './request.js';
import { hex, randomBytes } from './hmac.js';
import { sha256Hex } from './sha256.js';
import { parseHttpDate } from '../headers/httpDate.js';
import { sameRawCause } from './errors.js';

/** Settings of the GET response cache (`createLimiter({ cache })`). */
export interface CacheOptions {
  /**
   * How long a response stays fresh, ms: the longest it is kept. A response the server gives a
   * shorter freshness (`Cache-Control: max-age`, `Expires`) is kept only that long.
   */
  readonly ttlMs: number;
  /** Most responses kept; the oldest goes first. @default 500 */
  readonly maxEntries?: number | undefined;
  /**
   * Most bytes of responses kept, all together (per limiter); the oldest go first, and a
   * response larger than this is not kept. A response counts the body the cache holds, measured
   * as it is copied: 2 bytes a character of its strings (keys included), a fixed cost per value,
   * object and array, the size of its bytes and `Blob`s; at least its `Content-Length`. A fetch
   * `Response`'s streamed body is read by the cache (at most this many bytes, for at most its
   * lifetime or 30 s) and counts what it holds; one larger, or slower, is dropped. A body that
   * cannot be measured (a class instance, a stream of another kind) is not kept.
   * @default 4_194_304 (4 MiB: the 500 entries of 8 KiB each)
   */
  readonly maxBytes?: number | undefined;
}

/** Where {@link sharesAs} marks an extractor with what it shares as. */
const SHARES_AS: unique symbol = Symbol('rx-ratelimit.sharesAs');

/**
 * @internal Marks `extract`, an extractor made for one request, as alike to every other marked
 * with `identity`, when identical requests in flight are compared (by extractor, among other
 * things: see `rateLimit`). For an adapter that makes one extractor per request to read that
 * request's own raw answer, the same way for every request of one client: unmarked, no two of
 * its requests would share. Returns `extract`.
 */
export function sharesAs<F extends ResponseExtractor>(extract: F, identity: object): F {
  Object.defineProperty(extract, SHARES_AS, { value: identity });
  return extract;
}

/** Longest `Cache-Control`, `Vary` or `Age` value read; a longer one (hostile, or broken) is not cached. */
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
  private cache: Map<string, CacheEntry> | undefined = undefined;
  /** The size of the responses in `cache`, bytes, as {@link copyOf} measures them. */
  bytes = 0;
  /** Salts the keys, so that a key (in a heap dump, say) cannot be checked against guesses made elsewhere. */
  private salt: string | undefined = undefined;
  /**
   * A number per function (an extractor) that keys of requests in flight hold: held weakly, so
   * an entry goes with its function, and numbered by this limiter, so nothing grows with what
   * callers pass but the counter.
   */
  private functionIds: { readonly ids: WeakMap<object, number>; next: number } | undefined = undefined;

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

  /** A fresh response kept under `key`, as a copy of the caller's own (see {@link copyOf}). */
  cached(key: string, now: number): { value: unknown } | undefined {
    const entry = this.cache?.get(key);
    if (!entry) return undefined;
    const value = entry.expiresAt <= now ? undefined : copyOf(entry.value);
    if (value === undefined) {
      this.drop(key);
      return undefined;
    }
    return { value };
  }

  /**
   * Keeps a copy of a response for `ttlMs`, or less when the server said it goes stale sooner,
   * when the cache is on and the response allows it (see {@link cacheLifetime}) and can be
   * copied (see {@link copyOf}): what a caller does to its own response is never served to the
   * next. The copy's walk measures it, and stops past `maxBytes`: such a body is not kept.
   * `headersKnown`: the key was made with the request's headers.
   */
  store(
    key: string,
    response: unknown,
    now: number,
    res: ResponseLike,
    headersKnown: boolean,
    scheduler: SchedulerLike,
  ): void {
    const options = this.cacheOptions;
    if (!options) return;
    const lifetime = cacheLifetime(res, headersKnown, options.ttlMs, now);
    if (!(lifetime > 0)) return;
    const maxBytes = options.maxBytes ?? 4_194_304;
    // The copy's walk measures the body, and stops past `maxBytes`. A body it does not enter (a
    // class instance, a stream but a fetch `Response`'s) gets no copy, so is not kept: its size
    // is unknown, and any guess (this cache counted 64 KiB) is wrong by any factor, which a bound
    // in bytes cannot afford; an answer not kept costs a request. A response's other fields
    // (axios's `request`, ajax's `xhr`) are the transport's, kept as they are and not counted.
    const tally = { left: maxBytes };
    const value = copyOf(response, tally);
    this.drop(key);
    if (value === undefined) return;
    // A streamed body (a fetch `Response`) keeps every byte its copy is sent: until it has been
    // read to the end within `maxBytes`, its size is a guess, and the entry goes if it is wrong.
    const body = streamOf(value);
    // A list, a sign or garbage is NaN: not a size. A `Content-Length` above what the walk
    // measured (a body held elsewhere too) counts.
    const length = Number(res.header('content-length'));
    const bytes = Math.max(maxBytes - tally.left, length > 0 ? length : body ? UNKNOWN_SIZE : 0);
    if (bytes > maxBytes) return;
    const entry: CacheEntry = { value, expiresAt: now + lifetime, bytes, stop: undefined };
    (this.cache ??= new Map()).set(key, entry);
    this.bytes += bytes;
    if (body) this.measure(key, entry, body, maxBytes, Math.min(lifetime, MAX_MEASURE_MS), scheduler);
    this.evict(maxBytes);
  }

  /** Drops the oldest entries until the cache is within its bounds. */
  private evict(maxBytes: number): void {
    const cache = this.cache;
    if (!cache) return;
    const max = this.cacheOptions?.maxEntries ?? 500;
    // Map keeps insertion order: the first keys are the oldest. The newest fits on its own.
    for (const k of cache.keys()) {
      if (cache.size <= max && this.bytes <= maxBytes) break;
      this.drop(k);
    }
  }

  /**
   * Reads a copy of `entry`'s streamed body to the end, at most `maxBytes` for at most
   * `timeoutMs`: the entry then counts its real size, or, past either bound (or if the body
   * fails), goes, and its body is let go (the caller's own copy is not touched).
   */
  private measure(
    key: string,
    entry: CacheEntry,
    body: { clone(): unknown },
    maxBytes: number,
    timeoutMs: number,
    scheduler: SchedulerLike,
  ): void {
    const kept = entry.value as { body?: { cancel(): Promise<void> } | null };
    const letGo = () => void kept.body?.cancel().catch(() => undefined);
    let probe: ReadableStreamDefaultReader<unknown> | undefined;
    try {
      probe = (body.clone() as { body: ReadableStream<unknown> }).body.getReader();
    } catch {
      this.drop(key);
      letGo();
      return;
    }
    const reader = probe;
    let stopped = false;
    entry.stop = () => {
      stopped = true;
      void reader.cancel().catch(() => undefined);
      letGo();
    };
    // What the kept copy holds grows as the body is read: it counts as it comes, so that bodies
    // read at once never hold more than `maxBytes` together (the oldest go, and stop reading).
    const grown = (size: number): void => {
      if (stopped || size <= entry.bytes) return;
      this.bytes += size - entry.bytes;
      entry.bytes = size;
      this.evict(maxBytes);
    };
    void readSize(reader, maxBytes, timeoutMs, scheduler, grown).then((size) => {
      if (stopped || this.cache?.get(key) !== entry) return;
      entry.stop = undefined;
      if (size === undefined) {
        this.drop(key);
        letGo();
        return;
      }
      this.bytes += size - entry.bytes;
      entry.bytes = size;
      this.evict(maxBytes);
    });
  }

  private drop(key: string): void {
    const entry = this.cache?.get(key);
    if (entry) {
      this.bytes -= entry.bytes;
      this.cache?.delete(key);
      entry.stop?.();
    }
  }

  /**
   * A number that stands for `fn` in keys (see {@link sharesAs}): the same for one function
   * (or for functions that share as one), another for each other, never reused on this limiter.
   */
  idOf(fn: object): number {
    const marked = (fn as { readonly [SHARES_AS]?: object })[SHARES_AS];
    const target = marked ?? fn;
    const table = (this.functionIds ??= { ids: new WeakMap(), next: 0 });
    let id = table.ids.get(target);
    if (id === undefined) {
      id = ++table.next;
      table.ids.set(target, id);
    }
    return id;
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
 * How long this 2xx response may be served again from memory, ms: the lower of `ttlMs` and the
 * freshness the server gave it (RFC 9111 §4.2: {@link serverFreshness}); 0 or less when it must
 * not be kept. Never with `Cache-Control: no-store`, `no-cache` (it must be revalidated first,
 * which this cache does not do) or `private` (meant for one user's cache), not with
 * `Set-Cookie` (a session or token the server gave this one request: served again, a later
 * caller would get the same session), not with `Vary: *` or `Vary: Cookie` (a browser's cookies
 * are not among the headers a request is keyed by), and with any other `Vary` only when
 * the request's headers were part of its key (every header is: a request that differs in a
 * header the response varies on has another key). A directive list too long to be honest is
 * not cached.
 */
export function cacheLifetime(res: ResponseLike, headersKnown: boolean, ttlMs: number, now: number): number {
  if (res.header('set-cookie') !== undefined) return 0;
  const vary = res.header('vary');
  if (vary !== undefined && vary.trim() !== '') {
    if (vary.length > MAX_DIRECTIVES_CHARS || !headersKnown) return 0;
    // `*`, or the cookies: a browser adds them itself, unseen in the request's headers and so
    // in no key (a session changed, the next user got the last one's answer).
    if (
      vary.split(',').some((name) => {
        const n = name.trim().toLowerCase();
        return n === '*' || n === 'cookie';
      })
    )
      return 0;
  }
  return Math.min(ttlMs, serverFreshness(res, now));
}

/** Largest delta-seconds taken (RFC 9111 §1.2.2: 2^31); more is as long, and capped by `ttlMs` anyway. */
const MAX_DELTA_SECONDS = 2_147_483_648;

/** A delta-seconds (RFC 9111 §1.2.2), bare or quoted (a recipient should accept both): digits only. */
const DELTA_SECONDS = /^(?:(\d+)|"(\d+)")$/;

/**
 * A delta-seconds, or `undefined` when it is anything else: a sign, a fraction, an exponent or
 * hex, which `Number()` would take.
 */
function deltaSeconds(text: string | undefined): number | undefined {
  const m = text === undefined || text.length > MAX_DIRECTIVES_CHARS ? null : DELTA_SECONDS.exec(text);
  return m ? Math.min(Number(m[1] ?? m[2]), MAX_DELTA_SECONDS) : undefined;
}

/**
 * The directives of a `Cache-Control` value, as `[lower-case name, value or undefined]`, split
 * on the commas outside quoted strings (so `no-cache="a, max-age=9"` is one directive), in one
 * pass: no regex, so nothing a server sends can make it slow. `undefined` when a quoted string
 * is not closed: what it hides (a `no-store`?) cannot be told.
 */
function directives(control: string): Array<[string, string | undefined]> | undefined {
  const out: Array<[string, string | undefined]> = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i <= control.length; i++) {
    const c = control[i];
    if (quoted) {
      if (c === undefined) return undefined;
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === ',' || c === undefined) {
      const part = control.slice(start, i);
      const eq = part.indexOf('=');
      const name = (eq < 0 ? part : part.slice(0, eq)).trim().toLowerCase();
      if (name !== '') out.push([name, eq < 0 ? undefined : part.slice(eq + 1).trim()]);
      start = i + 1;
    }
  }
  return out;
}

/**
 * How long the server said this response stays fresh, ms from `now` (RFC 9111 §4.2.1, §4.2.3):
 * `max-age` (or a lower `s-maxage`: this cache serves every caller of a limiter, as a shared
 * cache would), else `Expires` less `Date` (or less `now` without a valid `Date`), either less
 * the `Age` a cache on the way counted; of several `max-age`, the lowest (RFC 9111 §4.2.1: the
 * most restrictive). `Infinity` when it said nothing: the caller's `ttlMs` then applies alone,
 * but not after `must-revalidate`, which forbids serving it once stale without asking the server
 * (this cache never asks): 0. Also 0, not to be kept, with `no-store`, `no-cache` or `private`,
 * `max-age=0`, an `Expires` in the past, and any freshness information that is invalid, which
 * RFC 9111 §4.2.1 has a cache take as stale: `max-age=1.5` or `-1`, an `Expires` that is no
 * HTTP-date (`0`, two of them), an `Age` that is no number, a quoted string left open. Every
 * value is bounded before it is read, and a huge `max-age` is just capped by `ttlMs`.
 */
export function serverFreshness(res: ResponseLike, now: number): number {
  const control = res.header('cache-control');
  let maxAge: number | undefined;
  let revalidate = false;
  if (control !== undefined) {
    const list = control.length > MAX_DIRECTIVES_CHARS ? undefined : directives(control);
    if (list === undefined) return 0;
    for (const [name, value] of list) {
      if (name === 'no-store' || name === 'no-cache' || name === 'private') return 0;
      if (name === 'must-revalidate' || name === 'proxy-revalidate') revalidate = true;
      else if (name === 'max-age' || name === 's-maxage') {
        const seconds = deltaSeconds(value);
        if (seconds === undefined) return 0;
        maxAge = Math.min(maxAge ?? Infinity, seconds * 1000);
      }
    }
  }
  let lifetime = maxAge;
  // `Expires` counts only without `max-age` (RFC 9111 §5.3). A list of them (two fields, joined
  // with ", ") is no HTTP-date: as invalid, it is already expired.
  const expires = maxAge === undefined ? res.header('expires') : undefined;
  if (expires !== undefined) {
    // parseHttpDate, not Date.parse: that reads `3000` as the year 3000 and the asctime form in
    // local time; this takes HTTP-dates only, and none longer than 1,000 characters.
    const at = parseHttpDate(expires);
    if (at === undefined) return 0;
    lifetime = at - (parseHttpDate(res.header('date')) ?? now);
  }
  if (lifetime === undefined) return revalidate ? 0 : Infinity;
  const age = res.header('age');
  if (age !== undefined) {
    const seconds = deltaSeconds(age.trim());
    if (seconds === undefined) return 0;
    lifetime -= seconds * 1000;
  }
  return Math.max(0, lifetime);
}

/** A kept response: a copy of its own, until when it is fresh, its size, and what stops measuring it. */
interface CacheEntry {
  readonly value: unknown;
  readonly expiresAt: number;
  bytes: number;
  /** While its streamed body is being measured: stops that and lets the body go. */
  stop: (() => void) | undefined;
}

/** Longest time the cache reads a kept streamed body to learn its size, ms (and at most `ttlMs`). */
const MAX_MEASURE_MS = 30_000;

/** The body of a fetch `Response` not read yet (the response itself, to clone), or `undefined`. */
function streamOf(value: unknown): { clone(): unknown } | undefined {
  const v = value as { clone?: unknown; bodyUsed?: unknown; body?: unknown } | null;
  return typeof v === 'object' &&
    v !== null &&
    typeof v.clone === 'function' &&
    v.bodyUsed === false &&
    typeof ReadableStream !== 'undefined' &&
    v.body instanceof ReadableStream
    ? (v as { clone(): unknown })
    : undefined;
}

/**
 * Bytes read from `reader` to its end, or `undefined` past `maxBytes`, past `timeoutMs` (on
 * `scheduler`) or when it fails; `progress` hears the count after each chunk. The reader is
 * cancelled when done.
 */
async function readSize(
  reader: ReadableStreamDefaultReader<unknown>,
  maxBytes: number,
  timeoutMs: number,
  scheduler: SchedulerLike,
  progress: (size: number) => void,
): Promise<number | undefined> {
  let timer: Subscription | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = scheduler.schedule(() => resolve('timeout'), timeoutMs);
  });
  try {
    let size = 0;
    for (;;) {
      const next = await Promise.race([reader.read(), timedOut]);
      if (next === 'timeout') return undefined;
      if (next.done) return size;
      const chunk = next.value as { byteLength?: unknown };
      if (typeof chunk.byteLength !== 'number') return undefined;
      size += chunk.byteLength;
      if (size > maxBytes) return undefined;
      progress(size);
    }
  } catch {
    return undefined;
  } finally {
    timer?.unsubscribe();
    void reader.cancel().catch(() => undefined);
  }
}

/**
 * What a fetch `Response`'s streamed body without `Content-Length` counts for until it is
 * measured (see `RequestSharing.measure`).
 */
const UNKNOWN_SIZE = 65_536;

/**
 * What a walk of a body may still take, bytes: each part it copies is taken off (see
 * {@link copyData}), and past 0 the body is not copied. So a body's walk is bounded by the
 * cache's `maxBytes`, even one made huge or cyclic (by a transform) to spin it.
 */
interface Tally {
  left: number;
}

/** What a value costs but for its characters and bytes: its slot and header (a boxed number, a string's), bytes. */
const VALUE_BYTES = 16;
/** What an object, array or date costs more, bytes: its header and properties' table (V8: 48 to 64). */
const OBJECT_BYTES = 48;

/** Fields of a response that hold its body: axios `data`, Angular's and `ResponseLike`'s `body`, ajax `response`. */
const BODY_FIELDS = ['data', 'body', 'response'];
/** Fields of a response that hold its headers: axios and Angular `headers`, ajax `responseHeaders`. */
const HEADER_FIELDS = ['headers', 'responseHeaders'];
/** Deepest body copied; a deeper one is not (it is not cached, and is shared as it is). */
const MAX_COPY_DEPTH = 256;

/**
 * A copy of a response that its subscriber can consume and change on its own, or `undefined`
 * when none can be made. A fetch `Response` is cloned (its body can be read once). Any other
 * object keeps its prototype (an Angular `HttpResponse` is still one) and its fields, with its
 * body (`data`, `body`, `response`) copied deeply, its headers (`headers`,
 * `responseHeaders`) copied when they are plain data (axios's; Angular's are immutable), and
 * axios's `config` copied one level down with its headers: so a
 * caller that annotates, sorts or filters its response in place changes no other caller's, and
 * not the cache's. A body of anything but JSON-like data, bytes, `Blob`s and dates (a class
 * instance a transform made, a `Map`) cannot be copied.
 */
export function copyOf<T>(value: T, tally: Tally = { left: Infinity }): T | undefined {
  if (typeof value !== 'object' || value === null) return value;
  const v = value as { clone?: unknown; bodyUsed?: unknown };
  if (typeof v.clone === 'function' && typeof v.bodyUsed === 'boolean') {
    try {
      return (v.clone as () => T).call(v);
    } catch {
      // Its body is already read or locked: no copy of it can be made.
      return undefined;
    }
  }
  const descriptors = Object.getOwnPropertyDescriptors(value) as Record<string, PropertyDescriptor>;
  for (const field of BODY_FIELDS) {
    const d = descriptors[field];
    if (d === undefined) continue;
    if (!('value' in d)) return undefined;
    const copy = copyData(d.value, 0, tally);
    if (copy === UNCOPIABLE) return undefined;
    descriptors[field] = { ...d, value: copy };
  }
  for (const field of HEADER_FIELDS) {
    const d = descriptors[field];
    if (d !== undefined && 'value' in d) descriptors[field] = { ...d, value: copyHeaders(d.value) };
  }
  const config = descriptors['config'];
  if (config !== undefined && 'value' in config) descriptors['config'] = { ...config, value: copyConfig(config.value) };
  return Object.create(Object.getPrototypeOf(value) as object | null, descriptors) as T;
}

/**
 * A copy of an error (what a shared request failed with) for one more of its subscribers, so
 * that what a caller does to its error (axios-retry's `config['axios-retry']`, fields an app
 * attaches, a body it rewrites) reaches no other caller: the same prototype (`instanceof`,
 * `isAxiosError`, our guards still hold) and own fields (message, name, status, stack, code),
 * with the body (`data`, `body`, `response`; Angular's `error`) copied as {@link copyOf} copies a
 * response's (an axios `response` is itself copied so), plain headers copied, and axios's
 * `config` copied one level down, its headers too. The request, the cause and any field that cannot be copied
 * (a class instance) stay shared. An error whose message or name lives outside its own fields (a `DOMException`,
 * a class with private fields behind them) cannot be copied: it is handed on as it is.
 */
export function copyOfError<E>(error: E): E {
  if (typeof error !== 'object' || error === null) return error;
  try {
    const descriptors = Object.getOwnPropertyDescriptors(error) as Record<string, PropertyDescriptor>;
    for (const [field, d] of Object.entries(descriptors)) {
      const v: unknown = d.value;
      if (typeof v !== 'object' || v === null) continue;
      let copy: unknown = v;
      if (BODY_FIELDS.includes(field) || field === 'error') {
        copy = copyData(v, 0);
        // An axios `response` (plain, holding its request and config) is copied as a response;
        // a class instance (Angular's `ProgressEvent` of a network error) stays shared: copied
        // by its fields, its getters would fail.
        if (copy === UNCOPIABLE) copy = Object.getPrototypeOf(v) === Object.prototype ? (copyOf(v) ?? v) : v;
      } else if (HEADER_FIELDS.includes(field)) copy = copyHeaders(v);
      else if (field === 'config') copy = copyConfig(v);
      descriptors[field] = { ...d, value: copy };
    }
    // From V8 12 (Node 22) `stack` is an own accessor that reads the original's internal slot:
    // on the copy it would read nothing, so the copy gets the text itself.
    const stack = descriptors['stack'];
    if (stack?.get !== undefined) {
      descriptors['stack'] = {
        value: (error as { stack?: unknown }).stack,
        writable: true,
        enumerable: stack.enumerable ?? false,
        configurable: true,
      };
    }
    const copy = Object.create(Object.getPrototypeOf(error) as object | null, descriptors) as E & ErrorFields;
    const original = error as E & ErrorFields;
    if (copy.message !== original.message || copy.name !== original.name) return error;
    sameRawCause(copy, original);
    return copy;
  } catch {
    // A getter of its class that needs the original (an internal slot, a private field).
    return error;
  }
}

/** What tells an error, read to check its copy. */
interface ErrorFields {
  readonly message?: unknown;
  readonly name?: unknown;
}

const UNCOPIABLE: unique symbol = Symbol('uncopiable');

/**
 * A deep copy of JSON-like data, bytes, `Blob`s (immutable, kept) and dates; {@link UNCOPIABLE}
 * for anything else, and once `tally` runs out. Each part is taken off `tally` as it is copied,
 * for what the copy keeps alive (strings it shares with the original included): a string or key
 * {@link VALUE_BYTES} and 2 bytes a character (UTF-16), any other value {@link VALUE_BYTES}, an
 * object, array or date {@link OBJECT_BYTES} more, bytes and `Blob`s their size. An estimate:
 * on V8 (Node 20), of parsed JSON bodies of 1 to 2 MB, 0.95 to 4.3 times the heap they took
 * (most 1.2 to 2; more for arrays of wide records, whose keys V8 shares), but 0.6 to 0.7 for
 * objects with thousands of keys or keys each of their own (V8's dictionaries and shapes).
 */
function copyData(value: unknown, depth: number, tally: Tally = { left: Infinity }): unknown {
  if ((tally.left -= VALUE_BYTES + (typeof value === 'string' ? 2 * value.length : 0)) < 0) return UNCOPIABLE;
  if (typeof value !== 'object' || value === null) return typeof value === 'function' ? UNCOPIABLE : value;
  if (depth > MAX_COPY_DEPTH || (tally.left -= OBJECT_BYTES) < 0) return UNCOPIABLE;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return UNCOPIABLE;
    const out: unknown[] = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      const item = copyData(value[i], depth + 1, tally);
      if (item === UNCOPIABLE) return UNCOPIABLE;
      out[i] = item;
    }
    return out;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto === Object.prototype || proto === null) {
    const out = Object.create(proto) as Record<string, unknown>;
    for (const name of Object.keys(value)) {
      tally.left -= VALUE_BYTES + 2 * name.length;
      const item = copyData((value as Record<string, unknown>)[name], depth + 1, tally);
      if (item === UNCOPIABLE) return UNCOPIABLE;
      // Defined, not assigned: a `__proto__` key of a JSON body stays a key.
      Object.defineProperty(out, name, { value: item, writable: true, enumerable: true, configurable: true });
    }
    return out;
  }
  if (value instanceof Date) return new Date(value.getTime());
  if (typeof Blob !== 'undefined' && value instanceof Blob) return (tally.left -= value.size) < 0 ? UNCOPIABLE : value;
  const bytes = value instanceof ArrayBuffer;
  if (!bytes && !ArrayBuffer.isView(value)) return UNCOPIABLE;
  // A view but a Uint8Array is cloned with its whole buffer.
  if ((tally.left -= (bytes || value instanceof Uint8Array ? value : value.buffer).byteLength) < 0) return UNCOPIABLE;
  if (bytes) return value.slice(0);
  if (value instanceof Uint8Array) {
    // Node's Buffer included: the bytes copied, the prototype kept.
    const out = new Uint8Array(value);
    return Object.setPrototypeOf(out, proto as object) as unknown;
  }
  return structuredClone(value);
}

/**
 * Headers a caller may change (a plain object, axios's `AxiosHeaders`: names to strings or
 * lists), copied with their prototype; other containers (Angular's immutable `HttpHeaders`)
 * as they are.
 */
/**
 * axios's `config` (of a response or an error), copied one level down with its headers: a
 * caller that changes its own (axios-retry marks it, an app sets a header on it) changes no
 * other caller's, nor the cache's. Anything but a plain object is kept.
 */
function copyConfig(config: unknown): unknown {
  if (typeof config !== 'object' || config === null) return config;
  // Plain, or without a prototype (axios 1.x makes its configs so).
  const proto = Object.getPrototypeOf(config) as object | null;
  if (proto !== Object.prototype && proto !== null) return config;
  const out = Object.assign(Object.create(proto) as Record<string, unknown>, config);
  if ('headers' in out) out['headers'] = copyHeaders(out['headers']);
  return out;
}

function copyHeaders(headers: unknown): unknown {
  if (typeof headers !== 'object' || headers === null) return headers;
  const entries = Object.entries(headers);
  const proto = Object.getPrototypeOf(headers) as object | null;
  // A class whose state is not in its own fields (a WHATWG `Headers`) is kept.
  if (proto !== Object.prototype && proto !== null && entries.length === 0) return headers;
  const plain = (x: unknown) => x === null || (typeof x !== 'object' && typeof x !== 'function');
  if (!entries.every(([, v]) => plain(v) || (Array.isArray(v) && v.every(plain)))) return headers;
  const out = Object.create(proto) as Record<string, unknown>;
  for (const [name, v] of entries)
    Object.defineProperty(out, name, {
      value: Array.isArray(v) ? [...(v as unknown[])] : v,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  return out;
}
