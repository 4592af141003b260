import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, from, map, mergeMap } from 'rxjs';
import { createLimiter, providers, rateLimit } from '../../lib/index.js';
import { createSimulatorEngine, virtualProvider } from '../../lib/testing/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const START = Date.UTC(2026, 10, 23, 12, 0, 0);
const MINUTE = 60_000;

interface Sent {
  readonly path: string;
  readonly status: number;
  readonly at: number;
}

/** `paths` sent through one limiter on generic({ resourceHeader }) against the GitHub simulator. */
function run(paths: readonly string[], streams: number, search = 10) {
  return inVirtualTime(({ now }) => {
    const engine = createSimulatorEngine({
      latencyMs: 20,
      github: { search, limitedStatus: 429 },
      now: () => START + asyncScheduler.now(),
    });
    const api = virtualProvider(engine, asyncScheduler);
    const limiter = createLimiter({
      provider: providers.generic({ name: 'github', resourceHeader: 'x-ratelimit-resource' }),
      key: 'gh-token',
      maxWaitMs: 10 * MINUTE,
    });
    const sent: Sent[] = [];
    const errors: unknown[] = [];
    from(paths)
      .pipe(
        mergeMap(
          (path) =>
            api.request('github', { path, token: 'gh-token' }).pipe(
              rateLimit(limiter, { method: 'GET', url: path }),
              map((r) => ({ path, status: r.status, at: now() })),
            ),
          streams,
        ),
      )
      .subscribe({
        next: (s) => sent.push(s),
        error: (e: unknown) => errors.push(e),
      });
    return { sent, errors, engine, limiter, now };
  });
}

describe('generic({ resourceHeader }): one bucket per resource the responses name', () => {
  it('paces GitHub core and search separately from a cold start, with no 429', () => {
    // 120 core and 35 search requests, interleaved, all queued at once: none of their routes
    // is known until a response names its resource.
    const paths = Array.from({ length: 155 }, (_, i) =>
      i % 4 === 3 && i < 140 ? `/search/issues?q=${i}` : `/repos/o/r/issues/${i}`,
    );
    const searches = paths.filter((p) => p.startsWith('/search/')).length;
    const { sent, errors, engine, limiter } = run(paths, 155);
    expect(errors).toEqual([]);
    expect(sent).toHaveLength(155);
    expect(sent.every((s) => s.status === 200)).toBe(true);
    expect(engine.statsFor('github', 'Bearer gh-token')).toMatchObject({ ok: 155, limited: 0 });
    const buckets = Object.fromEntries(limiter.snapshot.buckets.map((b) => [b.name, b]));
    expect(buckets['core']).toMatchObject({ limit: 5000, source: 'headers' });
    expect(buckets['search']).toMatchObject({ limit: 10, source: 'headers' });
    // 35 searches at 10 a minute take three more windows; the core requests do not wait for them.
    const last = Math.max(...sent.map((s) => s.at));
    expect(searches).toBe(35);
    expect(last).toBeGreaterThanOrEqual(3 * MINUTE);
    expect(last).toBeLessThan(4 * MINUTE + 5000);
  });

  it('core requests are not held back by a spent search budget', () => {
    // Search first (its budget is spent at once), then core: the core requests finish within
    // seconds while the searches wait for their next window.
    const paths = [
      ...Array.from({ length: 15 }, (_, i) => `/search/issues?q=${i}`),
      ...Array.from({ length: 40 }, (_, i) => `/repos/o/r/pulls/${i}`),
    ];
    const { sent, engine } = run(paths, 55);
    expect(engine.statsFor('github', 'Bearer gh-token')).toMatchObject({ ok: 55, limited: 0 });
    const core = sent.filter((s) => s.path.startsWith('/repos/'));
    const search = sent.filter((s) => s.path.startsWith('/search/'));
    expect(core).toHaveLength(40);
    expect(Math.max(...core.map((s) => s.at))).toBeLessThan(10_000);
    // 10 searches in the first window (its last one may be kept back to find where the window
    // ends), 5 in the next.
    expect(search.filter((s) => s.at < MINUTE)).toHaveLength(10);
    expect(search.filter((s) => s.at >= MINUTE)).toHaveLength(5);
  });
});
