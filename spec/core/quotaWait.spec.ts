/**
 * A quota bucket (a daily budget, a rolling 24 hours) is a bucket like any other: when its next
 * slot frees within `maxWaitMs`, a request waits for it; only when it does not does the request
 * fail at once with `QuotaExhaustedError` and `resumeAt`, the moment that slot frees. Virtual
 * time, the simulator's TEOS and Pipedrive.
 */
import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, catchError, from, map, mergeMap, of, timer } from 'rxjs';
import {
  createLimiter,
  isQuotaExhaustedError,
  providers,
  rateLimit,
  type QuotaExhaustedError,
} from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { prng } from '../reliability/arbitraries.js';

const DAY_MS = 86_400_000;

describe('quota buckets wait when their next slot frees within maxWaitMs', () => {
  /**
   * TEOS at timeScale 60: a rolling minute of 1 s (100 calls) and a rolling day of 1,440 s
   * (300 calls here, so the day binds). 500 GETs from 30 streams. TEOS's headers give the
   * period and what is left, never the count, so the day's limit is a hint, as a user who knows
   * their plan sets it.
   */
  function teosRun(maxWaitMs: number) {
    return inVirtualTime(({ now }) => {
      const engine = createSimulatorEngine({
        latencyMs: 20,
        timeScale: 60,
        teos: { perDay: 300, headersAfter: 1 },
        now: () => asyncScheduler.now(),
      });
      const api = virtualProvider(engine, asyncScheduler);
      const provider = providers.teos({
        hints: { minute: { windowMs: 1000, pacing: 'burst' }, day: { limit: 300, windowMs: 1_440_000 } },
      });
      const limiter = createLimiter({ provider, key: 'teos-key', maxWaitMs });
      const ok: number[] = [];
      const sentAt: number[] = [];
      const refused: QuotaExhaustedError[] = [];
      const other: unknown[] = [];
      limiter.events$.subscribe((e) => {
        if (e.type === 'admitted') sentAt.push(e.at);
        if (process.env['RXRL_TRACE'] && e.type !== 'admitted') console.log(e.at, JSON.stringify(e).slice(0, 300));
      });
      if (process.env['RXRL_TRACE'])
        for (const t of [2500, 1_439_999, 1_440_000])
          asyncScheduler.schedule(() => console.log(t, JSON.stringify(limiter.snapshot.buckets)), t);
      from(Array.from({ length: 500 }, (_, i) => i))
        .pipe(
          mergeMap((i) => {
            const path = `/api/v1/items/${i}`;
            return api.request('teos', { method: 'GET', path, token: 'teos-key' }).pipe(
              rateLimit(limiter, { method: 'GET', url: path }),
              catchError((e: unknown) => {
                if (isQuotaExhaustedError(e)) refused.push(e);
                else other.push(e);
                return of(undefined);
              }),
            );
          }, 30),
        )
        .subscribe((r) => {
          if (r?.status === 200) ok.push(now());
        });
      return { ok, refused, other, sentAt, stats: () => Object.values(engine.stats().teos)[0] };
    });
  }

  it('TEOS: the 200 GETs past a binding rolling day wait for the oldest calls to age out, then all 500 succeed', () => {
    const out = teosRun(30 * 60_000);
    expect(out.refused).toEqual([]);
    expect(out.other).toEqual([]);
    expect(out.ok).toHaveLength(500);
    expect(out.stats()).toMatchObject({ ok: 500, limited: 0 });
    // The 301st call went once the first had left the rolling day, not before.
    const sorted = [...out.sentAt].sort((a, b) => a - b);
    expect((sorted[300] ?? 0) - (sorted[0] ?? 0)).toBeGreaterThanOrEqual(1_440_000);
  });

  it('TEOS: with a maxWaitMs shorter than the age-out, the 200 fail at once with resumeAt when the oldest call ages out', () => {
    const out = teosRun(60_000);
    expect(out.other).toEqual([]);
    expect(out.ok).toHaveLength(300);
    expect(out.refused).toHaveLength(200);
    expect(out.stats()).toMatchObject({ ok: 300, limited: 0 });
    const first = Math.min(...out.sentAt);
    for (const e of out.refused) {
      expect(e.bucket).toBe('day');
      // When the oldest counted call leaves the window (plus the limiter's guard), not a day away.
      expect(e.resumeAt).toBeGreaterThanOrEqual(first + 1_440_000);
      expect(e.resumeAt).toBeLessThanOrEqual(first + 1_440_000 + 1000);
      expect(e.message).toMatch(/more than maxWaitMs 60 s/);
    }
  });

  /**
   * TEOS's day compressed to 8 s (the minute never binds: 100 per 5.6 ms, hinted as such), 300
   * calls in it, the server's clock as ours: 500 GETs from 20 streams, started `startMs` in,
   * each call's trips each way `delay()` longer than the 20-ms latency. The makespan runs from
   * the start to the last answer.
   */
  function teosDay(startMs: number, delay?: () => number) {
    const scale = DAY_MS / 8000;
    return inVirtualTime(({ now }) => {
      const engine = createSimulatorEngine({
        latencyMs: 20,
        timeScale: scale,
        teos: { perMinute: 100, perDay: 300, headersAfter: 1 },
        now: () => asyncScheduler.now(),
      });
      const api = virtualProvider(engine, asyncScheduler);
      const provider = providers.teos({
        hints: { minute: { windowMs: 60_000 / scale, pacing: 'burst' }, day: { limit: 300, windowMs: 8000 } },
      });
      const limiter = createLimiter({ provider, key: 'teos-key', maxWaitMs: 60_000 });
      let last = 0;
      const failed: unknown[] = [];
      const trip = <T>(value: T) => (delay ? timer(delay()).pipe(map(() => value)) : of(value));
      asyncScheduler.schedule(() => {
        from(Array.from({ length: 500 }, (_, i) => i))
          .pipe(
            mergeMap((i) => {
              const path = `/api/v1/items/${i}`;
              const call = trip(path).pipe(
                mergeMap(() => api.request('teos', { method: 'GET', path, token: 'teos-key' })),
                mergeMap(trip),
              );
              return call.pipe(rateLimit(limiter, { method: 'GET', url: path }));
            }, 20),
          )
          .subscribe({ next: () => (last = now() - startMs), error: (e: unknown) => failed.push(e) });
      }, startMs);
      return { failed, stats: () => Object.values(engine.stats().teos)[0], makespan: () => last };
    });
  }

  it('TEOS: a rolling day that binds frees at our oldest calls leaving it, not at a reset read late (≤ 1.03 × the least time, any phase)', () => {
    // The run starting anywhere in a second. The answers of the first 300 come back within a
    // few round trips, often all in one second of the server's: `Date` then leaves the offset
    // unsure by up to a second, and the server's reset (an instant of its clock) is read that
    // much late, lest a server clock behind ours end the wait early. Every call the server
    // counts is ours, so our own log times when each leaves the window.
    for (const phaseMs of [0, 137, 402, 655, 871, 990]) {
      const out = teosDay(phaseMs);
      expect(out.failed).toEqual([]);
      expect(out.stats()).toMatchObject({ ok: 500, limited: 0 });
      // The 200 past the day's 300 go as the first 200 leave it, 20 streams a round trip at a time.
      expect(out.makespan()).toBeLessThanOrEqual(1.03 * (8000 + 10 * 20));
    }
  });

  it('TEOS: a period no hint names slides like the day, and answers that overtake each other hold nothing (jittered round trips, ≤ 1.03 × the least time)', () => {
    // The minute hinted as 5.56 ms, which the server names "6ms": the readings of that period
    // make a bucket of their own. Every TEOS period is a rolling window; taken as a fixed one,
    // each time its reset passed with the server showing the day instead, all 20 streams
    // waited for one request to come back. With jitter, a later call can reach the server
    // first: the earlier one's answer then reads 0 left with nobody but us counted, which must
    // not hold the day until its reset read as late as `Date` allows.
    for (let seed = 1; seed <= 10; seed++) {
      const random = prng(seed);
      // Each way takes 0–9 ms more than the server's 20-ms answer: round trips of 20–38 ms.
      const out = teosDay(Math.floor(random() * 1000), () => Math.floor(random() * 10));
      expect(out.failed).toEqual([]);
      expect(out.stats()).toMatchObject({ ok: 500, limited: 0 });
      // The 200 past the day's 300 go as the first 200 leave it, at the longest round trip.
      expect(out.makespan()).toBeLessThanOrEqual(1.03 * (8000 + 10 * 38));
    }
  });

  /** Pipedrive's daily POST budget (5 here) spent 10 minutes before midnight UTC; 8 POSTs. */
  function pipedriveNearMidnight(maxWaitMs: number) {
    return inVirtualTime(({ now }) => {
      const engine = createSimulatorEngine({
        latencyMs: 20,
        pipedrive: { plan: 'advanced', dailyLimit: 5 },
        now: () => asyncScheduler.now(),
      });
      const api = virtualProvider(engine, asyncScheduler);
      const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'advanced' }), key: 'pd-key', maxWaitMs });
      const ok: number[] = [];
      const refused: QuotaExhaustedError[] = [];
      const other: unknown[] = [];
      asyncScheduler.schedule(
        () => {
          from(Array.from({ length: 8 }, (_, i) => i))
            .pipe(
              mergeMap((i) => {
                const path = `/v1/deals`;
                return api.request('pipedrive', { method: 'POST', path, token: 'pd-key' }).pipe(
                  rateLimit(limiter, { method: 'POST', url: path, idempotencyKey: `deal-${i}` }),
                  catchError((e: unknown) => {
                    if (isQuotaExhaustedError(e)) refused.push(e);
                    else other.push(e);
                    return of(undefined);
                  }),
                );
              }, 2),
            )
            .subscribe((r) => {
              if (r?.status === 200) ok.push(now());
            });
        },
        DAY_MS - 10 * 60_000,
      );
      return { ok, refused, other, stats: () => Object.values(engine.stats().pipedrive)[0] };
    });
  }

  it('Pipedrive: POSTs past the daily budget 10 minutes before midnight UTC wait for it and succeed', () => {
    const out = pipedriveNearMidnight(30 * 60_000);
    expect(out.refused).toEqual([]);
    expect(out.other).toEqual([]);
    expect(out.ok).toHaveLength(8);
    expect(out.ok.filter((t) => t >= DAY_MS)).toHaveLength(3);
    expect(out.stats()).toMatchObject({ ok: 8, limited: 0 });
  });

  it('Pipedrive: with maxWaitMs of 5 minutes they fail at once, resumeAt at midnight UTC', () => {
    const out = pipedriveNearMidnight(5 * 60_000);
    expect(out.other).toEqual([]);
    expect(out.ok).toHaveLength(5);
    expect(out.refused).toHaveLength(3);
    for (const e of out.refused) {
      expect(e.bucket).toBe('daily');
      expect(e.resumeAt).toBeGreaterThanOrEqual(DAY_MS);
      expect(e.resumeAt).toBeLessThanOrEqual(DAY_MS + 1000);
      expect(e.message).toMatch(/a wait of 10 min( \d+ s)?, more than maxWaitMs 5 min/);
    }
    expect(out.stats()).toMatchObject({ ok: 5, limited: 0 });
  });
});
