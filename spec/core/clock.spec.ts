import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { SkewEstimator } from '../../lib/core/clock.js';
import {
  createLimiter,
  createLimiterPool,
  providers,
  responseLike,
  type Limiter,
  type LimiterPoolSnapshot,
  type Permit,
} from '../../lib/index.js';

const date = (ms: number) => new Date(ms).toUTCString();
const T = Date.UTC(2026, 10, 23, 12, 0, 0);

describe('SkewEstimator', () => {
  it('reads synchronized clocks as 0 although Date drops the milliseconds', () => {
    const skew = new SkewEstimator();
    // Server stamps at T+450 ms, which its Date header shows as T.
    skew.observe(date(T + 450), T + 470, T + 430);
    expect(skew.offsetMs).toBe(0);
    expect(skew.toLocal(T + 60_000)).toBe(T + 60_000);
  });

  it.each([30_000, -30_000, 3_600_000, -3_600_000])(
    'bounds an offset of %i ms from below, to within the latency',
    (offset) => {
      const skew = new SkewEstimator();
      for (let i = 0; i < 20; i++) {
        const sent = T + i * 137; // requests at different phases within the second
        skew.observe(date(sent + 5 + offset), sent + 10, sent);
      }
      expect(skew.offsetMs).toBeLessThanOrEqual(offset);
      expect(offset - skew.offsetMs).toBeLessThanOrEqual(10);
    },
  );

  it('reads a server instant no earlier than the truth less the tolerance while Date cannot tell a clock behind ours', () => {
    // The truth: the server's clock 300 ms behind ours. Answers stamped within one of its
    // seconds cannot tell that from clocks that agree: the interval holds 0.
    const behind = -300;
    const skew = new SkewEstimator(32, 50);
    for (let i = 0; i < 5; i++) {
      const sent = T + 350 + i * 20; // the server's clock reads T+50 … T+130: its second T
      skew.observe(date(sent + 5 + behind), sent + 10, sent);
    }
    expect(skew.lowerMs).toBeLessThanOrEqual(0);
    expect(skew.upperMs).toBeGreaterThanOrEqual(0);
    // The server's instant T+5 s is T+5.3 s on our clock: read at most 50 ms before it.
    expect(skew.toLocal(T + 5000)).toBeGreaterThanOrEqual(T + 5000 - behind - 50);
    expect(skew.heldBackMs).toBeGreaterThan(0);
    // An answer stamped just after its second ticked over pins the offset: read with none, as
    // before, once the lower bound is within the tolerance of 0.
    const synced = new SkewEstimator(32, 50);
    synced.observe(date(T + 990), T + 995, T + 985);
    expect(synced.heldBackMs).toBeGreaterThan(0);
    synced.observe(date(T + 1004), T + 1010, T + 1000);
    expect(synced.toLocal(T + 5000)).toBe(T + 5000);
    expect(synced.heldBackMs).toBe(0);
  });

  it('starts again when the server clock is stepped', () => {
    const skew = new SkewEstimator();
    skew.observe(date(T + 30_000), T + 10, T);
    skew.observe(date(T + 1000), T + 1010, T + 1000);
    expect(skew.offsetMs).toBe(0);
  });

  it('one Date that disagrees with the answers before it is not taken; two in a row are (a stepped clock)', () => {
    const skew = new SkewEstimator();
    const answer = (ms: number, serverAhead: number) => skew.observe(date(ms + 5 + serverAhead), ms + 10, ms);
    for (let i = 0; i < 20; i++) answer(T + i * 137, 0);
    expect(skew.offsetMs).toBe(0);
    // A cached 429, or a gateway's clock: stamped 20 hours ago. Alone, it changes nothing…
    const stale = -20 * 3_600_000;
    answer(T + 3_000, stale);
    expect(skew.offsetMs).toBe(0);
    expect(skew.toLocal(T + 1_800_000)).toBe(T + 1_800_000);
    // … nor when another one like it comes after an answer that agrees with the rest.
    answer(T + 3_100, 0);
    answer(T + 3_200, stale);
    expect(skew.offsetMs).toBe(0);
    // Two in a row that agree with each other: the server's clock was stepped.
    answer(T + 3_300, stale);
    expect(skew.offsetMs).toBeLessThanOrEqual(stale);
    expect(stale - skew.offsetMs).toBeLessThanOrEqual(1_000);
  });

  it('ignores a missing or garbage Date', () => {
    const skew = new SkewEstimator();
    skew.observe(undefined, T);
    skew.observe('yesterday', T);
    expect(skew.offsetMs).toBe(0);
  });
});

describe("a cache's copy says nothing of the server's clock", () => {
  it('a cached 429 stamped 20 hours ago, after one fresh answer, does not move the reset it names', () => {
    const limiter = createLimiter({
      provider: providers.generic({ resetUnit: 'unix-seconds' }),
      key: 'cached-date',
      maxWaitMs: 0,
    });
    const now = limiter.now();
    const resetAt = Math.ceil((now + 1_800_000) / 1000) * 1000;
    const answer = (headers: Record<string, string>, status = 200) => {
      let permit: Parameters<Parameters<Limiter['acquire']>[1]['granted']>[0] | undefined;
      limiter.acquire({}, { granted: (p) => (permit = p), rejected: () => undefined });
      permit?.observe(responseLike(status, headers));
      permit?.release();
    };
    answer({ Date: date(now), 'x-ratelimit-remaining': '10', 'x-ratelimit-limit': '60' });
    // A shared cache's copy of a 429 stored 20 hours ago (Age: the time it held it), whose
    // Retry-After is an instant of the server's clock: read through its Date, half an hour from
    // now would have read as 20.5 hours.
    answer({ Date: date(now - 20 * 3_600_000), Age: '72000', 'retry-after': date(resetAt) }, 429);
    expect(limiter.snapshot.pausedUntil ?? 0).toBeLessThanOrEqual(resetAt + 1_000);
    void limiter.close();
  });
});

describe('the limiter clock, when the wall clock is stepped', () => {
  /** Resolves with how long (real ms) until one request through `limiter` is admitted, or `undefined` after `ms`. */
  const admittedWithin = (limiter: Limiter, ms: number) =>
    new Promise<number | undefined>((resolve) => {
      const started = performance.now();
      const timeout = setTimeout(() => {
        ticket.cancel();
        resolve(undefined);
      }, ms);
      const ticket = limiter.acquire(
        {},
        {
          granted: (p) => {
            clearTimeout(timeout);
            p.release();
            resolve(performance.now() - started);
          },
          rejected: () => resolve(undefined),
        },
      );
    });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('a 300 ms pause still ends after about 300 ms when the wall clock steps back an hour', async () => {
    const limiter = createLimiter({ provider: providers.generic(), key: 'k', maxWaitMs: Infinity });
    limiter.pause(300);
    const realNow = Date.now.bind(Date);
    jest.spyOn(Date, 'now').mockImplementation(() => realNow() - 3_600_000);
    // Before: the pause ran to a wall-clock time an hour away.
    expect(await admittedWithin(limiter, 3000)).toBeDefined();
  });

  it('a 2 s pause is not ended early when the wall clock steps forward an hour', async () => {
    const limiter = createLimiter({ provider: providers.generic(), key: 'k', maxWaitMs: Infinity });
    limiter.pause(2000);
    const realNow = Date.now.bind(Date);
    jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000);
    // Before: the request went at once, the pause's end being an hour in the past.
    expect(await admittedWithin(limiter, 500)).toBeUndefined();
  });

  it('a limiter made after the wall clock stepped forward reads the wall clock, not the step', () => {
    const early = createLimiter({ provider: providers.generic(), key: 'made-before-the-step' });
    const before = early.now();
    const realNow = Date.now.bind(Date);
    // The wall clock steps an hour forward (NTP, or a laptop's sleep, during which the monotonic
    // clock stands still).
    jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000);
    // The limiter made before keeps its clock: a pause or window in force is not moved by the step.
    expect(early.now() - before).toBeLessThan(1000);
    const later = createLimiter({ provider: providers.generic(), key: 'made-after-the-step' });
    expect(Math.abs(later.now() - Date.now())).toBeLessThan(1000);
    // A reset told as a Unix time a minute away, with no `Date` header (a browser hides it from
    // cross-origin scripts), is a minute's wait. Before, a limiter made after the step read it on
    // the first limiter's clock, an hour behind the wall: an hour and a minute's wait.
    let permit: Permit | undefined;
    later.acquire({}, { granted: (p) => (permit = p), rejected: () => undefined });
    const resetS = Math.floor(Date.now() / 1000) + 60;
    permit?.observe(
      responseLike(200, {
        'x-ratelimit-limit': '10',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset': String(resetS),
      }),
    );
    permit?.release();
    const wait = (later.snapshot.buckets[0]?.resetAt ?? Number.NaN) - later.now();
    expect(wait).toBeGreaterThan(50_000);
    expect(wait).toBeLessThan(70_000);
  });
  it("a pool's tenant made after the wall clock stepped shows its pause and reset on the pool's clock", async () => {
    const pool = createLimiterPool({ provider: providers.generic(), idleMs: 60_000, stateIntervalMs: 10 });
    const snapshots: LimiterPoolSnapshot[] = [];
    const sub = pool.state$.subscribe((s) => snapshots.push(s));
    const realNow = Date.now.bind(Date);
    jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000);
    // Made after the step: the tenant's limiter reads the wall clock, an hour ahead of the pool's.
    const tenant = pool.get('tenant-made-after-the-step');
    tenant.observe(responseLike(200, { 'ratelimit-limit': '10', 'ratelimit-remaining': '0', 'ratelimit-reset': '30' }));
    tenant.pause(5000);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the pool's batched `state$`
    for (const p of [pool.snapshot(), snapshots[snapshots.length - 1]]) {
      const s = p?.limiters[0];
      const now = pool.now();
      // Before, both read an hour ahead of the pool's now (a status page showed an hour's pause).
      expect((s?.pausedUntil ?? Number.NaN) - now).toBeGreaterThan(4000);
      expect((s?.pausedUntil ?? Number.NaN) - now).toBeLessThanOrEqual(5000);
      expect((s?.buckets[0]?.resetAt ?? Number.NaN) - now).toBeGreaterThan(25_000);
      expect((s?.buckets[0]?.resetAt ?? Number.NaN) - now).toBeLessThanOrEqual(31_000);
    }
    sub.unsubscribe();
    await pool.close();
  });
});

describe('SkewEstimator under bursty traffic', () => {
  it('keeps the offset a tick pinned while later bursts all fall within one second', () => {
    const offset = 30_730;
    const skew = new SkewEstimator();
    // Requests across a tick of the server's second pin the offset to the round trip...
    for (let i = 0; i < 10; i++) {
      const sent = T + 200 + i * 10;
      skew.observe(date(sent + 5 + offset), sent + 10, sent);
    }
    // ...then bursts of 40 answers, each within one second of the server's clock.
    for (let burst = 1; burst <= 5; burst++) {
      for (let i = 0; i < 40; i++) {
        const sent = T + burst * 6000 + 50 + i;
        skew.observe(date(sent + 5 + offset), sent + 10, sent);
      }
    }
    expect(skew.offsetMs).toBeLessThanOrEqual(offset);
    expect(offset - skew.offsetMs).toBeLessThanOrEqual(20);
    expect(skew.uncertaintyMs).toBeLessThanOrEqual(20);
  });
});
