/**
 * Fault suite, virtual time: every subscribed request ends exactly once, with its
 * response, its original error or one of our typed errors; none hangs, none is sent twice
 * unless a 429 (or a listed 5xx) was answered, none is dropped silently.
 */
import { describe, expect, it } from '@jest/globals';
import type { SchedulerAction } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import {
  BlockedError,
  createLimiter,
  providers,
  QueueFullError,
  rateLimit,
  RetryLimitError,
  type Limiter,
  type LimiterSnapshot,
  type RateLimitConfig,
  rawCauseOf,
} from '../../lib/index.js';
import { createSimulatorEngine, type SimulatorResponse } from '../../lib/testing/index.js';
import { assertEndedOnce, faultyProvider, outcomes, START, track, type Ledger } from './harness.js';

const PD = 'pd-token';

/** Runs `body` in virtual time; `lastFrame` is the virtual time of the last action run (no timer left behind after it). */
function virtual<T extends object>(body: (scheduler: TestScheduler) => T): T & { lastFrame: number } {
  const scheduler = new TestScheduler((a, b) => expect(a).toEqual(b));
  const result = scheduler.run(() => body(scheduler));
  return Object.assign(result, { lastFrame: scheduler.frame });
}

const PATHS = {
  pipedrive: (i: number) => `/v1/deals/${i}`,
  procore: (i: number) => `/rest/v1.0/projects/${i}`,
  teos: (i: number) => `/jobs/${i}`,
} as const;

/** Subscribes `n` GETs (request `i` to its own path) through `rateLimit`, each with its ledger. */
function getMany(
  api: ReturnType<typeof faultyProvider>,
  limiter: Limiter,
  scheduler: TestScheduler,
  provider: keyof typeof PATHS,
  token: string,
  n: number,
  config?: RateLimitConfig,
): Array<Ledger<SimulatorResponse>> {
  return Array.from({ length: n }, (_, i) => {
    const path = PATHS[provider](i);
    return track(
      i,
      api.request(provider, { path, token }).pipe(rateLimit(limiter, { method: 'GET', url: path }, config)),
      () => scheduler.now(),
    );
  });
}

describe('fault: 5xx storm', () => {
  it('503s with no rate headers from 1 s to 15 s: retried with backoff, the rest end with RetryLimitError; no 429', () => {
    const r = virtual((scheduler) => {
      const engine = createSimulatorEngine({
        now: () => START + scheduler.now(),
        latencyMs: 20,
        pipedrive: { plan: 'advanced' },
      });
      const storm = (at: number) => at >= 1_000 && at < 15_000;
      const lb503: SimulatorResponse = {
        status: 503,
        headers: { 'Content-Type': 'text/html', Server: 'nginx' },
        body: '<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>',
      };
      const api = faultyProvider(engine, scheduler, (_req, _seq, at) => {
        if (!storm(at)) return { kind: 'pass' };
        return { kind: 'respond', response: lb503 };
      });
      const limiter = createLimiter({
        provider: providers.pipedrive({ plan: 'advanced' }),
        key: PD,
        scheduler,
        random: () => 0.5,
      });
      const ledgers = getMany(api, limiter, scheduler, 'pipedrive', PD, 200, { statuses: [429, 503], maxRetries: 1 });
      return { ledgers, api, engine, limiter, lb503 };
    });
    const kinds = assertEndedOnce(r.ledgers);
    const stats = r.engine.statsFor('pipedrive', PD);
    // The 503s tell nothing of the window: a probe of a refilled window answered by one is not
    // its answer, and the next probe goes a second later (three in a row at most; then such an
    // answer confirms the window, as before). So the storm holds the queue rather than failing
    // it: 43 requests end in it (3 at 11 s, 40 at 13 s), where 120 did when every 503 confirmed
    // a window; the 40 of the first window went before it, and the rest go at the limit once it
    // is over, 40 per 2 s from 15 s.
    expect(kinds).toEqual({ 'status 200': 157, RetryLimitError: 43 });
    // 200 first sends + 160 retries; 203 of them met the storm; nothing sent twice otherwise.
    expect({ received: r.api.total, stormAnswers: r.api.total - stats.total }).toEqual({
      received: 360,
      stormAnswers: 203,
    });
    expect(stats).toMatchObject({ ok: 157, limited: 0, sentWhileLimited: 0, total: 157 });
    for (const l of r.ledgers.filter((x) => x.errors.length > 0)) {
      const e = l.errors[0] as RetryLimitError;
      expect(e).toBeInstanceOf(RetryLimitError);
      expect({ attempts: e.attempts, status: e.status, cause: rawCauseOf(e) }).toEqual({
        attempts: 2,
        status: 503,
        cause: r.lb503,
      });
    }
    const ends = r.ledgers.map((l) => l.endedAt ?? 0);
    expect(Math.min(...ends.filter((t) => t >= 15_000))).toBeLessThan(15_500);
    expect(Math.max(...ends)).toBe(19_380);
    expect(r.limiter.snapshot).toMatchObject({ queued: 0, inFlight: 0 });
  });
});

describe('fault: rate-limit headers missing or garbage', () => {
  it('every other response has its rate headers garbled or removed: no exception, every request ends', () => {
    const GARBAGE = [
      '',
      'abc',
      '-5',
      'NaN',
      '1e309',
      '99999999999999999999',
      '0x10',
      '5, 7',
      'null',
      ' 12 ',
      '∞',
      '2026-13-45',
    ];
    const r = virtual((scheduler) => {
      const engine = createSimulatorEngine({
        now: () => START + scheduler.now(),
        latencyMs: 20,
        pipedrive: { plan: 'advanced' },
      });
      let garbled = 0;
      const api = faultyProvider(engine, scheduler, (_req, seq) =>
        seq % 2 === 0
          ? { kind: 'pass' }
          : {
              kind: 'pass',
              rewrite: (res) => {
                garbled++;
                const headers: Record<string, string> = {};
                for (const [k, v] of Object.entries(res.headers)) {
                  if (!/ratelimit|daily/i.test(k)) headers[k] = v;
                  else if (seq % 3 !== 0) headers[k] = GARBAGE[(seq + k.length) % GARBAGE.length] as string;
                }
                return { ...res, headers };
              },
            },
      );
      const limiter = createLimiter({
        provider: providers.pipedrive({ plan: 'advanced' }),
        key: PD,
        scheduler,
        random: () => 0.5,
      });
      const ledgers = getMany(api, limiter, scheduler, 'pipedrive', PD, 200);
      return { ledgers, api, engine, limiter, garbled: () => garbled };
    });
    const kinds = assertEndedOnce(r.ledgers);
    expect(kinds).toEqual({ 'status 200': 200 });
    expect(r.garbled()).toBe(100);
    expect({ received: r.api.total, duplicates: r.api.duplicates() }).toEqual({ received: 200, duplicates: {} });
    expect(r.engine.statsFor('pipedrive', PD)).toMatchObject({ ok: 200, limited: 0, total: 200 });
    // A garbled remaining of "-5" reads as 0 left. A figure read after it from a request sent
    // before it came back is an older reading of that window, not a new window (another
    // client may have spent what it showed): some windows wait for their ends, and 200 at 40
    // per 2 s, at least 8 s, take 10.4 s.
    expect(Math.max(...r.ledgers.map((l) => l.endedAt ?? 0))).toBe(10_370);
  });
});

describe('fault: server restart that resets counts', () => {
  it('in the second window every connection drops and the server forgets its windows', () => {
    const r = virtual((scheduler) => {
      const engine = createSimulatorEngine({
        now: () => START + scheduler.now(),
        latencyMs: 150,
        pipedrive: { plan: 'advanced' },
      });
      const api = faultyProvider(engine, scheduler);
      const limiter = createLimiter({
        provider: providers.pipedrive({ plan: 'advanced' }),
        key: PD,
        scheduler,
        random: () => 0.5,
      });
      const ledgers = getMany(api, limiter, scheduler, 'pipedrive', PD, 200);
      const before = { stats: undefined as unknown, dropped: 0, at: 0 };
      // The restart comes in the second window, once 10 requests are in flight: the window's
      // first request went alone at its reset, and the 39 sent on its answer are dropped.
      scheduler.schedule(function (this: SchedulerAction<unknown>) {
        if (api.inFlight < 10) {
          this.schedule(undefined, 10);
          return;
        }
        before.at = scheduler.now();
        before.stats = { ...engine.statsFor('pipedrive', PD) };
        engine.reset();
        before.dropped = api.dropAll();
      }, 2_000);
      return { ledgers, api, engine, limiter, before };
    });
    const kinds = assertEndedOnce(r.ledgers);
    expect(kinds).toEqual({ 'status 200': 161, Error: 39 });
    expect(r.before).toMatchObject({ at: 2_310, dropped: 39, stats: { ok: 80, limited: 0, total: 80 } });
    // The dropped ones end with the very error the connection failed with, and are not resent.
    const failed = r.ledgers.filter((l) => l.errors.length > 0).map((l) => l.errors[0]);
    expect(failed.every((e) => r.api.raised.includes(e) && (e as { code?: string }).code === 'ECONNRESET')).toBe(true);
    expect(new Set(failed).size).toBe(39);
    expect({ received: r.api.total, duplicates: r.api.duplicates() }).toEqual({ received: 200, duplicates: {} });
    expect(r.engine.statsFor('pipedrive', PD)).toMatchObject({ ok: 120, limited: 0, total: 120 });
    expect(Math.max(...r.ledgers.map((l) => l.endedAt ?? 0))).toBe(9_060);
  });
});

describe('fault: limits changed mid-run', () => {
  it('Pipedrive cut from 40 to 20 per 2 s at 3 s, raised to 80 at 9 s', () => {
    const r = virtual((scheduler) => {
      const engine = createSimulatorEngine({
        now: () => START + scheduler.now(),
        latencyMs: 20,
        pipedrive: { plan: 'advanced' },
        limitChanges: [
          { at: START + 3_000, provider: 'pipedrive', set: { limit: 20 } },
          { at: START + 9_000, provider: 'pipedrive', set: { limit: 80 } },
        ],
      });
      const api = faultyProvider(engine, scheduler);
      const limiter = createLimiter({
        provider: providers.pipedrive({ plan: 'advanced' }),
        key: PD,
        scheduler,
        random: () => 0.5,
      });
      const ledgers = getMany(api, limiter, scheduler, 'pipedrive', PD, 400);
      return { ledgers, api, engine, limiter };
    });
    const kinds = assertEndedOnce(r.ledgers);
    expect(kinds).toEqual({ 'status 200': 400 });
    expect({ received: r.api.total, duplicates: r.api.duplicates() }).toEqual({ received: 400, duplicates: {} });
    expect(r.engine.statsFor('pipedrive', PD)).toMatchObject({ ok: 400, limited: 0, sentWhileLimited: 0, total: 400 });
    expect(Math.max(...r.ledgers.map((l) => l.endedAt ?? 0))).toBe(16_560);
  });
});

describe('fault: clock skew of an hour either way', () => {
  for (const offset of [3_600_000, -3_600_000]) {
    it(`Procore (unix-seconds resets), server ${offset > 0 ? 'ahead' : 'behind'} by 1 h`, () => {
      const r = virtual((scheduler) => {
        const engine = createSimulatorEngine({
          now: () => START + scheduler.now(),
          latencyMs: 20,
          clockOffsetMs: offset,
          procore: { limit: 60 },
        });
        const api = faultyProvider(engine, scheduler);
        const limiter = createLimiter({
          provider: providers.procore(),
          key: 'pc',
          scheduler,
          // The third window opens 2 h in, and the reset guard after it: the last 30 requests,
          // queued at the start, wait a little over 2 h in all (`maxWaitMs` counts from then).
          maxWaitMs: 2 * 3_600_000 + 60_000,
        });
        const ledgers = getMany(api, limiter, scheduler, 'procore', 'pc', 150);
        return { ledgers, api, engine, limiter };
      });
      const kinds = assertEndedOnce(r.ledgers);
      expect(kinds).toEqual({ 'status 200': 150 });
      expect(r.engine.statsFor('procore', 'Bearer pc')).toMatchObject({ ok: 150, limited: 0, total: 150 });
      // 60 per hour: 3 windows, the last one opening 2 h in; then the reset guard (50 ms), the
      // window's first request alone and its answer (20 ms), the others' answers (20 ms), and
      // the offset as the Date headers pin it (20 ms).
      expect(Math.max(...r.ledgers.map((l) => l.endedAt ?? 0))).toBe(7_200_110);
    });
    it(`TEOS (ISO 8601 resets), server ${offset > 0 ? 'ahead' : 'behind'} by 1 h`, () => {
      const r = virtual((scheduler) => {
        const engine = createSimulatorEngine({
          now: () => START + scheduler.now(),
          latencyMs: 20,
          clockOffsetMs: offset,
        });
        const api = faultyProvider(engine, scheduler);
        const limiter = createLimiter({ provider: providers.teos(), key: 'te', scheduler });
        const ledgers = getMany(api, limiter, scheduler, 'teos', 'te', 250);
        return { ledgers, api, engine, limiter };
      });
      const kinds = assertEndedOnce(r.ledgers);
      expect(kinds).toEqual({ 'status 200': 250 });
      expect(r.engine.statsFor('teos', 'Bearer te')).toMatchObject({ ok: 250, limited: 0, total: 250 });
      // A call counts in the rolling minute from its answer, not its send: the latency (20 ms)
      // comes back once per window the budget turns over in. Where every call the server
      // counts is ours, a slot frees as our own log says (149,560 ms), not at the server's reset
      // read through the offset (149,690 before): within that, and never later.
      const last = Math.max(...r.ledgers.map((l) => l.endedAt ?? 0));
      expect(last).toBeLessThanOrEqual(149_690);
      expect(last).toBeGreaterThanOrEqual(149_500);
    });
  }
});

describe("fault: Pipedrive's 403 block", () => {
  it('another client on the token earns the block: every request fails with BlockedError, one is sent', () => {
    const r = virtual((scheduler) => {
      const engine = createSimulatorEngine({
        now: () => START + scheduler.now(),
        latencyMs: 20,
        pipedrive: { plan: 'essential' },
        abuse: { '429sBeforeBlock': 3, blockMs: 60_000 },
      });
      // Another client hammers the token (20 allowed per 2 s) and ignores its 429s.
      for (let i = 0; i < 40; i++)
        engine.handle({ provider: 'pipedrive', path: '/v1/deals', query: { api_token: PD } });
      const hammer = { ...engine.statsFor('pipedrive', PD) };
      const api = faultyProvider(engine, scheduler);
      const limiter = createLimiter({
        provider: providers.pipedrive({ plan: 'essential' }),
        key: PD,
        scheduler,
        blockCooldownMs: 90_000,
      });
      const ledgers = getMany(api, limiter, scheduler, 'pipedrive', PD, 100);
      const later: Array<Ledger<SimulatorResponse>> = [];
      const snap: { during?: LimiterSnapshot; sentDuring?: number } = {};
      scheduler.schedule(() => {
        snap.during = limiter.snapshot;
        snap.sentDuring = api.total;
        later.push(...getMany(api, limiter, scheduler, 'pipedrive', PD, 10));
      }, 60_000);
      const after: Array<Ledger<SimulatorResponse>> = [];
      scheduler.schedule(() => {
        after.push(...getMany(api, limiter, scheduler, 'pipedrive', PD, 10));
      }, 90_100);
      return { ledgers, later, after, api, engine, limiter, hammer, snap };
    });
    expect(assertEndedOnce(r.ledgers)).toEqual({ BlockedError: 100 });
    expect(assertEndedOnce(r.later)).toEqual({ BlockedError: 10 });
    expect(assertEndedOnce(r.after)).toEqual({ 'status 200': 10 });
    expect(r.hammer).toMatchObject({ blocked: 16, total: 40 });
    // One request sent (the one that met the 403), none while blocked, 10 after the cool-down.
    expect(r.snap.sentDuring).toBe(1);
    expect(r.snap.during?.blocked).toEqual({ status: 403, since: 20, until: 90_020 });
    expect(r.api.total).toBe(11);
    expect(r.engine.statsFor('pipedrive', PD)).toMatchObject({ blocked: 17, total: 51 });
    expect(new Set(r.ledgers.map((l) => l.endedAt))).toEqual(new Set([20]));
    // After the cool-down nobody told where the window is: one request goes first, the other 9
    // when its answer shows the window (answers 20 ms after each send).
    expect(r.after.map((l) => l.endedAt).sort()).toEqual([90_120, ...Array<number>(9).fill(90_140)]);
    expect((r.ledgers[0]?.errors[0] as BlockedError).cause).toMatchObject({ status: 403 });
    expect(r.ledgers.every((l) => l.errors[0] instanceof BlockedError)).toBe(true);
  });
});

describe('fault: 10,000 concurrent requests', () => {
  it('10,000 subscribed at once on one token: all answered 200, no 429, as fast as 120 per 2 s allows', () => {
    const r = virtual((scheduler) => {
      const engine = createSimulatorEngine({
        now: () => START + scheduler.now(),
        latencyMs: 20,
        pipedrive: { plan: 'enterprise' },
      });
      const api = faultyProvider(engine, scheduler);
      const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'enterprise' }), key: PD, scheduler });
      const ledgers = getMany(api, limiter, scheduler, 'pipedrive', PD, 10_000);
      const queuedAt0 = limiter.snapshot.queued;
      return { ledgers, api, engine, limiter, queuedAt0 };
    });
    expect(assertEndedOnce(r.ledgers)).toEqual({ 'status 200': 10_000 });
    expect(r.queuedAt0).toBe(9_999);
    expect({ received: r.api.total, duplicates: r.api.duplicates() }).toEqual({ received: 10_000, duplicates: {} });
    expect(r.engine.statsFor('pipedrive', PD)).toMatchObject({ ok: 10_000, limited: 0, sentWhileLimited: 0 });
    // 84 windows of 2 s: at best the last opens at 166 s.
    expect(Math.max(...r.ledgers.map((l) => l.endedAt ?? 0))).toBe(171_810);
    expect(r.limiter.snapshot).toMatchObject({
      queued: 0,
      inFlight: 0,
      totals: { sent: 10_000, rateLimited: 0, rejected: 0 },
    });
  });
});

describe('fault: mass unsubscription', () => {
  it('10,000 subscribed, all unsubscribed with 60 in flight: queue empty, nothing sent afterwards', () => {
    const r = virtual((scheduler) => {
      const engine = createSimulatorEngine({
        now: () => START + scheduler.now(),
        latencyMs: 300,
        pipedrive: { plan: 'enterprise' },
      });
      const api = faultyProvider(engine, scheduler);
      const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'enterprise' }), key: PD, scheduler });
      const ledgers = getMany(api, limiter, scheduler, 'pipedrive', PD, 10_000);
      const at: Record<string, unknown> = {};
      // All unsubscribe in the second window, once 10 requests are in flight: its first request
      // went alone at its reset, and the 119 sent on its answer are in flight.
      scheduler.schedule(function (this: SchedulerAction<unknown>) {
        if (api.inFlight < 10) {
          this.schedule(undefined, 10);
          return;
        }
        at['at'] = scheduler.now();
        at['sentBefore'] = api.total;
        at['inFlightBefore'] = api.inFlight;
        at['endedBefore'] = ledgers.filter((l) => l.endedAt !== undefined).length;
        for (const l of ledgers) l.subscription?.unsubscribe();
        at['snapAfter'] = limiter.snapshot;
        at['inFlightAfter'] = api.inFlight;
        at['sentAfterLoop'] = api.total;
      }, 2_000);
      return { ledgers, api, engine, limiter, at };
    });
    // Those that ended before got their answer; the others got nothing at all (no value, no error).
    expect(outcomes(r.ledgers)).toEqual({ 'status 200': 121, open: 9_879 });
    expect(r.at).toMatchObject({ at: 2_610, sentBefore: 240, inFlightBefore: 119, endedBefore: 121, inFlightAfter: 0 });
    expect(r.at['snapAfter']).toMatchObject({ queued: 0, inFlight: 0 });
    // Unsubscribing in subscription order ends the 119 in flight first. Their permits come back
    // without an answer, which frees room only on the limiter's next tick, after this loop: the
    // queued requests behind them are unsubscribed by then, and nothing more is sent.
    expect(r.at['sentAfterLoop']).toBe(240);
    expect(r.api.total).toBe(240);
    expect(r.engine.statsFor('pipedrive', PD)).toMatchObject({ total: 240, limited: 0 });
    expect(r.lastFrame).toBe(2_610);
    expect(r.limiter.snapshot).toMatchObject({ queued: 0, inFlight: 0, totals: { sent: 240, responses: 121 } });
  });
});

describe('fault: a queue at its cap', () => {
  it('maxQueue 100, 1,000 subscribed at once: exactly the excess fails at once with QueueFullError', () => {
    const r = virtual((scheduler) => {
      const engine = createSimulatorEngine({
        now: () => START + scheduler.now(),
        latencyMs: 20,
        pipedrive: { plan: 'advanced' },
      });
      const api = faultyProvider(engine, scheduler);
      const limiter = createLimiter({
        provider: providers.pipedrive({ plan: 'advanced' }),
        key: PD,
        scheduler,
        maxQueue: 100,
      });
      const ledgers = getMany(api, limiter, scheduler, 'pipedrive', PD, 1_000);
      const at0 = {
        queued: limiter.snapshot.queued,
        inFlight: limiter.snapshot.inFlight,
        ended: ledgers.filter((l) => l.endedAt === 0).length,
      };
      return { ledgers, api, engine, limiter, at0 };
    });
    expect(assertEndedOnce(r.ledgers)).toEqual({ 'status 200': 101, QueueFullError: 899 });
    // 1 sent (cold start), 100 queued, the 899 others refused at once, at subscription.
    expect(r.at0).toEqual({ queued: 100, inFlight: 1, ended: 899 });
    const full = r.ledgers.filter((l) => l.errors.length > 0);
    expect(full.map((l) => l.id)).toEqual(Array.from({ length: 899 }, (_, i) => 101 + i));
    expect(
      full.every((l) => l.errors[0] instanceof QueueFullError && (l.errors[0] as QueueFullError).maxQueue === 100),
    ).toBe(true);
    expect(r.api.total).toBe(101);
    expect(r.engine.statsFor('pipedrive', PD)).toMatchObject({ ok: 101, limited: 0 });
    expect(Math.max(...r.ledgers.map((l) => l.endedAt ?? 0))).toBe(4_140);
    expect(r.limiter.snapshot).toMatchObject({ queued: 0, inFlight: 0, totals: { sent: 101, rejected: 899 } });
  });
});
