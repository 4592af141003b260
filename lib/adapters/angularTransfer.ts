/**
 * The record and replay of a server render's responses: the server's limiter remembers the last
 * responses it read, reduced to the headers its provider reads, and the browser's limiter reads
 * them as if it had received them (carried by `TransferState`, see `angularDi.ts`).
 */
import type { HttpHeaders } from '@angular/common/http';
import { InjectionToken } from '@angular/core';
import type { Limiter } from '../core/limiter.js';
import { responseLike, type ResponseLike } from '../core/response.js';
import { toResponseLike } from './angularResponse.js';

/** One response a limiter read, reduced to what its provider reads: for the browser's limiter (TransferState). */
export interface RecordedResponse {
  readonly status: number;
  /**
   * Method and URL without query, ids and any segment that is not a word of a route as `:id`
   * (a path may carry a token): for the provider's choice of buckets.
   */
  readonly method: string;
  readonly url: string;
  /** The headers the provider read (lower-case names), and nothing else. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** When the server read it (its wall clock, epoch ms): an older page's readings are not replayed. */
  readonly at: number;
}

/**
 * Oldest a recorded response may be when the browser reads it: a page is hydrated within
 * seconds of its render. A page served later from a cache carried a wait told then (a 429's
 * `Retry-After`), which every visitor's limiter obeyed in full from its boot.
 */
export const MAX_REPLAY_AGE_MS = 60_000;

/** A render's last responses per limiter (status and headers, unread until needed). */
export type TransferRecorder = Map<
  Limiter,
  Array<{ status: number; headers: HttpHeaders; method: string; url: string; at: number }>
>;

/**
 * @internal The recorder of one render (SSR): provided per application, so a limiter shared by
 * every render (a process-wide `shareLimiter`) carries into a page the responses of that page's
 * render only, never another visitor's.
 */
export const TRANSFER_RECORDER = new InjectionToken<TransferRecorder>('rx-ratelimit: responses of this render');

/** Responses kept per limiter: enough for reads and writes that count against other buckets. */
const KEPT = 4;

/** Notes a response `limiter` read in this render, keeping the last few. */
export function remember(
  where: { recorder: TransferRecorder; method: string; url: string },
  limiter: Limiter,
  status: number,
  headers: HttpHeaders,
) {
  let list = where.recorder.get(limiter);
  if (!list) where.recorder.set(limiter, (list = []));
  list.push({ status, headers, method: where.method, url: routeOf(where.url), at: Date.now() });
  if (list.length > KEPT) list.shift();
}

/** A path segment kept as it is in a page: a word of an API's route (`crm`, `v3`, `graphql.json`, `2024-10`). */
const ROUTE_WORD = /^[\w.~-]{1,40}$/;
/**
 * A token, a key, a hash: 16 characters or more with letters and digits mixed, or with no word
 * separator (`-`, `_`, `.`), as a random string of letters has none. A long route word joined
 * without one is taken for a token too (its replayed reading then counts on another bucket):
 * the page is what must not leak.
 */
const TOKEN_LIKE = /^(?:(?=.*\d)(?=.*[a-z])[\w~-]{16,}|[^-_.]{16,})$/i;

/**
 * @internal `url` (origin and path, no query) as a page may carry it: any path segment that is
 * not a word of a route as `:id` (which providers read as an id). A path may hold a secret of the
 * server's (`/bot<token>/`, a webhook's token) or a visitor's data (an email), which the page
 * would hand to the browser; the words and numbers a provider chooses buckets by stay.
 */
export function routeOf(url: string): string {
  if (!URL.canParse(url)) return '';
  const u = new URL(url);
  const path = u.pathname
    .slice(0, 2048)
    .split('/')
    .map((s) => (s === '' || (ROUTE_WORD.test(s) && !TOKEN_LIKE.test(s)) ? s : ':id'))
    .join('/');
  return (u.origin === 'null' ? '' : u.origin) + path;
}

/**
 * @internal The last responses `limiter` read through an interceptor, oldest first, each
 * reduced to the headers its provider reads (never cookies, never the request's query).
 */
export function recordedResponses(recorder: TransferRecorder, limiter: Limiter): RecordedResponse[] {
  return (recorder.get(limiter) ?? []).map(({ status, headers, method, url, at }) => {
    const seen = new Map<string, string>();
    const res = toResponseLike(status, headers, null);
    const recording: ResponseLike = {
      status,
      header: (name) => {
        const value = res.header(name);
        if (value !== undefined) seen.set(name.toLowerCase(), value.slice(0, 1024));
        return value;
      },
    };
    for (const m of [method, 'POST']) {
      try {
        limiter.provider.read(recording, { method: m, url });
      } catch {
        // A provider that throws reads nothing.
      }
    }
    recording.header('retry-after');
    return { status, method, url, headers: [...seen], at };
  });
}

/** @internal Lets `limiter` read `recorded` as if it had received them, in order. */
export function replayResponses(limiter: Limiter, recorded: readonly RecordedResponse[], now = Date.now()): void {
  for (const r of recorded) {
    // Too old (a page from a cache), or from a clock too far ahead to tell: not this moment's.
    const age = now - r.at;
    if (!(age <= MAX_REPLAY_AGE_MS && age >= -MAX_REPLAY_AGE_MS)) continue;
    const headers = new Map(r.headers.map(([name, value]) => [name, value]));
    limiter.observe(responseLike(r.status, { get: (name: string) => headers.get(name.toLowerCase()) ?? null }), {
      method: r.method,
      url: r.url,
    });
  }
}
