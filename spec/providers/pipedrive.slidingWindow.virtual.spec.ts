import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, from, map, mergeMap, timer, type Observable } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { imfFixdate } from '../../lib/testing/format.js';
import type { SimulatorResponse } from '../../lib/testing/index.js';
import { randomArrivals, windowServer } from '../helpers/slidingServer.js';
import { inVirtualTime } from '../helpers/virtual.js';
import { prng as random } from '../reliability/arbitraries.js';

// Pipedrive's docs call its limit "per 2-second window" and `x-ratelimit-reset` "the remaining
// window before the rate limit resets", without saying whether the window is fixed or slides.
// The simulator's window is fixed (opened by a first request); this server slides: it counts
// the requests it let through in the last 2 s, and its reset is the whole seconds until the
// oldest of them leaves the window (which frees one slot, not the window), until the newest
// does, or a whole window. It can also be fixed, as the simulator's: opened by a first request,
// counting every request for 2 s, its reset the whole seconds to its end. In virtual time, with
// a random latency each way.

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const LIMIT = 20;
const WINDOW_MS = 2000;

interface Case {
  /** When each request is asked for, ms from the start. */
  readonly at: readonly number[];
  /** Latency each way, ms: [least, most]. */
  readonly latency: readonly [number, number];
  readonly seed: number;
  /** What `x-ratelimit-reset` counts to: the oldest request's leaving the window, or the newest's. */
  readonly reset?: 'oldest' | 'newest' | 'window';
  /** A sliding window (the default), or a fixed one opened by a first request. */
  readonly kind?: 'sliding' | 'fixed';
  /**
   * The requests (in the order the server counted them) answered by a gateway's 502 page with
   * no rate-limit headers, after the server counted them.
   */
  readonly blind?: ReadonlySet<number>;
}

function run(c: Case) {
  return inVirtualTime(({ now }) => {
    const rnd = random(c.seed);
    const lat = (): number => c.latency[0] + Math.floor(rnd() * (c.latency[1] - c.latency[0] + 1));
    const statuses: number[] = [];
    const serve = windowServer(LIMIT, WINDOW_MS, c.kind ?? 'sliding', c.reset ?? 'oldest');
    const answer = (serverNow: number): SimulatorResponse => {
      const { ok, remaining, resetS } = serve(serverNow);
      const blind = c.blind?.has(statuses.length) === true;
      statuses.push(ok ? 200 : 429);
      if (blind) return { status: 502, headers: { 'Content-Type': 'text/html' }, body: '<h1>502 Bad Gateway</h1>' };
      return {
        status: ok ? 200 : 429,
        headers: {
          Date: imfFixdate(serverNow),
          'Content-Type': 'application/json',
          'x-ratelimit-limit': String(LIMIT),
          'x-ratelimit-remaining': String(remaining),
          'x-ratelimit-reset': String(resetS),
        },
        body: ok ? '{"success":true,"data":[]}' : '{"success":false,"error":"request over limit","errorCode":429}',
      };
    };
    const send = (): Observable<SimulatorResponse> =>
      defer(() => {
        const down = lat();
        return timer(lat(), asyncScheduler).pipe(
          map(() => answer(START + now())),
          mergeMap((res) => timer(down, asyncScheduler).pipe(map(() => res))),
        );
      });
    const limiter = createLimiter({ provider: providers.pipedrive({ plan: 'essential' }), key: 'pipedrive-token' });
    const done: number[] = [];
    from(c.at.map((at, i) => ({ at, i })))
      .pipe(
        mergeMap(({ at, i }) =>
          timer(at, asyncScheduler).pipe(
            mergeMap(() => send().pipe(rateLimit(limiter, { method: 'GET', url: `/v1/deals?start=${i}` }))),
            map((r) => {
              done.push(now());
              return r.status;
            }),
          ),
        ),
      )
      .subscribe();
    // Read once the scheduler has run everything (after `inVirtualTime` returns).
    return { done, limited: () => statuses.filter((s) => s === 429).length, last: () => Math.max(...done) };
  });
}

/** The least time `n` requests asked for at `at` take through a sliding window of LIMIT per WINDOW_MS. */
function leastTime(at: readonly number[]): number {
  const sent: number[] = [];
  for (const a of [...at].sort((x, y) => x - y)) {
    const k = sent.length - LIMIT;
    sent.push(Math.max(a, k >= 0 ? (sent[k] ?? 0) + WINDOW_MS : a));
  }
  return Math.max(...sent);
}

/**
 * The least time `n` requests asked for at `at` take through a fixed window of LIMIT per
 * WINDOW_MS that opens at the first request after the last one ended.
 */
function leastFixedTime(at: readonly number[]): number {
  let opened = -Infinity;
  let n = 0;
  let last = 0;
  for (const a of [...at].sort((x, y) => x - y)) {
    let t = Math.max(a, last);
    if (t < opened + WINDOW_MS && n >= LIMIT) t = opened + WINDOW_MS;
    if (t >= opened + WINDOW_MS) {
      opened = t;
      n = 0;
    }
    n += 1;
    last = t;
  }
  return last;
}

describe('providers.pipedrive against a sliding 2-second window (virtual time)', () => {
  const cases: Array<[string, Case]> = [];
  for (let seed = 1; seed <= 6; seed += 1) {
    const rnd = random(seed * 7919);
    const trickle = Array.from({ length: 15 }, (_, i) => Math.floor(i * 100 + rnd() * 50));
    const burst = Array.from({ length: 80 }, () => 1500 + Math.floor(rnd() * 300));
    for (const reset of ['oldest', 'newest', 'window'] as const)
      cases.push([
        `a trickle then a burst, reset ${reset}, seed ${seed}`,
        { at: [...trickle, ...burst], latency: [5, 60], seed, reset },
      ]);
    const random_ = Array.from({ length: 120 }, () => Math.floor(rnd() * 6000));
    for (const reset of ['oldest', 'newest', 'window'] as const)
      cases.push([
        `arrivals at random over 6 s, reset ${reset}, seed ${seed}`,
        { at: random_, latency: [10, 120], seed, reset },
      ]);
  }
  cases.push(['120 at once', { at: Array<number>(120).fill(0), latency: [20, 20], seed: 1 }]);

  it.each(cases)('%s: no 429, nothing lost, and not slower than the window needs', (_name, c) => {
    const out = run(c);
    expect(out.done).toHaveLength(c.at.length);
    expect(out.limited()).toBe(0);
    // After each told reset one request goes alone and its answer tells what the window has
    // left: a round trip per freed slot at worst. A client stuck waiting would miss this bound.
    expect(out.last()).toBeLessThanOrEqual(leastTime(c.at) * 1.4 + 500);
  });

  // On a sliding window each reset tells when the oldest request then leaves: under a jittered
  // latency, the first reading of a window may tell a reset whose freed slot later readings have
  // already counted. Once readings prove the window slides, the bucket waits for the latest reset
  // read with nothing left, and for the answers in flight (docs/architecture.md, "Local refill").
  // These two seeds met a 429 at the first reading's reset before.
  const jittered = [20, 24].map((seed): [string, Case] => [
    `arrivals at random over 6 s, seed ${seed}`,
    { at: randomArrivals(seed), latency: [5, 400], seed },
  ]);
  it.each(jittered)('%s: no 429 with up to 400 ms each way', (_name, c) => {
    const out = run(c);
    expect(out.done).toHaveLength(c.at.length);
    expect(out.limited()).toBe(0);
  });
});

describe('providers.pipedrive: a probe answered by a 502 page with no headers (virtual time)', () => {
  // After a told reset one request probes the window. Answered by a gateway's 502 page (the
  // server counted it), it was taken for the window's answer: every request waiting went into a
  // window that had freed one slot (13 × 429 at 0–20 ms each way). The next probe now goes a
  // second later. (The 502 is its request's answer: the caller sees it.)
  const SEEDS = Array.from({ length: 40 }, (_, i) => i + 1);
  it.each(['oldest', 'newest', 'window'] as const)(
    'the 21st request the server counts answered blind, reset %s: no 429, nothing lost',
    (reset) => {
      const limited: number[] = [];
      for (const seed of SEEDS) {
        // 35 requests over 1.3 s: the window is full when its first reset comes.
        const rnd = random(seed * 31);
        const at = Array.from({ length: 35 }, () => Math.floor(rnd() * 1300));
        const c: Case = { at, latency: [0, 20], seed, reset, blind: new Set([20]) };
        const out = run(c);
        expect(out.done).toHaveLength(c.at.length);
        if (out.limited() > 0) limited.push(seed);
      }
      expect(limited).toEqual([]);
    },
  );
});

describe('providers.pipedrive against either kind of 2-second window, 60 seeds (virtual time)', () => {
  const SEEDS = Array.from({ length: 60 }, (_, i) => i + 1);
  const ceilings = [150, 200, 250, 400];

  // The same arrivals on a sliding window whose reset counts to the oldest request (the kind that
  // met 429s: 9 seeds of 60 at 400 ms each way, 4 at 250 ms, 2 at 200 ms).
  it.each(ceilings)('sliding: no 429 and nothing lost with up to %i ms each way', (most) => {
    const limited: number[] = [];
    for (const seed of SEEDS) {
      const c: Case = { at: randomArrivals(seed), latency: [5, most], seed };
      const out = run(c);
      expect(out.done).toHaveLength(c.at.length);
      if (out.limited() > 0) limited.push(seed);
    }
    expect(limited).toEqual([]);
  });

  // A fixed window takes no longer for what a sliding one needs: each of its windows costs a
  // probe's round trip after the reset at most (one trip each way, up to twice `most`), beyond
  // the least time. Holding the probe at a fixed window's first reset (as a sliding window needs)
  // cost up to a second a window, and fails this.
  it.each(ceilings)(
    'fixed: no 429, nothing lost, and a round trip a window at most with up to %i ms each way',
    (most) => {
      const late: number[] = [];
      for (const seed of SEEDS) {
        const c: Case = { at: randomArrivals(seed), latency: [5, most], seed, kind: 'fixed' };
        const out = run(c);
        expect(out.done).toHaveLength(c.at.length);
        expect(out.limited()).toBe(0);
        const windows = Math.ceil(c.at.length / LIMIT);
        if (out.last() > leastFixedTime(c.at) + windows * 2 * most) late.push(seed);
      }
      expect(late).toEqual([]);
    },
  );
});
