/**
 * A 429 whose wait names a time long before the request was even sent (a `Retry-After` date of
 * 1970 or 2001, a reset of `999999999` unix seconds: a broken proxy, a server's default): no
 * window that refused the request can have ended then, so the time says nothing. Obeyed as
 * "now", the request went straight back into the window that had just refused it, one more 429
 * (which TEOS counts, pushing its reset away, and Pipedrive counts toward its block). It backs
 * off instead, as after a 429 that tells no wait. A time that passed while the answer was on its
 * way (the window ended meanwhile) still means "now". Virtual time.
 */
import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, Observable } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

/** The server's clock: virtual time from a day in 2026 (its `Date` headers say so). */
const EPOCH = Date.UTC(2026, 10, 23, 12, 0, 0);

/**
 * One GET through `rateLimit` against a TEOS server (a rolling minute of 1,000 calls, paced
 * evenly: one every 60 ms) whose first answer is a 429 with `headers` (and its `Date`), then
 * 200s; each answer 20 ms after the send. Returns the send times.
 */
function sendsAfter429(headers: Record<string, string>): number[] {
  return inVirtualTime(({ now }) => {
    const limiter = createLimiter({
      provider: providers.teos({ hints: { minute: { limit: 1000 } } }),
      key: 'stale-wait',
      random: () => 0,
      backoffBaseMs: 1000,
    });
    const sends: number[] = [];
    const server = new Observable<{ status: number; headers: Record<string, string> }>((s) => {
      sends.push(now());
      const first = sends.length === 1;
      const t = asyncScheduler.schedule(() => {
        const date = new Date(EPOCH + now()).toUTCString();
        s.next(
          first
            ? {
                status: 429,
                headers: { Date: date, 'X-Rate-Limit-Limit': '1m', 'X-Rate-Limit-Remaining': '0', ...headers },
              }
            : { status: 200, headers: { Date: date } },
        );
        s.complete();
      }, 20);
      return () => t.unsubscribe();
    });
    defer(() => server)
      .pipe(rateLimit(limiter, { method: 'GET', url: '/api/v1/items' }))
      .subscribe();
    return sends;
  });
}

describe('a 429 whose wait names a time long before the request was sent', () => {
  it.each([
    ['X-Rate-Limit-Reset in 2001', { 'X-Rate-Limit-Reset': '2001-09-09T01:46:40.0000000Z' }],
    ['X-Rate-Limit-Reset of 999999999 (2001, in unix seconds)', { 'X-Rate-Limit-Reset': '999999999' }],
    ['Retry-After: a date in 1970', { 'Retry-After': 'Thu, 01 Jan 1970 00:00:01 GMT' }],
  ])('%s: not sent again at the next pacing slot, but after the backoff', (_, headers) => {
    const sends = sendsAfter429(headers);
    expect(sends).toHaveLength(2);
    // The 429 came back at 20 ms; the first backoff is 1 s times a jitter in [0.5, 1] (here
    // 0.5). Obeyed as "now", the request went at the next pacing slot, 60 ms after the first.
    expect(sends[1]).toBeGreaterThanOrEqual(20 + 500);
  });
});
