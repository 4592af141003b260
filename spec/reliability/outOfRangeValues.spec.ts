/**
 * Server values past what a Date or a safe integer holds: shrunk counterexamples of the
 * exactly-once and bucket-math properties, kept as fixed tests.
 */
import { describe, expect, it } from '@jest/globals';
import { Observable } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import {
  createLimiter,
  isQuotaExhaustedError,
  isRetryLimitError,
  providers,
  rateLimit,
  readIetf,
  responseLike,
} from '../../lib/index.js';

describe('server values past the range of a Date or a safe integer', () => {
  it('a Retry-After past the Date range fails waiting requests with QuotaExhaustedError, not RangeError', () => {
    // exactlyOnce counterexample: procore, maxWaitMs 0, a 429 with `Retry-After: 9007199254740`
    // (seconds: 9.007e15 ms, past the 8.64e15 a Date holds). Building the QuotaExhaustedError's
    // message called `new Date(resumeAt).toISOString()`, which threw RangeError: the queued
    // request got a RangeError (neither its own error nor one of ours).
    const scheduler = new TestScheduler(() => undefined);
    const outcomes: unknown[] = [];
    scheduler.run(() => {
      const limiter = createLimiter({ provider: providers.procore(), key: 'k', scheduler, maxWaitMs: 0 });
      const answer = (status: number, headers: Record<string, string>) =>
        new Observable<unknown>((s) => {
          s.next({ status, headers });
          s.complete();
        });
      answer(429, { 'Retry-After': '9007199254740' })
        .pipe(rateLimit(limiter, { method: 'GET', url: '/a' }, { maxRetries: 0 }))
        .subscribe({ error: (e: unknown) => outcomes.push(e) });
      scheduler.schedule(() => {
        answer(200, {})
          .pipe(rateLimit(limiter, { method: 'GET', url: '/b' }))
          .subscribe({ error: (e: unknown) => outcomes.push(e) });
      }, 1);
    });
    expect(outcomes).toHaveLength(2);
    expect(isRetryLimitError(outcomes[0])).toBe(true); // maxRetries 0: the 429 itself
    expect(isQuotaExhaustedError(outcomes[1])).toBe(true);
    // Since server waits are capped (`maxServerWaitMs`), such a Retry-After is garbage: the wait
    // is the first backoff, well within the Date range.
    expect((outcomes[1] as { resumeAt: number }).resumeAt).toBeLessThanOrEqual(1000);
  });

  it('an IETF reset or window past Number.MAX_SAFE_INTEGER ms is dropped, as parseReset drops it', () => {
    // bucket.properties counterexample: `ratelimit-reset: 253402300799999` (seconds) gave
    // { inMs: 2.5e17 }, a wait no number of ms can hold exactly.
    const legacy = readIetf(responseLike(200, { 'ratelimit-remaining': '0', 'ratelimit-reset': '253402300799999' }));
    expect(legacy).toEqual([{ name: 'default', remaining: 0 }]);
    const current = readIetf(
      responseLike(200, { ratelimit: '"p";r=0;t=99999999999999', 'ratelimit-policy': '"p";q=5;w=99999999999999' }),
    );
    expect(current).toEqual([{ name: 'p', limit: 5, remaining: 0 }]);
    expect(readIetf(responseLike(200, { ratelimit: '"p";r=0;t=1.5' }))).toEqual([
      { name: 'p', remaining: 0, reset: { inMs: 1500 } },
    ]);
  });
});
