/**
 * What the Angular interceptor tells the app about a misconfigured API, once each: responses
 * that carry none of the rate-limit headers (most often a browser hiding them across origins),
 * and requests that fail with status 0 (most often CORS).
 */
import type { HttpResponse } from '@angular/common/http';
import type { Limiter } from '../core/limiter.js';
import type { RequestInfo } from '../core/request.js';
import type { ResponseLike } from '../core/response.js';
import { toResponseLike } from './angularResponse.js';

/**
 * What {@link RateLimitInterceptorOptions.onMissingHeaders} receives, once per limiter, when
 * the API's responses carry none of the rate-limit headers its provider reads. Carries the key
 * label, never the credential.
 */
export interface MissingHeadersReport {
  /** Host (with port if any) of the last such response's request; `''` when unknown. */
  readonly host: string;
  /** The limiter's provider, e.g. `'pipedrive'`. */
  readonly provider: string;
  /** The limiter's key label (a hash), never the key. */
  readonly key: string;
  /** Successful responses in a row, before any with limit headers, that had none. */
  readonly responses: number;
  /** The header names the provider looked for (lower case), and `retry-after`. */
  readonly expected: readonly string[];
  /** The header names the response did show (lower case). */
  readonly visible: readonly string[];
  /**
   * `true` when the response showed only CORS-safelisted headers (`content-type`,
   * `content-length`, `cache-control`…): what a browser shows of a cross-origin response whose
   * API sends no `Access-Control-Expose-Headers`.
   */
  readonly likelyCors: boolean;
  /** One line for a log: the host, the provider, the headers and what to do. */
  readonly message: string;
}

/**
 * What {@link RateLimitInterceptorOptions.onCorsBlocked} receives, once per origin, when a
 * request through a limiter failed with status 0 in a browser.
 */
export interface CorsBlockedReport {
  /** Origin of the API the request went to, e.g. `'https://api.pipedrive.com'`. */
  readonly origin: string;
  /** Origin of the page: `location.origin`, or the `baseUrl` option's. */
  readonly pageOrigin: string;
  /** The limiter's provider, e.g. `'pipedrive'`. */
  readonly provider: string;
  /** The limiter's key label (a hash), never the key. */
  readonly key: string;
  /** One line for a log: what happened and what to do. */
  readonly message: string;
}

/** Response headers a browser shows across origins without `Access-Control-Expose-Headers`. */
const CORS_SAFELISTED: ReadonlySet<string> = new Set([
  'cache-control',
  'content-language',
  'content-length',
  'content-type',
  'expires',
  'last-modified',
  'pragma',
]);

/** Per limiter (whichever interceptor it is used by): responses without numbers so far, or settled. */
const headerChecks = new WeakMap<Limiter, { blind: number; done: boolean }>();

/**
 * Reads a successful response with the limiter's provider, noting which headers it looks
 * for. Reports once per limiter when `after` of them in a row, before any response with
 * numbers, had none.
 */
export function checkHeaders(
  limiter: Limiter,
  response: HttpResponse<unknown>,
  info: RequestInfo,
  host: string,
  after: number,
  report: (r: MissingHeadersReport) => void,
): void {
  let check = headerChecks.get(limiter);
  if (!check) headerChecks.set(limiter, (check = { blind: 0, done: false }));
  if (check.done || response.status < 200 || response.status >= 300) return;
  const res = toResponseLike(response.status, response.headers, response.body);
  const asked = new Set<string>();
  const recording: ResponseLike = {
    status: res.status,
    body: res.body,
    header: (name) => {
      asked.add(name.toLowerCase());
      return res.header(name);
    },
  };
  let found: boolean;
  try {
    found = limiter.provider.read(recording, info).buckets.length > 0;
  } catch {
    // A user-defined provider that throws is read as "says nothing", as the limiter does.
    found = false;
  }
  if (found) {
    check.done = true;
    return;
  }
  if (++check.blind < after) return;
  check.done = true;
  // Headers the provider reads for writes only (Pipedrive's `x-daily-requests-left` for POST and
  // PUT) must be exposed too, though this response, to a read, did not need them.
  try {
    limiter.provider.read(recording, { ...info, method: 'POST' });
  } catch {
    // As above: nothing more to learn.
  }
  asked.add('retry-after');
  const expected = [...asked];
  const visible = response.headers.keys().map((k) => k.toLowerCase());
  const likelyCors = visible.every((name) => CORS_SAFELISTED.has(name));
  const where = host ? `from ${host}` : 'from this API';
  const why = likelyCors
    ? `Only CORS-safelisted headers were visible (${visible.join(', ') || 'none'}): a browser calling another ` +
      'origin hides the rest unless the API sends'
    : 'Either the API does not send them, or a proxy drops them; across origins, a browser also hides them unless the API sends';
  report({
    host,
    provider: limiter.provider.name,
    key: limiter.key,
    responses: check.blind,
    expected,
    visible,
    likelyCors,
    message:
      `rx-ratelimit: ${check.blind} responses ${where} carried none of the rate-limit headers the ` +
      `"${limiter.provider.name}" limiter (key ${limiter.key}) reads, so it paces by the documented hints ` +
      `and learns of the limit only from 429s. ${why} "Access-Control-Expose-Headers: ${expected.join(', ')}".`,
  });
}

/** Origins already reported as blocked (bounded: a page talks to few origins). */
const corsReported = new Set<string>();

/** Reports, once per origin, a request that failed with status 0 across origins in a browser. */
export function checkCors(
  limiter: Limiter,
  url: URL,
  baseUrl: string | undefined,
  report: (r: CorsBlockedReport) => void,
) {
  const page = (globalThis as { location?: { origin?: unknown } }).location?.origin;
  const pageOrigin = typeof page === 'string' ? page : baseUrl ? new URL(baseUrl).origin : '';
  // No page (Node) or same origin: no CORS; status 0 is the network's doing.
  if (pageOrigin === '' || url.origin === pageOrigin || corsReported.has(url.origin) || corsReported.size >= 64) return;
  corsReported.add(url.origin);
  report({
    origin: url.origin,
    pageOrigin,
    provider: limiter.provider.name,
    key: limiter.key,
    message:
      `rx-ratelimit: a request to ${url.origin} through the "${limiter.provider.name}" limiter (key ${limiter.key}) ` +
      `failed with status 0. In a browser this is most often CORS: the API sent no ` +
      `"Access-Control-Allow-Origin" for ${pageOrigin}, so the browser hid the response, ` +
      'yet the API received the request and counted it against your limit. Allow this origin at the API, ' +
      'or call it through a same-origin proxy that forwards the rate-limit headers.',
  });
}
