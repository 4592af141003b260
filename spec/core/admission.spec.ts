import { afterEach, describe, expect, it } from '@jest/globals';
import { asyncScheduler, config } from 'rxjs';
import { createLimiter, defineProvider, responseLike, type Permit } from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

const ok = responseLike({ status: 200 });
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
      for (const p of first) {
        p.observe(ok);
        p.release();
      }
      // The window is spent: the next three wait for it to end and are admitted in one drain.
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
      asyncScheduler.schedule(() => undefined, 2000);
      return { limiter, granted, rejected, queued };
    });
    expect(out.queued).toBe(3);
    expect(out.granted).toEqual(['/d', '/e', '/f']);
    expect(out.rejected).toEqual([]);
    // /d's permit came back at once; /e and /f hold theirs.
    expect(out.limiter.snapshot.inFlight).toBe(2);
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
