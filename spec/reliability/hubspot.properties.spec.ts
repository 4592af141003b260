/**
 * HubSpot under arbitrary traffic, in virtual time against the simulator: the burst limit of a
 * rolling 10 s (compressed), the daily limit, and CRM searches at 5 a second that carry no
 * headers; requests at any time or all at once, 1–30 streams, latency jittered each way
 * (counted in another order than sent), one to three limiters on the account. No 429; every
 * request ends with its answer; the run takes no longer than the limits allow plus round trips.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { providers } from '../../lib/index.js';
import { assertEndedOnce } from './harness.js';
import { limitedCount, runProvider, serverStatuses, type RunRequest, traffic, latency } from './providerRun.js';

const SEARCH = '/crm/v3/objects/contacts/search';

describe('HubSpot: burst limit and searches (virtual time, the simulator)', () => {
  it('a search, then six more 11 ms later: the sixth waits for the first to leave the second, the seventh for the second; no 429', () => {
    // Paced as a fixed second opened by the first search, the four at 11 ms filled it, and the
    // two sent once it ended (at 1 s and the guard) met four of them still within a sliding
    // server's last second: the second of those was refused.
    const requests: RunRequest[] = [0, 11, 11, 11, 11, 11, 11].map((at) => ({ at, method: 'POST', path: SEARCH }));
    const out = runProvider({
      simulated: 'hubspot',
      provider: () => providers.hubspot(),
      phaseMs: 0,
      requests,
      streams: 7,
      up: [0],
      down: [0],
    });
    expect(assertEndedOnce(out.ledgers)).toEqual({ 'status 200': 7 });
    expect(limitedCount(out, 'hubspot')).toBe(0);
    const sent = out.arrivals.map((a) => a.at);
    expect(sent.slice(0, 5)).toEqual([0, 11, 11, 11, 11]);
    expect(sent[5]).toBeGreaterThanOrEqual(1000);
    expect(sent[6]).toBeGreaterThanOrEqual(1011);
    // Not held a further second: within the guard of when the window lets them go.
    expect(sent[6]).toBeLessThanOrEqual(1011 + 100);
  });

  it('searches at any time: no 429, every search answered', () => {
    fc.assert(
      fc.property(
        fc.record({
          at: fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 5000 })), { minLength: 1, maxLength: 40 }),
          streams: fc.integer({ min: 1, max: 20 }),
          up: latency,
          down: latency,
          limiters: fc.integer({ min: 1, max: 2 }),
        }),
        (o) => {
          const requests: RunRequest[] = o.at.map((at, i) => ({ at, method: 'POST', path: SEARCH, limiter: i }));
          const out = runProvider({
            simulated: 'hubspot',
            provider: () => providers.hubspot(),
            phaseMs: 0,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
          });
          assertEndedOnce(out.ledgers);
          expect(serverStatuses(out.arrivals)).toEqual({ 200: requests.length });
          expect(limitedCount(out, 'hubspot')).toBe(0);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('a search the server counts after a call whose figure is read later: its unit stays spent, no call past the day', () => {
    // Five a day, six calls at once over three limiters, the search latencies jittered: the
    // second search reaches the server after the call that reads "1 left", and its answer (no
    // daily figure) is back before that figure is read. Forgotten once let go, it left the
    // limiter one unit the server had not, and the sixth call went past the day.
    const searchAt = new Set([1, 4]);
    const requests: RunRequest[] = Array.from({ length: 6 }, (_, i) => ({
      at: 0,
      method: searchAt.has(i) ? 'POST' : i % 2 ? 'GET' : 'POST',
      path: searchAt.has(i) ? SEARCH : `/crm/v3/objects/contacts${i % 2 ? `/${i}` : ''}`,
      limiter: i,
    }));
    const out = runProvider({
      simulated: 'hubspot',
      provider: () => providers.hubspot({ hints: { interval: { limit: 5 }, daily: { limit: 5 } } }),
      engine: { hubspot: { perInterval: 5, perDay: 5 } },
      phaseMs: 0,
      requests,
      streams: 1,
      limiters: 3,
      up: [0, 1, 0],
      down: [0, 2, 0],
    });
    const ends = assertEndedOnce(out.ledgers);
    expect(limitedCount(out, 'hubspot')).toBe(0);
    expect(out.arrivals.length).toBeLessThanOrEqual(5);
    expect(ends['QuotaExhaustedError']).toBe(6 - out.arrivals.length);
  });

  it('a burst limit of 5–40 per rolling 10 s, a daily limit, searches among the calls: no 429; past the day, QuotaExhaustedError at once; within the windows of the least time', () => {
    fc.assert(
      fc.property(
        fc.record({
          perInterval: fc.integer({ min: 5, max: 40 }),
          perDay: fc.oneof(fc.constant(1000), fc.integer({ min: 5, max: 80 })),
          calls: fc.array(
            fc.record({ at: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 30_000 })), search: fc.boolean() }),
            { minLength: 1, maxLength: 80 },
          ),
          ...traffic,
          phaseMs: fc.integer({ min: 0, max: 3_600_000 }),
        }),
        (o) => {
          const perDay = o.perDay;
          const requests: RunRequest[] = o.calls.map((c, i) => ({
            at: c.at,
            method: c.search ? 'POST' : i % 2 ? 'GET' : 'POST',
            path: c.search ? SEARCH : `/crm/v3/objects/contacts${i % 2 ? `/${i}` : ''}`,
            limiter: i,
          }));
          const out = runProvider({
            simulated: 'hubspot',
            provider: () =>
              providers.hubspot({ hints: { interval: { limit: o.perInterval }, daily: { limit: perDay } } }),
            engine: { hubspot: { perInterval: o.perInterval, perDay } },
            phaseMs: o.phaseMs,
            requests,
            streams: o.streams,
            limiters: o.limiters,
            up: o.up,
            down: o.down,
          });
          const ends = assertEndedOnce(out.ledgers);
          expect(limitedCount(out, 'hubspot')).toBe(0);
          // The day ends at midnight, hours away: what it cannot hold fails at once, typed.
          // A search's answer tells no daily figure, and the server may count it after a call
          // whose figure is read later: its unit stays taken off until a figure from a call sent
          // after its answer tells. So near the day's end each search may keep back one unit the
          // server still had (never a call past the day: no 429 above).
          const searches = o.calls.filter((c) => c.search).length;
          const answered = (ends['status 200'] ?? 0) + (ends['status 201'] ?? 0);
          const most = Math.min(perDay, requests.length);
          expect(out.arrivals).toHaveLength(answered);
          expect(answered).toBeLessThanOrEqual(most);
          expect(answered).toBeGreaterThanOrEqual(most - searches);
          if (searches === 0) expect(answered).toBe(most);
          expect(ends['QuotaExhaustedError'] ?? 0).toBe(requests.length - answered);
          const served = answered;
          // A rolling window frees each call a window after its answer (and the guard): the
          // calls after the last arrival take at most that per window's worth of them.
          const rtt = Math.max(...o.up) + Math.max(...o.down);
          const lastAt = Math.max(...o.calls.map((c) => c.at));
          const windows = Math.max(Math.ceil(served / o.perInterval), Math.ceil(searches / 5) / 10);
          const perStream = Math.ceil(served / (o.streams * o.limiters));
          expect(out.lastEnd).toBeLessThanOrEqual(
            lastAt + windows * (10_000 + rtt + 100) + (perStream + 1) * (rtt + 1),
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});
