import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, from, map, mergeMap, timer } from 'rxjs';
import {
  createLimiter,
  rateLimit,
  responseLike,
  throttleByHeaders,
  type LimiterSnapshot,
  type ResponseLike,
} from '../../lib/index.js';
import { teos } from '../../lib/providers/teos.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

// The doc gives the periods ("1m", "12h", "1d") and .NET's "o" round-trip format for the reset.
const MINUTE_RESET = '2026-01-01T00:01:00.0000000Z';
const DAY_RESET = '2026-01-02T00:00:00.0000000Z';
const at = (...utc: [number, number, number, number?, number?, number?, number?]) => ({ at: Date.UTC(...utc) });

const read = (status: number, headers: Record<string, string | string[]>, body?: unknown) =>
  teos().read(responseLike(status, headers, body), { method: 'GET', url: '/api/v1/items' });
const limits = (period: string, remaining: string, reset: string) => ({
  'X-Rate-Limit-Limit': period,
  'X-Rate-Limit-Remaining': remaining,
  'X-Rate-Limit-Reset': reset,
});

describe('providers.teos: reading responses', () => {
  it.each([
    [
      '1m',
      '95',
      MINUTE_RESET,
      { name: 'minute', remaining: 95, reset: at(2026, 0, 1, 0, 1), windowMs: 60_000, rolling: true },
    ],
    [
      '1d',
      '9990',
      DAY_RESET,
      { name: 'day', remaining: 9990, reset: at(2026, 0, 2), windowMs: 86_400_000, rolling: true },
    ],
    [
      '12h',
      '400',
      '2026-01-01T12:00:00.0000000Z',
      { name: 'period:43200000', remaining: 400, reset: at(2026, 0, 1, 12), windowMs: 43_200_000, rolling: true },
    ],
    [
      '1m',
      '3',
      '2026-01-01T00:00:59.1234567Z',
      // .1234567 s: the reset is never read before the instant written, so 124 ms.
      { name: 'minute', remaining: 3, reset: at(2026, 0, 1, 0, 0, 59, 124), windowMs: 60_000, rolling: true },
    ],
    [
      '1m',
      '3',
      '2026-01-01T01:00:59.0000000+01:00',
      { name: 'minute', remaining: 3, reset: at(2026, 0, 1, 0, 0, 59), windowMs: 60_000, rolling: true },
    ],
  ])('reads X-Rate-Limit-Limit %s (a period) into its bucket', (period, remaining, reset, expected) => {
    expect(read(200, limits(period, remaining, reset))).toEqual({ outcome: 'ok', buckets: [expected] });
  });

  it('zips repeated headers (joined by ", ") into one reading per period', () => {
    const expected = [
      { name: 'minute', remaining: 95, reset: at(2026, 0, 1, 0, 1), windowMs: 60_000, rolling: true },
      { name: 'day', remaining: 9990, reset: at(2026, 0, 2), windowMs: 86_400_000, rolling: true },
    ];
    expect(read(200, limits('1m, 1d', '95, 9990', `${MINUTE_RESET}, ${DAY_RESET}`)).buckets).toEqual(expected);
    expect(
      read(200, limits(['1m', '1d'] as never, ['95', '9990'] as never, [MINUTE_RESET, DAY_RESET] as never)).buckets,
    ).toEqual(expected);
  });

  it('leaves out a member that cannot be paired with its period', () => {
    expect(read(200, limits('1m, 1d', '95', `${MINUTE_RESET}, ${DAY_RESET}`)).buckets).toEqual([
      { name: 'minute', reset: at(2026, 0, 1, 0, 1), windowMs: 60_000, rolling: true },
      { name: 'day', reset: at(2026, 0, 2), windowMs: 86_400_000, rolling: true },
    ]);
    expect(read(200, limits('1m, fortnight', '95, 9', `${MINUTE_RESET}, soon`)).buckets).toEqual([
      { name: 'minute', remaining: 95, reset: at(2026, 0, 1, 0, 1), windowMs: 60_000, rolling: true },
    ]);
  });

  it('merges two readings of one period conservatively', () => {
    expect(read(200, limits('1m, 60s', '95, 90', `${MINUTE_RESET}, 2026-01-01T00:01:01.0000000Z`)).buckets).toEqual([
      { name: 'minute', remaining: 90, reset: at(2026, 0, 1, 0, 1, 1), windowMs: 60_000, rolling: true },
    ]);
  });

  it('reads an HTTP-date X-Rate-Limit-Reset (its comma included) as it reads ISO 8601', () => {
    const minute = 'Thu, 01 Jan 2026 00:01:00 GMT';
    const day = 'Fri, 02 Jan 2026 00:00:00 GMT';
    expect(read(429, limits('1m', '0', minute))).toEqual({
      outcome: 'limited',
      buckets: [{ name: 'minute', remaining: 0, reset: at(2026, 0, 1, 0, 1), windowMs: 60_000, rolling: true }],
      retryAfter: at(2026, 0, 1, 0, 1),
      retrySource: 'reset',
    });
    // Repeated, one per period; and alone, with no period to pair it with.
    expect(read(200, limits('1m, 1d', '95, 9990', `${minute}, ${day}`)).buckets).toEqual([
      { name: 'minute', remaining: 95, reset: at(2026, 0, 1, 0, 1), windowMs: 60_000, rolling: true },
      { name: 'day', remaining: 9990, reset: at(2026, 0, 2), windowMs: 86_400_000, rolling: true },
    ]);
    expect(read(429, { 'X-Rate-Limit-Reset': minute })).toMatchObject({ retryAfter: at(2026, 0, 1, 0, 1) });
  });

  it('says nothing until the headers appear ("once enough calls have been made")', () => {
    expect(read(200, {})).toEqual({ outcome: 'ok', buckets: [] });
    expect(read(200, { 'X-Rate-Limit-Remaining': '95' })).toEqual({ outcome: 'ok', buckets: [] });
  });

  it('a 429 waits for the reset of the exhausted period, and every stream pauses', () => {
    const minuteOut = read(429, limits('1m, 1d', '0, 9000', `${MINUTE_RESET}, ${DAY_RESET}`));
    expect(minuteOut).toEqual({
      outcome: 'limited',
      buckets: [
        { name: 'minute', remaining: 0, reset: at(2026, 0, 1, 0, 1), windowMs: 60_000, rolling: true },
        { name: 'day', remaining: 9000, reset: at(2026, 0, 2), windowMs: 86_400_000, rolling: true },
      ],
      retryAfter: at(2026, 0, 1, 0, 1),
      retrySource: 'reset',
    });
    expect(minuteOut).not.toHaveProperty('limitedBy');
    expect(read(429, limits('1m, 1d', '0, 0', `${MINUTE_RESET}, ${DAY_RESET}`))).toMatchObject({
      retryAfter: at(2026, 0, 2),
      retrySource: 'reset',
    });
    expect(read(429, { 'X-Rate-Limit-Reset': MINUTE_RESET })).toEqual({
      outcome: 'limited',
      buckets: [],
      retryAfter: at(2026, 0, 1, 0, 1),
      retrySource: 'reset',
    });
    expect(read(429, { ...limits('1m', '0', MINUTE_RESET), 'Retry-After': '7' })).toMatchObject({
      retryAfter: { delayMs: 7000 },
      retrySource: 'retry-after',
    });
    expect(read(429, {})).toEqual({ outcome: 'limited', buckets: [] });
  });

  it('says nothing for garbage and never throws', () => {
    const hostile = new Proxy(
      {},
      {
        get: () => {
          throw new Error('boom');
        },
      },
    );
    expect(read(200, limits('soon', 'lots', 'tomorrow'))).toEqual({ outcome: 'ok', buckets: [] });
    expect(read(200, limits('1m', '-5', 'Wed, 21 Oct 2015 07:28:00 GMT, x'))).toEqual({
      outcome: 'ok',
      buckets: [{ name: 'minute', remaining: 0, windowMs: 60_000, rolling: true }],
    });
    expect(read(429, limits(',,,', ',', ','), hostile)).toEqual({ outcome: 'limited', buckets: [] });
  });
});

describe('providers.teos: buckets and options', () => {
  it('counts every request against a smoothly paced minute and a rolling-day quota', () => {
    const p = teos();
    expect(p.name).toBe('teos');
    for (const info of [{}, { method: 'POST', url: '/api/v1/items?x=1' }]) {
      expect(p.buckets(info)).toEqual([
        { name: 'minute', limit: 100, windowMs: 60_000, pacing: 'smooth', rolling: true },
        { name: 'day', limit: 10_000, windowMs: 86_400_000, quota: true, rolling: true },
      ]);
    }
  });

  it('takes hints by bucket name (a hinted window still names its bucket) and extra buckets', () => {
    const p = teos({
      hints: { minute: { limit: 50, windowMs: 120_000 } },
      extraBuckets: [{ name: 'mine', limit: 1, windowMs: 1000 }],
    });
    expect(p.buckets({})).toEqual([
      { name: 'minute', limit: 50, windowMs: 120_000, pacing: 'smooth', rolling: true },
      { name: 'day', limit: 10_000, windowMs: 86_400_000, quota: true, rolling: true },
      { name: 'mine', limit: 1, windowMs: 1000 },
    ]);
    expect(p.read(responseLike(200, limits('2m', '40', MINUTE_RESET)), {}).buckets).toEqual([
      { name: 'minute', remaining: 40, reset: at(2026, 0, 1, 0, 1), windowMs: 120_000, rolling: true },
    ]);
  });

  it('paces the minute smoothly by default; `hints.minute.pacing` chooses burst (or smooth) per bucket', () => {
    const minute = (o?: Parameters<typeof teos>[0]) => teos(o).buckets({})[0];
    expect(minute()?.pacing).toBe('smooth');
    expect(minute({ hints: { minute: { pacing: 'burst' } } })).toEqual({
      name: 'minute',
      limit: 100,
      windowMs: 60_000,
      pacing: 'burst',
      rolling: true,
    });
    expect(minute({ hints: { minute: { pacing: 'smooth', limit: 50 } } })?.pacing).toBe('smooth');
    // `day` is a quota; pacing it smoothly is possible too, though rarely wanted.
    expect(teos({ hints: { day: { pacing: 'smooth' } } }).buckets({})[1]?.pacing).toBe('smooth');
  });

  it.each([
    [{ hints: { hour: {} } }, /option `hints\.hour` must be keyed by a bucket name \("minute", "day"\)/],
    [{ hints: { day: { limit: 'many' } } }, /option `hints\.day\.limit`/],
    [{ extraBuckets: [{ name: 'minute' }] }, /option `extraBuckets\.0\.name`/],
    [{ extraBuckets: 'x' }, /option `extraBuckets`/],
    [{ pacing: 'burst' }, /unknown option `pacing`/],
    [{ hints: { minute: { pacing: 'fast' } } }, /option `hints\.minute\.pacing`/],
    [{ hints: { minute: { pacing: true } } }, /option `hints\.minute\.pacing`/],
  ])('rejects bad options with a TypeError naming them (%j)', (options, message) => {
    expect(() => teos(options as never)).toThrow(TypeError);
    expect(() => teos(options as never)).toThrow(message);
  });
});

describe('providers.teos with a limiter (virtual time)', () => {
  it('"1m" headers update the minute bucket; a 429 pauses every stream until that reset', () => {
    // Resets on the virtual clock (which starts at 0): 1970-01-01T00:01:00Z is 60,000 ms.
    const { first, limited, sent } = inVirtualTime(() => {
      const limiter = createLimiter({ provider: teos(), key: 'teos-key' });
      const sent: number[] = [];
      const call = (res: ResponseLike) =>
        defer(() => {
          sent.push(asyncScheduler.now());
          return timer(10).pipe(map(() => res));
        }).pipe(throttleByHeaders(limiter));
      const out: { first?: LimiterSnapshot; limited?: LimiterSnapshot } = {};
      call(
        responseLike(200, limits('1m, 12h', '42, 400', '1970-01-01T00:01:00.0000000Z, 1970-01-01T12:00:00.0000000Z')),
      ).subscribe();
      asyncScheduler.schedule(() => {
        out.first = limiter.snapshot;
        call(responseLike(429, limits('1m', '0', '1970-01-01T00:01:30.0000000Z'))).subscribe();
      }, 20);
      asyncScheduler.schedule(() => {
        out.limited = limiter.snapshot;
        call(responseLike(200, {})).subscribe();
      }, 5000);
      return {
        get first() {
          return out.first;
        },
        get limited() {
          return out.limited;
        },
        sent,
      };
    });
    expect(first?.buckets).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          name: 'minute',
          limit: 100,
          remaining: 42,
          // The call counts from its end, 10 ms after its send: the server may have logged it that late.
          resetAt: 60_010,
          windowMs: 60_000,
          source: 'headers',
        }),
        // A period the profile does not name slides too: its limit is at least what is left (the
        // request that read it counted against the buckets it knew when it went).
        expect.objectContaining({ name: 'period:43200000', limit: 400, remaining: 400, source: 'headers' }),
      ]),
    );
    // The minute is paced smoothly: the second call waits for its slot instead of going at 20 ms.
    expect(sent[1]).toBeGreaterThan(500);
    expect(limited?.pausedUntil).toBe(90_000);
    expect(limited?.pauseReason).toBe('reset');
    expect(sent[2]).toBeGreaterThanOrEqual(90_000);
  });
});

describe('providers.teos pacing against the simulator (virtual time)', () => {
  /**
   * 300 calls from 30 streams at 100 per rolling (compressed) minute of 1 s, 20 ms latency,
   * server and limiter on the same clock. Returns when the last answer came, and the 429s.
   */
  function run(pacing: 'smooth' | 'burst' | undefined) {
    return inVirtualTime(({ now }) => {
      const engine = createSimulatorEngine({
        latencyMs: 20,
        timeScale: 60,
        teos: { headersAfter: 1 },
        now: () => asyncScheduler.now(),
      });
      const api = virtualProvider(engine, asyncScheduler);
      const minute = pacing === undefined ? { windowMs: 1000 } : { windowMs: 1000, pacing };
      const provider = teos({ hints: { minute, day: { windowMs: 1_440_000 } } });
      const limiter = createLimiter({ provider, key: 'teos-key' });
      const statuses: number[] = [];
      let last = 0;
      from(Array.from({ length: 300 }, (_, i) => i))
        .pipe(
          mergeMap((i) => {
            const path = `/api/v1/items/${i}`;
            return api
              .request('teos', { method: 'GET', path, token: 'teos-key' })
              .pipe(rateLimit(limiter, { method: 'GET', url: path }));
          }, 30),
        )
        .subscribe((r) => {
          statuses.push(r.status);
          last = now();
        });
      return {
        statuses,
        get elapsed() {
          return last;
        },
        stats: () => Object.values(engine.stats().teos)[0],
      };
    });
  }

  // Bursts allowed: each rolling window's 100 go at once, so 300 calls take two windows plus
  // the last 100 from 30 streams (4 rounds of 20 ms): the physical limit.
  const BURST_PHYSICAL_MS = 2 * 1000 + 4 * 20;
  // Evenly spread: 299 gaps of W / L = 10 ms, plus the last answer's latency.
  const EVEN_MS = 299 * 10 + 20;

  it("pacing: 'burst' finishes near the burst physical limit (its own margins only), with zero 429s", () => {
    const out = run('burst');
    expect(out.statuses).toHaveLength(300);
    expect(out.statuses.every((s) => s === 200)).toBe(true);
    expect(out.stats()).toMatchObject({ ok: 300, limited: 0, total: 300 });
    expect(out.elapsed).toBeGreaterThanOrEqual(BURST_PHYSICAL_MS);
    // What it adds is the limiter's own margin per window that comes back: `resetGuardMs`
    // (50 ms) and one answer's latency (20 ms; a call counts from its end, since the server may
    // have logged it that late), and one round: 7 % of a 1 s compressed window, 0.3 % of TEOS's
    // real minute.
    expect(out.elapsed).toBeLessThanOrEqual(BURST_PHYSICAL_MS + 2 * (50 + 20) + 20);
    // The smooth default needs 299 gaps of 10 ms for the same work.
    expect(out.elapsed).toBeLessThan(EVEN_MS * 0.75);
  });

  it('the default (smooth) spreads the calls evenly instead: about (N − 1)·W/L + latency, zero 429s', () => {
    const out = run(undefined);
    expect(out.statuses).toHaveLength(300);
    expect(out.stats()).toMatchObject({ ok: 300, limited: 0, total: 300 });
    expect(out.elapsed).toBeGreaterThanOrEqual(EVEN_MS);
    expect(out.elapsed / EVEN_MS).toBeLessThanOrEqual(1.05);
  });
});
