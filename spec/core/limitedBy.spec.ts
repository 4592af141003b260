/** A 429 that names the buckets it throttled by holds those only; names it made up are ignored. */
import { describe, expect, it } from '@jest/globals';
import { defer, map, timer } from 'rxjs';

import { createLimiter, defineProvider, rateLimit, readRetryAfter, responseLike } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

let keys = 0;

/**
 * Requests to `/a`, `/b` and `/c` count against buckets of those names; the first `/a` gets a
 * 429 (Retry-After 10 s) naming `by`.
 */
function run(by: readonly string[]) {
  return inVirtualTime(({ now }) => {
    const provider = defineProvider({
      name: 'named',
      buckets: (req) => [{ name: (req.url ?? '/a').slice(1), limit: 100, windowMs: 60_000 }],
      read: (res) =>
        res.status === 429
          ? { outcome: 'limited', buckets: [], limitedBy: by, ...readRetryAfter(res) }
          : { outcome: 'ok', buckets: [] },
    });
    const limiter = createLimiter({ provider, key: `by${++keys}` });
    let refused = false;
    const request = (url: string) =>
      defer(() => {
        const status = url === '/a' && !refused ? 429 : 200;
        refused ||= status === 429;
        return timer(10).pipe(map(() => responseLike(status, status === 429 ? { 'Retry-After': '10' } : {})));
      }).pipe(rateLimit(limiter, { method: 'GET', url }));
    const done: Record<string, number> = {};
    const send = (url: string, as = url) =>
      request(url).subscribe(() => {
        done[as] = now();
      });
    // One request on each bucket, the one to `/a` refused; 100 ms in, after that 429 came back,
    // one more to `/b` and one to `/c`.
    ['/a', '/b', '/c'].forEach((url) => send(url, `${url} first`));
    timer(100).subscribe(() => ['/b', '/c'].forEach((url) => send(url)));
    return { done };
  });
}

describe('limitedBy: the buckets a 429 names', () => {
  it('several names hold each of those buckets; the others go on', () => {
    const { done } = run(['a', 'b', 'made-up']);
    expect(done['/c']).toBeLessThan(200);
    expect(done['/a first']).toBeGreaterThanOrEqual(10_000);
    expect(done['/b']).toBeGreaterThanOrEqual(10_000);
  });

  it('no name of a bucket we have: the whole limiter pauses', () => {
    const { done } = run(['made-up']);
    expect(done['/c']).toBeGreaterThanOrEqual(10_000);
  });
});
