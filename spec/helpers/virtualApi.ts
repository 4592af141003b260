import { Observable, Subscription, type SchedulerLike, type Subscriber } from 'rxjs';
import { responseLike, type ResponseLike } from '../../lib/index.js';

/** One request as the virtual server saw it. */
export interface Hit {
  readonly at: number;
  readonly status: number;
  readonly window: number;
  readonly method: string;
}

export interface VirtualApiOptions {
  /** Requests per window; a function of server time lets the limit change mid-run. */
  readonly limit: number | ((serverNow: number) => number);
  readonly windowMs: number;
  /** Time from the request's arrival (when it is counted) to its response. @default 10 */
  readonly latencyMs?: number;
  /** Time from subscription to arrival of the `i`th request subscribed (0-based). @default 0 */
  readonly uplinkMs?: (i: number) => number;
  /** Server clock minus client clock. @default 0 */
  readonly skewMs?: number;
  /** Send a `Date` header. @default true */
  readonly dateHeader?: boolean;
  /** Override the answer for a request (return undefined to answer normally). */
  readonly override?: (n: number, serverNow: number) => { status: number; headers: Record<string, string> } | undefined;
  /** Deliver 4xx/5xx as errors (axios style) instead of values (fetch style). @default false */
  readonly errorsAsThrows?: boolean;
}

/**
 * A fixed-window API in virtual time: counts requests per window on the server's clock and
 * answers with `X-RateLimit-Limit/-Remaining/-Reset` (unix seconds) and 429 past the limit.
 */
export function virtualApi(scheduler: SchedulerLike, opts: VirtualApiOptions) {
  const hits: Hit[] = [];
  const counts = new Map<number, number>();
  const latency = opts.latencyMs ?? 10;
  const skew = opts.skewMs ?? 0;
  const limitAt = (t: number) => (typeof opts.limit === 'function' ? opts.limit(t) : opts.limit);
  let n = 0;
  let sent = 0;

  const request = (method = 'GET'): Observable<ResponseLike> =>
    new Observable<ResponseLike>((subscriber) => {
      const up = opts.uplinkMs?.(sent++) ?? 0;
      if (up <= 0) return arrive(subscriber, method);
      const trip = new Subscription();
      trip.add(scheduler.schedule(() => void trip.add(arrive(subscriber, method)), up));
      return trip;
    });

  /** The request reaches the server: counted, answered `latency` later. */
  const arrive = (subscriber: Subscriber<ResponseLike>, method: string): (() => void) => {
    const serverNow = scheduler.now() + skew;
    const window = Math.floor(serverNow / opts.windowMs);
    const count = (counts.get(window) ?? 0) + 1;
    counts.set(window, count);
    const limit = limitAt(serverNow);
    const resetSec = Math.ceil(((window + 1) * opts.windowMs) / 1000);
    const base: Record<string, string> = {
      'X-RateLimit-Limit': String(limit),
      'X-RateLimit-Remaining': String(Math.max(0, limit - count)),
      'X-RateLimit-Reset': String(resetSec),
    };
    if (opts.dateHeader !== false) base['Date'] = new Date(serverNow).toUTCString();
    const custom = opts.override?.(++n, serverNow);
    let status = count > limit ? 429 : 200;
    let headers = base;
    if (custom) {
      status = custom.status;
      headers = { ...(opts.dateHeader !== false ? { Date: base['Date']! } : {}), ...custom.headers };
    } else if (status === 429) {
      headers = { ...base, 'Retry-After': String(Math.max(0, resetSec - Math.floor(serverNow / 1000))) };
    }
    hits.push({ at: scheduler.now(), status, window, method });
    const res = responseLike(status, headers, { n });
    const sub = scheduler.schedule(() => {
      if (opts.errorsAsThrows && status >= 400) {
        subscriber.error(Object.assign(new Error(`HTTP ${status}`), { status, headers, isHttpError: true }));
        return;
      }
      subscriber.next(res);
      subscriber.complete();
    }, latency);
    return () => sub.unsubscribe();
  };

  /** Requests per server window, by window index. */
  const perWindow = () => {
    const m = new Map<number, number>();
    for (const h of hits) m.set(h.window, (m.get(h.window) ?? 0) + 1);
    return m;
  };

  return { request, hits, perWindow, count429: () => hits.filter((h) => h.status === 429).length };
}
