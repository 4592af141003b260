/**
 * The record and replay of a server render's responses: the server's limiter remembers the last
 * responses it read, reduced to the headers its provider reads, and the browser's limiter reads
 * them as if it had received them (carried by `TransferState`, see `angularDi.ts`).
 */
import { HttpErrorResponse, type HttpHeaders, type HttpResponse } from '@angular/common/http';
import { InjectionToken } from '@angular/core';
import type { Limiter } from '../core/limiter.js';
import type { Provider, ResponseReading } from '../core/provider.js';
import type { RequestInfo } from '../core/request.js';
import { responseLike, type ResponseLike } from '../core/response.js';
import { toResponseLike } from './angularResponse.js';

/** One response a limiter read, reduced to what its provider reads: for the browser's limiter (TransferState). */
export interface RecordedResponse {
  readonly status: number;
  /**
   * Method and URL without query, any segment that is not a word of a route as `:id` (a path
   * may carry a token or a person's name: see `routeOf`): for the provider's choice of buckets.
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

/**
 * A render's last responses per limiter (status and headers, unread until needed; `raw`: an
 * error response itself, by which the limiter tells what it made of it).
 */
export type TransferRecorder = Map<
  Limiter,
  Array<{ status: number; headers: HttpHeaders; raw?: object; method: string; url: string; at: number }>
>;

/**
 * @internal The recorder of one render (SSR): provided per application, so a limiter shared by
 * every render (a process-wide `shareLimiter`) carries into a page the responses of that page's
 * render only, never another visitor's.
 */
export const TRANSFER_RECORDER = new InjectionToken<TransferRecorder>('rx-ratelimit: responses of this render');

/** Responses kept per limiter: enough for reads and writes that count against other buckets. */
const KEPT = 4;

/** Notes a response (or error response) `limiter` read in this render, keeping the last few. */
export function remember(
  where: { recorder: TransferRecorder; method: string; url: string },
  limiter: Limiter,
  response: HttpResponse<unknown> | HttpErrorResponse,
) {
  let list = where.recorder.get(limiter);
  if (!list) where.recorder.set(limiter, (list = []));
  const { status, headers } = response;
  const at = Date.now();
  const route = { method: where.method, url: routeOf(where.url), at };
  // Only an error's reading is asked for (see `carriesLimits`): a large body of a success is not
  // kept alive to the end of the render for nothing.
  list.push(
    response instanceof HttpErrorResponse
      ? { status, headers, raw: response, ...route }
      : { status, headers, ...route },
  );
  if (list.length > KEPT) list.shift();
}

/**
 * A path segment kept as it is in a page: lower-case words (letters, up to three digits at the
 * end), joined by `_` and at most one `-` (`deals`, `v2`, `rate_limit`, `code-scanning`,
 * `products.json`); a number of up to three digits (an API version: Jira's `/rest/api/3`); an
 * API version (`v1.0`, Shopify's `2024-01`). At most {@link MAX_ROUTE_WORD} characters.
 * Everything else is `:id`: mixed case and digits inside a word (a token of any length), a `.`
 * (`john.doe`), words joined by two `-` or more (a passphrase, `correct-horse-battery-staple`),
 * a longer number (a PIN, a phone number; providers read every number as `:id` anyway).
 */
const ROUTE_WORD =
  /^(?:[a-z]+\d{0,3}(?:_[a-z]+\d{0,3})*(?:-[a-z]+\d{0,3}(?:_[a-z]+\d{0,3})*)?(?:\.json)?|\d{1,3}|v\d{1,3}\.\d{1,3}|\d{4}-\d\d)$/;
/** Longest route word kept (`registration-token`, `task_type_attributes`); longer is `:id`. */
const MAX_ROUTE_WORD = 24;

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
    .map((s) => (s === '' || (s.length <= MAX_ROUTE_WORD && ROUTE_WORD.test(s)) ? s : ':id'))
    .join('/');
  return (u.origin === 'null' ? '' : u.origin) + path;
}

/**
 * @internal The last responses `limiter` read through an interceptor, oldest first, each
 * reduced to the headers its provider reads (never cookies, never the request's query). Of the
 * error responses, only 429s and those the limiter read as a rate limit or a block (GitHub's
 * rate-limit 403, Pipedrive's block page) are kept: see `carriesLimits`.
 */
export function recordedResponses(recorder: TransferRecorder, limiter: Limiter): RecordedResponse[] {
  const kept = (recorder.get(limiter) ?? []).filter(({ status, raw }) => carriesLimits(limiter, status, raw));
  return kept.map(({ status, headers, method, url, at }) => {
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

/**
 * Is a response of `status` one to carry to the browser? A page carries its headers only, and
 * an error response read without its body may read as something else: an ordinary HTML 403
 * (no access to one deal) reads as Pipedrive's block, whose rule takes an HTML 403 it cannot
 * read for the block, and the browser stopped the credential for 15 minutes though the server
 * had not. So an error response is carried only when it is a 429, or when the server's limiter
 * itself read it as a rate limit or a block (`raw`: the response it read): what the browser
 * then makes of its headers is what the server made of the whole.
 */
function carriesLimits(limiter: Limiter, status: number, raw: object | undefined): boolean {
  if (status < 400 || status === 429) return true;
  const outcome = raw === undefined ? undefined : limiter.readingOf(raw)?.outcome;
  return outcome === 'limited' || outcome === 'blocked';
}

/**
 * @internal Lets `limiter` read `recorded` as if it had received them, in order, each as the
 * server would have answered it now (see `asOfNow`). `now` is the browser's clock, `servedAt`
 * the server's when it wrote the page (hostile until checked, like all of the page).
 *
 * A reading's age is told by the server's clock alone: how old it was when the page left
 * (`servedAt - at`), and no older however late the browser's clock says it is. The two clocks
 * differ by any amount (a browser's runs 20 s fast, and `now - at` took that for age: a 429's
 * wait of 29 s was replayed as 9 s), so the page's transit and hydration are not subtracted,
 * which only makes a wait longer. Without a `servedAt` that fits (an older page, a page written
 * by hand) no wait is shortened for that. `elapsedMs`, the time since the page arrived
 * (`performance.now()`, which no one steps), adds to the age: a limiter made 45 s after the page
 * loaded (at its first request, in a lazy route) no longer replays a 30 s wait. The browser's clock
 * still says whether a page is too old to replay (one from a cache).
 */
export function replayResponses(
  limiter: Limiter,
  recorded: readonly RecordedResponse[],
  now = Date.now(),
  servedAt?: unknown,
  elapsedMs = 0,
): void {
  for (const r of recorded) {
    // Too old (a page from a cache), or from a clock too far ahead to tell: not this moment's.
    const sinceRead = now - r.at;
    if (!(sinceRead <= MAX_REPLAY_AGE_MS && sinceRead >= -MAX_REPLAY_AGE_MS)) continue;
    const whenServed = typeof servedAt === 'number' ? servedAt - r.at : NaN;
    // A clock behind the server's makes no reading younger than it was read.
    const served = whenServed >= 0 && whenServed <= MAX_REPLAY_AGE_MS ? whenServed : 0;
    const age = Math.max(0, Math.min(sinceRead, served + Math.max(0, elapsedMs)));
    const info = { method: r.method, url: r.url };
    const res = asOfNow(limiter.provider, r, info, age);
    if (res) limiter.observe(res, info);
  }
}

/**
 * `r` as if received `ageMs` after the server read it: each wait it tells from the moment of
 * the response (`Retry-After: 30`, a reset in seconds left) shortened by that age. Read as it
 * was, a 429 of the render hydrated 25 s later paused the browser for the whole 30 s again.
 * Which numbers are such waits, and in what unit, only the provider knows (Pipedrive's
 * `x-ratelimit-reset` is seconds left, Procore's a Unix time): each number of each header is
 * raised by one and the response read again; a number that moves waits forward by one step,
 * and changes nothing else the provider reads, tells those waits in units of that step.
 * `undefined` when every wait a header tells is over (its figures are of a window that has
 * ended), or when one is not shortened by rewriting its numbers.
 */
function asOfNow(provider: Provider, r: RecordedResponse, info: RequestInfo, ageMs: number): ResponseLike | undefined {
  const headers = new Map(r.headers);
  const read = (h: ReadonlyMap<string, string>) => readWith(provider, r.status, h, info);
  const base = read(headers);
  const waits = relativeWaits(base);
  if (ageMs === 0 || waits.length === 0) return responseWith(r.status, headers);
  const numbers = [...headers].reduce((n, [, value]) => n + (value.match(NUMBER)?.length ?? 0), 0);
  // More numbers than the headers of any API hold (a page written by hand): not read one by one.
  if (numbers > MAX_NUMBERS) return undefined;
  const aged = new Map(headers);
  // The waits some header's number tells (a provider may tell one from its own clock: Pipedrive's
  // daily reset without a `Date`, which is as of now already).
  const told = new Set<number>();
  let largestStep = 0;
  for (const [name, value] of headers) {
    let text = value;
    // Right to left, so that a number rewritten leaves the positions of those before it.
    for (const number of [...value.matchAll(NUMBER)].reverse()) {
      const digits = number[0];
      const raised = new Map(headers).set(name, spliced(value, number.index, digits, String(Number(digits) + 1)));
      const moved = movedWaits(base, read(raised));
      if (moved === undefined) continue;
      for (const k of moved.waits) told.add(k);
      largestStep = Math.max(largestStep, moved.step);
      text = spliced(text, number.index, digits, shortened(digits, ageMs / moved.step));
    }
    aged.set(name, text);
  }
  if (told.size === 0) return responseWith(r.status, headers);
  if ([...told].every((k) => (waits[k] ?? 0) <= ageMs)) return undefined;
  // Each wait must now end when it did, give or take the unit its number is rounded up to.
  const after = relativeWaits(read(aged));
  const agedWell =
    after.length === waits.length &&
    [...told].every((k) => (after[k] ?? Infinity) <= Math.max(0, (waits[k] ?? 0) - ageMs) + largestStep);
  return agedWell ? responseWith(r.status, aged) : undefined;
}

/** Most numbers a recorded response's headers are searched for waits in: a few per header. */
const MAX_NUMBERS = 64;

/** A number in a header's value: `30`, `2.5`, the `t=30` of an IETF `RateLimit`. */
const NUMBER = /\d+(?:\.\d+)?/g;

/** `value` with `digits`, found at `at`, replaced by `by`. */
function spliced(value: string, at: number, digits: string, by: string): string {
  return value.slice(0, at) + by + value.slice(at + digits.length);
}

/**
 * `digits` less `by` units, rounded up at its own precision (a wait up to a unit longer, never
 * shorter, than the server's), and never below 0.
 */
function shortened(digits: string, by: number): string {
  const decimals = digits.includes('.') ? digits.length - digits.indexOf('.') - 1 : 0;
  const scale = 10 ** decimals;
  return (Math.ceil(Math.max(0, Number(digits) - by) * scale) / scale).toFixed(decimals);
}

/**
 * How a number raised by one moved the reading from `before` to `after`: the waits it moved
 * forward (their positions in {@link relativeWaits}), all by one step (ms); `undefined` when it
 * moved none, moved them unevenly, or changed anything else (a window's length, a count). A
 * wait that only shortened was told by the provider's own clock, which ran on between reads.
 */
function movedWaits(
  before: ResponseReading | undefined,
  after: ResponseReading | undefined,
): { readonly step: number; readonly waits: readonly number[] } | undefined {
  if (before === undefined || after === undefined || shapeOf(before) !== shapeOf(after)) return undefined;
  const from = relativeWaits(before);
  let step: number | undefined;
  const waits: number[] = [];
  for (const [k, w] of relativeWaits(after).entries()) {
    const moved = w - (from[k] ?? w);
    if (moved <= 0) continue;
    if (step !== undefined && moved !== step) return undefined;
    step = moved;
    waits.push(k);
  }
  return step === undefined ? undefined : { step, waits };
}

/** A reading without its relative waits, to tell whether a number changed anything else. */
function shapeOf(reading: ResponseReading): string {
  return JSON.stringify(reading, (key, value: unknown) => (key === 'inMs' || key === 'delayMs' ? undefined : value));
}

/** The waits (ms) `reading` tells from the moment of the response: a delay to retry after, resets in so long. */
function relativeWaits(reading: ResponseReading | undefined): number[] {
  if (!reading) return [];
  const waits: number[] = [];
  if (reading.retryAfter && 'delayMs' in reading.retryAfter) waits.push(reading.retryAfter.delayMs);
  for (const b of reading.buckets) if (b.reset && 'inMs' in b.reset) waits.push(b.reset.inMs);
  return waits;
}

/** What `provider` reads of a response with `status` and `headers`; one that throws reads nothing. */
function readWith(
  provider: Provider,
  status: number,
  headers: ReadonlyMap<string, string>,
  info: RequestInfo,
): ResponseReading | undefined {
  try {
    return provider.read(responseWith(status, headers), info);
  } catch {
    return undefined;
  }
}

/** A response of `status` with `headers` (lower-case names), read case-insensitively. */
function responseWith(status: number, headers: ReadonlyMap<string, string>): ResponseLike {
  return responseLike(status, { get: (name: string) => headers.get(name.toLowerCase()) ?? null });
}
