/**
 * TEOS's rolling day shared with another client of the tenant. The server's answer tells when
 * the oldest call it counts leaves the window (`X-Rate-Limit-Reset`), not when the rest do: they
 * leave between then and a day after the answer. That latest time is a bound, not a known wait,
 * so requests queued behind the one that goes at the reset wait for the answers that tell the
 * next resets, and fail before their deadline (`maxWaitMs` after they were queued) only when
 * their wait is known to pass it.
 */
import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, tap } from 'rxjs';
import { createLimiter, providers, rateLimit, type QuotaExhaustedError } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const MIN = 60_000;
const H = 3_600_000;
/** Our requests are queued this long after the run starts (the other client spends before). */
const OURS_AT = 20 * H;
const MAX_WAIT = 8 * H;

interface Outcome {
  /** When it was sent (granted), relative to `OURS_AT`; undefined if never sent. */
  sentAt?: number;
  status?: number;
  error?: QuotaExhaustedError;
  /** When it ended (answered or failed), relative to `OURS_AT`. */
  endedAt?: number;
}

/**
 * A tenant of 300 calls a rolling day and 100 a minute, 20 ms each way. Another client spends
 * at `others` (ms from the start, before `OURS_AT`); then ours queues 150 GETs at once, each
 * with `maxWaitMs` of 8 h.
 */
function run(others: readonly number[]) {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({
      latencyMs: 20,
      teos: { perMinute: 100, perDay: 300 },
      now: () => START + asyncScheduler.now(),
    });
    const api = virtualProvider(engine, asyncScheduler);
    for (const t of others)
      asyncScheduler.schedule(() => api.request('teos', { path: '/other', token: 'tenant' }).subscribe(), t);
    const limiter = createLimiter({ provider: providers.teos(), key: 'tenant', maxWaitMs: MAX_WAIT });
    const outcomes: Outcome[] = [];
    // 429s of ours (the other client's own burst may be refused by the minute: not ours).
    let limited = 0;
    asyncScheduler.schedule(() => {
      for (let i = 0; i < 150; i++) {
        const o: Outcome = {};
        outcomes.push(o);
        const path = `/items/${i}`;
        defer(() => {
          o.sentAt = now() - OURS_AT;
          return api.request('teos', { path, token: 'tenant' }).pipe(tap((r) => r.status === 429 && limited++));
        })
          .pipe(rateLimit(limiter, { method: 'GET', url: path }))
          .subscribe({
            next: (r) => (o.status = r.status),
            error: (e: QuotaExhaustedError) => ((o.error = e), (o.endedAt = now() - OURS_AT)),
            complete: () => (o.endedAt = now() - OURS_AT),
          });
      }
    }, OURS_AT);
    // Long enough for any wait: nothing may still be waiting at the end.
    asyncScheduler.schedule(() => void limiter.close(), OURS_AT + 30 * H);
    return { outcomes, limited: () => limited };
  });
}

const ok = (out: Outcome[]) => out.filter((o) => o.status === 200);
const failed = (out: Outcome[]) => out.filter((o) => o.error !== undefined);

describe('providers.teos: a rolling day another client of the tenant spends too (virtual time)', () => {
  it("requests behind the head wait for the other client's calls ageing out within maxWaitMs, one per reset told: about 103 of 150 served, 0 × 429", () => {
    // 250 calls spread over the 19 hours before ours (one every 4.56 min): 50 slots are free,
    // and one more each time one of those calls ages out, from hour 4 on (53 by hour 8).
    const runOut = run(Array.from({ length: 250 }, (_, i) => Math.floor((i / 250) * 19 * H)));
    const out = runOut.outcomes;
    expect(runOut.limited()).toBe(0);
    expect(ok(out).length).toBeGreaterThanOrEqual(100);
    expect(ok(out).length).toBeLessThanOrEqual(106);
    expect(failed(out)).toHaveLength(150 - ok(out).length);
    // Each later slot is taken when the reset the last answer told comes: the first at hour 4,
    // then one per 4.56 min (never two at once: that would be a 429).
    const late = ok(out)
      .map((o) => o.sentAt as number)
      .filter((t) => t >= 4 * H)
      .sort((a, b) => a - b);
    expect(late[0]).toBeLessThan(4 * H + MIN);
    for (let k = 1; k < late.length; k++) {
      expect((late[k] as number) - (late[k - 1] as number)).toBeGreaterThanOrEqual(4.5 * MIN);
      expect((late[k] as number) - (late[k - 1] as number)).toBeLessThanOrEqual(4.7 * MIN);
    }
    // None failed before its wait was known to pass its deadline (the next reset told past it;
    // `resumeAt` is on the limiter's clock, the scheduler's).
    for (const o of failed(out)) {
      expect(o.error?.name).toBe('QuotaExhaustedError');
      expect(o.endedAt).toBeGreaterThan(7.5 * H);
      expect(o.endedAt).toBeLessThanOrEqual(MAX_WAIT);
      expect(o.error?.resumeAt).toBeGreaterThan(OURS_AT + MAX_WAIT);
      expect(o.error?.resumeAt).toBeLessThan(OURS_AT + MAX_WAIT + 5 * MIN);
    }
  });

  it("the other client's calls in two bursts: when the first burst ages out, the head's answer tells the day's room and the rest go (150 of 150, 0 × 429)", () => {
    // 100 calls 19 h before ours (they leave at hour 5), 150 calls 17 h before (hour 7).
    const runOut = run([...Array<number>(100).fill(H), ...Array<number>(150).fill(3 * H)]);
    const out = runOut.outcomes;
    expect(runOut.limited()).toBe(0);
    expect(ok(out)).toHaveLength(150);
    // 50 at once; the rest from hour 5, not before.
    expect(ok(out).filter((o) => (o.sentAt as number) < H)).toHaveLength(50);
    expect(
      Math.min(...ok(out).map((o) => ((o.sentAt as number) < H ? Infinity : (o.sentAt as number)))),
    ).toBeGreaterThanOrEqual(5 * H);
  });

  it("the other client's calls in one burst: the requests the answers cannot show room for fail at their deadline, not at once on the day's upper bound (0 × 429)", () => {
    // 250 calls 19 h before ours: they all leave at hour 5. The answer of the call sent then
    // tells only the minute (TEOS shows the most constraining period), so nothing tells the day
    // has room: the requests wait, and fail when their 8 h are up.
    const runOut = run(Array<number>(250).fill(H));
    const out = runOut.outcomes;
    expect(runOut.limited()).toBe(0);
    expect(ok(out).length).toBeGreaterThanOrEqual(51);
    for (const o of failed(out)) {
      expect(o.error?.name).toBe('QuotaExhaustedError');
      expect(o.endedAt).toBe(MAX_WAIT);
    }
    expect(out.every((o) => o.endedAt !== undefined)).toBe(true);
  });

  it("the other client's calls a minute old: nothing frees for a day, so the requests fail at once with resumeAt when the oldest ages out (0 × 429)", () => {
    const runOut = run(Array<number>(250).fill(OURS_AT - MIN));
    const out = runOut.outcomes;
    expect(runOut.limited()).toBe(0);
    expect(ok(out)).toHaveLength(50);
    expect(failed(out)).toHaveLength(100);
    for (const o of failed(out)) {
      expect(o.endedAt).toBeLessThan(MIN);
      expect(o.error?.resumeAt).toBeGreaterThanOrEqual(OURS_AT + 24 * H - 2 * MIN);
    }
  });
});
