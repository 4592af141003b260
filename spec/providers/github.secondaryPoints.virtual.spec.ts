import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, from, map, mergeMap, timer, type Observable } from 'rxjs';
import { createLimiter, providers, rateLimit, type LimiterOptions } from '../../lib/index.js';
import { createSimulatorEngine, type SimulatorResponse } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { prng as rng } from '../reliability/arbitraries.js';

// GitHub's secondary limits (docs: "Rate limits for the REST API", "About secondary rate limits"
// and "Calculating points for the secondary rate limit"): no more than 900 points a minute for
// REST (a GET 1, a write 5), 2,000 for GraphQL, and no more than 100 concurrent requests. The
// simulator refuses past the points with a 403, `retry-after` and "secondary rate limit".

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const MINUTE = 60_000;
const AUTH = { Authorization: 'Bearer gh-token' };
let runs = 0;

interface Request {
  readonly method: string;
  readonly path: string;
}

/**
 * `requests` through one limiter on `provider` against the GitHub simulator, over `streams`
 * streams, in virtual time. Each leg of a trip takes 0–100 ms, one in ten 200–2,200 ms: the
 * server counts a request when it arrives.
 */
function run(
  requests: readonly Request[],
  streams: number,
  provider = providers.github(),
  options: Partial<LimiterOptions> = {},
) {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({ now: () => START + now() });
    const random = rng(7);
    const leg = () => (random() < 0.1 ? 200 + Math.floor(random() * 2000) : Math.floor(random() * 100));
    const arrivals: { at: number; status: number }[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    const send = (r: Request): Observable<SimulatorResponse> =>
      defer(() => {
        inFlight++;
        mostInFlight = Math.max(mostInFlight, inFlight);
        return timer(leg(), asyncScheduler).pipe(
          mergeMap(() => {
            const res = engine.handle({ provider: 'github', method: r.method, path: r.path, headers: AUTH });
            arrivals.push({ at: now(), status: res.status });
            return timer(leg(), asyncScheduler).pipe(map(() => res));
          }),
          map((res) => {
            inFlight--;
            return res;
          }),
        );
      });
    const limiter = createLimiter({ provider, key: `gh-user-${++runs}`, maxWaitMs: 60 * MINUTE, ...options });
    const ended: number[] = [];
    const errors: unknown[] = [];
    from(requests)
      .pipe(
        mergeMap(
          (r) => send(r).pipe(rateLimit(limiter, { method: r.method, url: r.path }, { retryNonIdempotent: true })),
          streams,
        ),
      )
      .subscribe({ next: () => ended.push(now()), error: (e: unknown) => errors.push(e) });
    return { arrivals, ended, errors, engine, mostInFlight: () => mostInFlight };
  });
}

/** The most requests the server let through in any 60 s (by arrival). */
function busiestMinute(arrivals: readonly { at: number; status: number }[]): number {
  const ok = arrivals.filter((a) => a.status < 300).map((a) => a.at);
  let most = 0;
  for (let i = 0, j = 0; i < ok.length; i++) {
    while ((ok[j] ?? 0) <= (ok[i] ?? 0) - MINUTE) j++;
    most = Math.max(most, i - j + 1);
  }
  return most;
}

const gets = (n: number): Request[] =>
  Array.from({ length: n }, (_, i) => ({ method: 'GET', path: `/repos/o/r/issues/${i}` }));

describe('simulator: GitHub secondary points', () => {
  it('past 900 REST points in a sliding minute: 403 with retry-after and the secondary-limit message', () => {
    let t = START;
    const engine = createSimulatorEngine({ now: () => t });
    const call = (method: string, path = '/repos/o/r/issues') =>
      engine.handle({ provider: 'github', method, path, headers: AUTH });
    for (let i = 0; i < 880; i++) expect(call('GET').status).toBe(200);
    t += 30_000;
    // A write costs 5 points: 880 + 4 × 5 = 900.
    for (let i = 0; i < 4; i++) expect(call('POST').status).toBe(201);
    const refused = call('GET');
    expect(refused.status).toBe(403);
    expect(refused.headers['retry-after']).toBe('30');
    expect(refused.headers['x-ratelimit-remaining']).toBe(String(5000 - 884));
    expect(refused.body).toMatch(/secondary rate limit/);
    // GraphQL has points of its own.
    expect(call('POST', '/graphql').status).toBe(200);
    // A minute after the first 880 reads they leave the window; the writes stay in it.
    t += 30_000;
    expect(call('GET').status).toBe(200);
    expect(engine.statsFor('github', 'Bearer gh-token')).toMatchObject({ limited: 1 });
  });

  it('answers 429 instead when limitedStatus says so; GraphQL refuses past 2,000 points', () => {
    const engine = createSimulatorEngine({ now: () => START, github: { limitedStatus: 429 } });
    const graphql = () => engine.handle({ provider: 'github', method: 'POST', path: '/graphql', headers: AUTH });
    for (let i = 0; i < 2000; i++) expect(graphql().status).toBe(200);
    const refused = graphql();
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('60');
  });
});

describe('providers.github: the default profile keeps to the secondary points', () => {
  it('3,000 GETs over 50 streams: no secondary-limit refusal, at close to 900 a minute', () => {
    const { arrivals, ended, errors, engine } = run(gets(3000), 50);
    expect(errors).toEqual([]);
    expect(ended).toHaveLength(3000);
    expect(engine.statsFor('github', 'Bearer gh-token')).toMatchObject({ ok: 3000, limited: 0 });
    expect(busiestMinute(arrivals)).toBeLessThanOrEqual(900);
    // The first minute uses the whole budget, and 3,000 points take 3 minutes and a bit at 900
    // a minute: the last request needs the third minute's points back.
    expect(arrivals.filter((a) => a.at < MINUTE).length).toBeGreaterThanOrEqual(850);
    const last = Math.max(...ended);
    expect(last).toBeGreaterThanOrEqual(3 * MINUTE);
    expect(last).toBeLessThan(3 * MINUTE + 15_000);
  });

  it('reads and writes together: a write costs 5 points, and nothing is refused', () => {
    // 2,000 reads and 150 writes: 2,750 points, and 150 writes at 80 a minute.
    const requests = Array.from({ length: 2150 }, (_, i): Request =>
      i % 14 === 13 && i < 2100
        ? { method: 'POST', path: `/repos/o/r/issues/${i}/comments` }
        : { method: 'GET', path: `/repos/o/r/issues/${i}` },
    );
    expect(requests.filter((r) => r.method === 'POST')).toHaveLength(150);
    const { ended, errors, engine } = run(requests, 50);
    expect(errors).toEqual([]);
    expect(ended).toHaveLength(2150);
    expect(engine.statsFor('github', 'Bearer gh-token')).toMatchObject({ limited: 0 });
    expect(Math.max(...ended)).toBeGreaterThanOrEqual(3 * MINUTE);
    expect(Math.max(...ended)).toBeLessThan(3 * MINUTE + 15_000);
  });

  it('`secondaryPoints: false` leaves the points out: the same GETs meet the secondary limit', () => {
    const { ended, engine } = run(gets(1500), 50, providers.github({ secondaryPoints: false }));
    expect(ended).toHaveLength(1500);
    expect(engine.statsFor('github', 'Bearer gh-token').limited).toBeGreaterThan(0);
  });

  it('200 streams never have more than 100 requests in flight: the profile brings the concurrency limit', () => {
    const { ended, engine, mostInFlight } = run(gets(1000), 200, providers.github());
    expect(ended).toHaveLength(1000);
    expect(engine.statsFor('github', 'Bearer gh-token')).toMatchObject({ limited: 0 });
    expect(mostInFlight()).toBe(100);
  });

  it("the limiter's own maxConcurrent wins over the profile's", () => {
    const { ended, mostInFlight } = run(gets(300), 200, providers.github(), { maxConcurrent: 30 });
    expect(ended).toHaveLength(300);
    expect(mostInFlight()).toBe(30);
  });
});
