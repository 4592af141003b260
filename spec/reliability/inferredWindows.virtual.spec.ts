/**
 * Windows no header describes (Fieldwire's legacy endpoints): nothing until a 429, then only
 * when the window resets. The successes of a window before its first 429 are its capacity.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { asyncScheduler, map, mergeMap, Observable, tap, timer } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { createLimiter, providers, rateLimit, type LimiterSnapshot, type Provider } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider, type SimulatorOptions } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { prng } from './arbitraries.js';

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const PATH = '/projects/:id/legacy_reports';
const KEY = 'GET /projects/:id/legacy_reports';

interface Run {
  readonly phaseMs: number;
  readonly requests: number;
  readonly streams: number;
  readonly latencyMs?: number;
  /** Extra latency each way, drawn per request from 0 to this (seeded by the phase). */
  readonly jitterMs?: number;
  readonly provider?: Provider;
  readonly engine?: SimulatorOptions;
  /**
   * The server's clock reads as ours (a machine synced by NTP): the run starts `phaseMs` into
   * the virtual day, so that the limiter reads the server's resets at their true instants. By
   * default the server is a fixed epoch ahead, and `Date` leaves the offset unsure by a second.
   */
  readonly sameClock?: boolean;
}

function run(o: Run) {
  return inVirtualTime(({ now }) => {
    const start = START + o.phaseMs;
    const engine = createSimulatorEngine({
      latencyMs: o.latencyMs ?? 10,
      fieldwire: { legacy: [KEY], legacyLimit: 10, legacyWindowMs: 1000 },
      ...o.engine,
      now: o.sameClock ? () => asyncScheduler.now() : () => start + asyncScheduler.now(),
    });
    const t0 = o.sameClock ? o.phaseMs : 0;
    const api = virtualProvider(engine, asyncScheduler);
    // Backoff jitter drawn from a seeded source: a run is the same every time.
    const limiter = createLimiter({
      provider: o.provider ?? providers.fieldwire(),
      key: 'token-L',
      random: prng(o.phaseMs + 7),
    });
    const random = prng(o.phaseMs + 1);
    const jitter = () => timer(random() * (o.jitterMs ?? 0));
    const statuses: number[] = [];
    const errors: unknown[] = [];
    const states: LimiterSnapshot[] = [];
    /** Round trips as the user sees them, from admission to answer, in the order answered. */
    const roundTrips: number[] = [];
    limiter.state$.subscribe((s) => states.push(s));
    let last = 0;
    timer(t0)
      .pipe(
        mergeMap(() => Array.from({ length: o.requests }, (_, i) => i)),
        mergeMap((i) => {
          const path = PATH.replace(':id', String(100 + i));
          const request = api.request('fieldwire', { path, token: 'token-L' });
          const sent = o.jitterMs
            ? jitter().pipe(
                mergeMap(() => request),
                mergeMap((r) => jitter().pipe(map(() => r))),
              )
            : request;
          let admittedAt = 0;
          return sent.pipe(
            tap({ subscribe: () => (admittedAt = now()) }),
            rateLimit(limiter, { url: path }),
            tap(() => roundTrips.push(now() - admittedAt)),
          );
        }, o.streams),
      )
      .subscribe({
        next: (r) => {
          statuses.push(r.status);
          last = now() - t0;
        },
        error: (e: unknown) => errors.push(e),
      });
    return {
      statuses,
      errors,
      engine,
      limiter,
      states,
      roundTrips,
      get makespan() {
        return last;
      },
    };
  });
}

const stats = (out: ReturnType<typeof run>) => out.engine.statsFor('fieldwire', 'Bearer token-L');
const legacyBucket = (s: LimiterSnapshot) => s.buckets.find((b) => b.name === `${KEY}:minute`);

describe('a window no header describes, inferred from its first 429 (virtual time)', () => {
  // 10 per aligned 1-s window: 100 GETs fit in 10 windows, the last opening at 9 s.
  const PHYSICAL = 9000;

  it('10 per second, 100 GETs over 10 streams: at most 10 × 429 (those in flight), then none; ≤ 1.1 × 9 s', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 1, max: 30 }), (phaseMs, latencyMs) => {
        const out = run({ phaseMs, latencyMs, requests: 100, streams: 10 });
        expect(out.errors).toEqual([]);
        expect(out.statuses).toEqual(Array(100).fill(200));
        // The cold start sends one request, then the other 9 streams one round trip later. When a
        // window boundary falls between the two, the first window's count includes a success of
        // the window before: the next window shows it with one 429 more, and the count is right.
        const straddled = Math.floor(phaseMs / 1000) !== Math.floor((phaseMs + 2 * latencyMs) / 1000);
        expect(stats(out).limited).toBeLessThanOrEqual(straddled ? 11 : 10);
        if (!straddled) expect(out.makespan).toBeLessThanOrEqual(1.1 * PHYSICAL);
        const bucket = legacyBucket(out.limiter.snapshot);
        expect(bucket).toMatchObject({
          limit: 10,
          windowMs: 1000,
          source: 'inferred',
          sources: { limit: 'inferred', windowMs: 'inferred' },
        });
      }),
      { numRuns: 60 },
    );
  });

  /**
   * The least time for 100 GETs over 10 streams at 10 per aligned second, starting `phaseMs` into
   * a second: the first window holds one request, then 10 per round trip that reach the server
   * before its end (the cold start's answer takes the run's own first round trip); then 10 per
   * window; the last window's requests go a round trip at a time (the run's median).
   */
  function leastTime(out: ReturnType<typeof run>, phaseMs: number, latencyMs: number): number {
    const sorted = [...out.roundTrips].sort((a, b) => a - b);
    const rtt = sorted[Math.floor(sorted.length / 2)] ?? latencyMs;
    const firstWindow = 1000 - phaseMs;
    const first = Math.max(rtt, out.roundTrips[0] ?? 0);
    const inFirst = Math.min(10, 1 + 10 * Math.max(0, Math.floor((firstWindow - first) / rtt)));
    return firstWindow + (Math.ceil((100 - inFirst) / 10) - 1) * 1000 + rtt;
  }

  // With the offset known, a 429 of the first window is often read after its reset, and its
  // successes come back after it (latency that varies reorders them). Taken as the next window's,
  // they made the capacity what the answers before the 429 showed (7 of 10: every window then
  // short, 1.3-1.9 × the least time); or the window after the 429 was held empty for it.
  it('a server clock that reads as ours: no window lost at any phase, latency or jitter up to it (≤ 1.03 × the least time)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 999 }),
        fc.integer({ min: 4, max: 30 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (phaseMs, latencyMs, share) => {
          // Each way, up to the latency itself: a round trip varies from one to three times it.
          const jitterMs = Math.round(share * latencyMs);
          const out = run({ phaseMs, latencyMs, jitterMs, requests: 100, streams: 10, sameClock: true });
          expect(out.errors).toEqual([]);
          expect(out.statuses).toEqual(Array(100).fill(200));
          expect(legacyBucket(out.limiter.snapshot)).toMatchObject({ limit: 10, windowMs: 1000, source: 'inferred' });
          expect(out.makespan).toBeLessThanOrEqual(1.03 * leastTime(out, phaseMs, latencyMs));
          // A boundary among the first two rounds may count successes of two windows as one: the
          // next window's 429s correct it. Otherwise, 429s only to those in flight at the first.
          const straddled = 1000 - phaseMs <= 2 * (latencyMs + 2 * jitterMs);
          if (!straddled) expect(stats(out).limited).toBeLessThanOrEqual(10);
        },
      ),
      {
        numRuns: 120,
        // Phases where a 429 of the first window is read after its reset, found by a scan: the
        // window after it was held empty, or its room reckoned with the refused requests in it.
        examples: [
          [988, 4, 0.5],
          [968, 8, 0.625],
          [956, 8, 1],
        ],
      },
    );
  });

  it('a server clock that reads as ours, round trips varying up to 16 ×: at most one window lost', () => {
    // Jitter far beyond the latency reorders a window's answers so much that which window a
    // success counted in is a guess: one guessed wrong costs a window, never more, and no request.
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 999 }),
        fc.integer({ min: 4, max: 30 }),
        fc.integer({ min: 0, max: 30 }),
        (phaseMs, latencyMs, jitterMs) => {
          const out = run({ phaseMs, latencyMs, jitterMs, requests: 100, streams: 10, sameClock: true });
          expect(out.errors).toEqual([]);
          expect(out.statuses).toEqual(Array(100).fill(200));
          expect(out.makespan).toBeLessThanOrEqual(
            leastTime(out, phaseMs, latencyMs) + 1000 + 4 * (latencyMs + 2 * jitterMs),
          );
        },
      ),
      { numRuns: 80 },
    );
  });

  it('latency that varies per request (requests reordered on the way) still finds 10 per second, 1 s long', () => {
    // A success sent just after a request the server refused often reached it first; counting
    // only those sent before the refused one made the capacity 9, and every later window went a
    // request short. A reset a second unsure made the window look 2 s long, with no later 429
    // to correct it.
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999 }), fc.integer({ min: 5, max: 30 }), (phaseMs, jitterMs) => {
        const out = run({ phaseMs, latencyMs: 5, jitterMs, requests: 100, streams: 10 });
        expect(out.errors).toEqual([]);
        expect(out.statuses).toEqual(Array(100).fill(200));
        expect(legacyBucket(out.limiter.snapshot)).toMatchObject({ limit: 10, windowMs: 1000, source: 'inferred' });
        // A boundary among the first round's requests (up to its slowest answer) may count a
        // window's worth of the window before: then the next window corrects it, once.
        const straddled = Math.floor(phaseMs / 1000) !== Math.floor((phaseMs + 2 * (5 + jitterMs) * 2) / 1000);
        if (!straddled) {
          expect(stats(out).limited).toBeLessThanOrEqual(10);
          expect(out.makespan).toBeLessThanOrEqual(1.1 * PHYSICAL);
        }
      }),
      { numRuns: 80 },
    );
  });

  it('a limit that drops mid-run (10 to 5) is learned again from the 429 that shows it, then no more', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 980 }), (phaseMs) => {
        const dropAt = START + phaseMs + 4500;
        const out = run({
          phaseMs,
          requests: 100,
          streams: 10,
          engine: { limitChanges: [{ at: dropAt, provider: 'fieldwire', set: { legacyLimit: 5 } }] },
        });
        expect(out.errors).toEqual([]);
        expect(out.statuses).toEqual(Array(100).fill(200));
        // 10 in flight at the first 429; at the drop, at most the 5 sent beyond the new limit.
        expect(stats(out).limited).toBeLessThanOrEqual(10 + 5);
        expect(legacyBucket(out.limiter.snapshot)).toMatchObject({ limit: 5, source: 'inferred' });
        const learned = out.states.map(legacyBucket).filter((b) => b?.source === 'inferred');
        expect(learned[0]?.limit).toBe(10);
      }),
      { numRuns: 30 },
    );
  });

  it('a window filled without 429 probes for one more now and then: a raised limit is found', () => {
    const out = run({
      phaseMs: 0,
      requests: 600,
      streams: 10,
      engine: { limitChanges: [{ at: START + 3000, provider: 'fieldwire', set: { legacyLimit: 12 } }] },
    });
    expect(out.errors).toEqual([]);
    expect(out.statuses).toEqual(Array(600).fill(200));
    expect(legacyBucket(out.limiter.snapshot)?.limit).toBe(12);
    // Each probe the server refuses costs one 429, and they grow rarer.
    expect(stats(out).limited).toBeLessThanOrEqual(10 + 5);
  });

  it('declared numbers pace the endpoint from its first request: no 429 at any phase', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 999 }), (phaseMs) => {
        const provider = providers.fieldwire({ legacyLimits: { [KEY]: { limit: 10, windowMs: 1000 } } });
        const out = run({ phaseMs, requests: 100, streams: 10, provider });
        expect(out.statuses).toEqual(Array(100).fill(200));
        expect(stats(out).limited).toBe(0);
        // Declared numbers stay what they are, whatever the bucket learned of its window's timing.
        expect(legacyBucket(out.limiter.snapshot)).toMatchObject({
          limit: 10,
          windowMs: 1000,
          sources: { limit: 'hint', windowMs: 'hint' },
        });
      }),
      { numRuns: 30 },
    );
  });

  it('before its first 429 a legacy endpoint shows no numbers: unknown, not a minute', () => {
    const out = run({ phaseMs: 0, requests: 5, streams: 5, provider: providers.fieldwire({ legacy: [KEY] }) });
    expect(stats(out).limited).toBe(0);
    expect(legacyBucket(out.limiter.snapshot)).toMatchObject({ limit: null, windowMs: null, source: 'hint' });
  });
});

describe('a window inferred after a long quiet stretch', () => {
  /** `quiet` requests to `url` a minute apart, a 429 (`body`, Retry-After 1 s), then 30 at once: how many went in the next second. */
  function burstAfterQuiet(provider: Provider, url: string, method: string, quiet: number, body?: unknown) {
    const scheduler = new TestScheduler(() => undefined);
    let sentInSecond = 0;
    let snapshot: LimiterSnapshot | undefined;
    scheduler.run(() => {
      const limiter = createLimiter({ provider, key: 'quiet', scheduler, maxWaitMs: 5000 });
      const send = (status: number, at: number, count = false) =>
        scheduler.schedule(() => {
          new Observable<unknown>((s) => {
            if (count && scheduler.now() < at + 1000) sentInSecond++;
            s.next({
              status,
              headers: status === 429 ? { 'retry-after': '1' } : {},
              body: status === 429 ? body : undefined,
            });
            s.complete();
          })
            .pipe(rateLimit(limiter, { method, url }, { maxRetries: 0 }))
            .subscribe({ error: () => undefined });
        }, at);
      for (let m = 0; m < quiet; m++) send(200, m * 60_000);
      send(429, quiet * 60_000);
      for (let i = 0; i < 30; i++) send(200, quiet * 60_000 + 2_000, true);
      scheduler.schedule(() => (snapshot = limiter.snapshot), quiet * 60_000 + 2_500);
    });
    return { sentInSecond, snapshot };
  }

  it('HubSpot search, hinted 5 a second: two hours of one a minute, then a 429, does not raise it to 120 a window', () => {
    const out = burstAfterQuiet(providers.hubspot(), '/crm/v3/objects/contacts/search', 'POST', 120, {
      policyName: 'SECONDLY',
    });
    expect(out.sentInSecond).toBeLessThanOrEqual(5);
    const search = out.snapshot?.buckets.find((b) => b.name === 'search');
    expect(search?.windowMs).toBe(1000);
  });

  it('a legacy endpoint with no hint: the window guessed from 30 hours of traffic is at most maxServerWaitMs', () => {
    const out = burstAfterQuiet(providers.fieldwire({ legacy: [KEY] }), '/projects/42/legacy_reports', 'GET', 30 * 60);
    const legacy = legacyBucket(out.snapshot as LimiterSnapshot);
    expect(legacy?.windowMs).toBeLessThanOrEqual(26 * 3_600_000);
  });
});
