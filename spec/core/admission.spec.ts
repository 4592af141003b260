import { afterEach, describe, expect, it } from '@jest/globals';
import { asyncScheduler, config } from 'rxjs';
import {
  createLimiter,
  defineProvider,
  providers,
  responseLike,
  type LimiterEvent,
  type Permit,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const ok = responseLike(200, {});
const threePerSecond = defineProvider({
  name: 'three-per-second',
  buckets: [{ name: 'default', limit: 3, windowMs: 1000 }],
  read: () => ({ outcome: 'ok', buckets: [] }),
});

describe('acquire handlers that throw', () => {
  afterEach(() => {
    config.onUnhandledError = null;
  });

  it('a throwing granted handler neither stops the rest of its batch nor leaks its permit; the error is reported later', async () => {
    const reported: unknown[] = [];
    config.onUnhandledError = (e) => reported.push(e);
    const boom = new Error('handler bug');
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: threePerSecond, key: 'k', coldStartConcurrency: 3 });
      const first: Permit[] = [];
      for (const url of ['/a', '/b', '/c'])
        limiter.acquire({ url }, { granted: (p) => first.push(p), rejected: () => undefined });
      // Three more wait for the window to end (limit 3 per second)…
      const granted: string[] = [];
      const rejected: string[] = [];
      for (const url of ['/d', '/e', '/f'])
        limiter.acquire(
          { url },
          {
            granted: () => {
              granted.push(url);
              if (url === '/d') throw boom;
            },
            rejected: () => rejected.push(url),
          },
        );
      const queued = limiter.snapshot.queued;
      // …and are admitted in one drain when it does.
      for (const p of first) p.release();
      let inFlight = -1;
      asyncScheduler.schedule(() => (inFlight = limiter.snapshot.inFlight), 2000);
      return {
        granted,
        rejected,
        queued,
        get inFlight() {
          return inFlight;
        },
      };
    });
    expect(out.queued).toBe(3);
    expect(out.granted).toEqual(['/d', '/e', '/f']);
    expect(out.rejected).toEqual([]);
    // /d's permit came back at once; /e and /f hold theirs.
    expect(out.inFlight).toBe(2);
    expect(reported).toEqual([]);
    await new Promise((r) => setTimeout(r, 10));
    expect(reported).toEqual([boom]);
  });

  it('a throwing rejected handler does not keep the other waiters from being told', async () => {
    const reported: unknown[] = [];
    config.onUnhandledError = (e) => reported.push(e);
    const boom = new Error('rejected handler bug');
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: threePerSecond, key: 'k', coldStartConcurrency: 3, maxWaitMs: 500 });
      const first: Permit[] = [];
      for (const url of ['/a', '/b', '/c'])
        limiter.acquire({ url }, { granted: (p) => first.push(p), rejected: () => undefined });
      const told: string[] = [];
      for (const url of ['/d', '/e', '/f'])
        limiter.acquire(
          { url },
          {
            granted: () => told.push(`${url} granted`),
            rejected: () => {
              told.push(`${url} rejected`);
              if (url === '/d') throw boom;
            },
          },
        );
      // No response: only maxWaitMs ends the wait, for all three in one drain.
      asyncScheduler.schedule(() => undefined, 1000);
      return { limiter, told };
    });
    expect(out.told).toEqual(['/d rejected', '/e rejected', '/f rejected']);
    expect(out.limiter.snapshot.queued).toBe(0);
    await new Promise((r) => setTimeout(r, 10));
    expect(reported).toEqual([boom]);
  });
});

describe('permit lease', () => {
  const coldBucket = defineProvider({
    name: 'cold',
    buckets: [{ name: 'default', limit: 100, windowMs: 1000 }],
    read: () => ({ outcome: 'ok', buckets: [] }),
  });

  it('a request that never settles gives its cold-start slot back after permitTimeoutMs, with an event', () => {
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({ provider: coldBucket, key: 'k', permitTimeoutMs: 60_000 });
      const events: LimiterEvent[] = [];
      limiter.events$.subscribe((e) => events.push(e));
      // The first request never settles: its permit is never released.
      limiter.acquire({ url: '/hangs' }, { granted: () => undefined, rejected: () => undefined });
      let secondAt: number | undefined;
      limiter.acquire({ url: '/next' }, { granted: () => (secondAt = now()), rejected: () => undefined });
      return {
        limiter,
        events,
        get secondAt() {
          return secondAt;
        },
      };
    });
    // The bucket is cold (one request until a response tells its limits): only the lease frees it.
    expect(out.secondAt).toBe(60_000);
    const expired = out.events.filter((e) => e.type === 'permit-expired');
    expect(expired[0]).toMatchObject({ at: 60_000, request: { path: '/hangs' }, heldMs: 60_000 });
  });

  it('a permit released in time is not expired later, and no lease timer is left behind', () => {
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: coldBucket, key: 'k', permitTimeoutMs: 60_000 });
      const events: LimiterEvent[] = [];
      limiter.events$.subscribe((e) => events.push(e));
      limiter.acquire(
        { url: '/quick' },
        {
          granted: (p) => asyncScheduler.schedule(() => (p.observe(ok), p.release()), 100),
          rejected: () => undefined,
        },
      );
      asyncScheduler.schedule(() => undefined, 120_000);
      return { limiter, events };
    });
    expect(out.events.map((e) => e.type)).not.toContain('permit-expired');
    expect(out.limiter.snapshot.inFlight).toBe(0);
    expect(out.limiter.hasTimer).toBe(false);
  });

  it('permitTimeoutMs must be a number >= 0 or Infinity', () => {
    expect(() => createLimiter({ provider: providers.generic(), key: 'k', permitTimeoutMs: -1 })).toThrow(
      /permitTimeoutMs/,
    );
    expect(() => createLimiter({ provider: providers.generic(), key: 'k', permitTimeoutMs: Infinity })).not.toThrow();
  });
});
