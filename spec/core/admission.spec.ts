import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { asyncScheduler, config, type SchedulerAction, type SchedulerLike, type Subscription } from 'rxjs';
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

  it('in real time, a permit taken after one was given back expires a lease after its own admission, not sooner', async () => {
    // The lease timer stays set when the last permit is given back (set for that permit's lease):
    // it must not end a later permit's lease when it fires.
    const limiter = createLimiter({ provider: coldBucket, key: 'k', permitTimeoutMs: 400 });
    try {
      const events: LimiterEvent[] = [];
      limiter.events$.subscribe((e) => events.push(e));
      const grantedAt: Record<string, number> = {};
      const send = (url: string, settle: boolean) =>
        limiter.acquire(
          { url },
          {
            granted: (p) => {
              grantedAt[url] = limiter.now();
              if (settle) p.release(); // given back unanswered (a failed request): the bucket stays cold
            },
            rejected: () => undefined,
          },
        );
      send('/quick', true);
      await new Promise((r) => setTimeout(r, 150));
      send('/hangs', false);
      send('/next', true);
      // The cold bucket has one slot until a response tells its limits: only the lease frees it.
      for (let i = 0; i < 100 && grantedAt['/next'] === undefined; i++) await new Promise((r) => setTimeout(r, 50));
      const expired = events.find((e) => e.type === 'permit-expired') as { at: number; heldMs: number } | undefined;
      expect(expired).toMatchObject({ request: { path: '/hangs' } });
      expect(expired?.heldMs).toBeGreaterThanOrEqual(400);
      expect(grantedAt['/next']).toBeGreaterThanOrEqual(expired?.at ?? Infinity);
    } finally {
      await limiter.close();
    }
  });

  it('in real time, the lease timer is cleared with the last permit under Zone.js, where it would keep an app unstable', () => {
    const run = (zone: boolean) => {
      const clear = jest.spyOn(globalThis, 'clearTimeout');
      if (zone) (globalThis as { Zone?: unknown }).Zone = {};
      try {
        // A lease length of its own: a lease list of its own, with no timer set before.
        const limiter = createLimiter({ provider: coldBucket, key: 'k', permitTimeoutMs: zone ? 61_001 : 61_002 });
        limiter.acquire({}, { granted: (p) => p.release(), rejected: () => undefined });
        void limiter.close();
        return clear.mock.calls.length;
      } finally {
        delete (globalThis as { Zone?: unknown }).Zone;
        clear.mockRestore();
      }
    };
    // Zone.js counts a pending timer as work in progress: a server render would wait for it.
    expect(run(true)).toBe(1);
    // Elsewhere (Node, unref'd) it stays set for the next request: none cleared.
    expect(run(false)).toBe(0);
  });

  it('permits held at different times each expire a lease after their own admission, one given back in time never', () => {
    const out = inVirtualTime(() => {
      const limiter = createLimiter({
        provider: threePerSecond,
        key: 'k',
        coldStartConcurrency: 3,
        permitTimeoutMs: 60_000,
      });
      const events: LimiterEvent[] = [];
      limiter.events$.subscribe((e) => events.push(e));
      const held: Record<string, Permit> = {};
      const send = (url: string) =>
        limiter.acquire({ url }, { granted: (p) => (held[url] = p), rejected: () => undefined });
      send('/a');
      asyncScheduler.schedule(() => send('/b'), 10_000);
      asyncScheduler.schedule(() => send('/c'), 20_000);
      // The oldest given back before its lease ends: the others keep their own.
      asyncScheduler.schedule(() => held['/a']!.release(), 30_000);
      asyncScheduler.schedule(() => undefined, 200_000);
      return { limiter, events };
    });
    const expired = out.events.filter((e) => e.type === 'permit-expired');
    expect(expired).toEqual([
      expect.objectContaining({ at: 70_000, request: expect.objectContaining({ path: '/b' }), heldMs: 60_000 }),
      expect.objectContaining({ at: 80_000, request: expect.objectContaining({ path: '/c' }), heldMs: 60_000 }),
    ]);
    expect(out.limiter.snapshot.inFlight).toBe(0);
    expect(out.limiter.hasTimer).toBe(false);
  });

  it('many permits in flight, of many limiters, hold one lease timer between them, none once given back', () => {
    inVirtualTime(() => {
      // Every timer the limiter sets, counted, and which are still pending.
      const pending = new Set<object>();
      let set = 0;
      const scheduler: SchedulerLike = {
        now: () => asyncScheduler.now(),
        schedule: (work, delay, state) => {
          set++;
          const action = asyncScheduler.schedule(
            function (this: SchedulerAction<unknown>, s) {
              pending.delete(sub);
              (work as (this: SchedulerAction<unknown>, state?: unknown) => void).call(this, s);
            },
            delay,
            state,
          );
          const sub = { unsubscribe: () => (pending.delete(sub), action.unsubscribe()), closed: false };
          pending.add(sub);
          return sub as unknown as Subscription;
        },
      };
      // Two tenants' limiters, 100 requests in flight on each.
      const held: Permit[] = [];
      for (const key of ['tenant-a', 'tenant-b']) {
        const limiter = createLimiter({
          provider: providers.generic({ limit: 1000, windowMs: 60_000 }),
          key,
          scheduler,
          coldStartConcurrency: 1000,
          permitTimeoutMs: 300_000,
        });
        for (let i = 0; i < 100; i++)
          limiter.acquire({ url: `/items/${i}` }, { granted: (p) => held.push(p), rejected: () => undefined });
      }
      expect(held).toHaveLength(200);
      expect(set).toBeLessThanOrEqual(1);
      for (const p of held) {
        p.observe(ok);
        p.release();
      }
      expect(pending.size).toBe(0);
    });
  });

  it('a lease in virtual time ends on time while a permit of the same lease length is held in real time', async () => {
    // A test file that uses the limiter in real time and in TestScheduler's virtual time (both
    // drive asyncScheduler): a lease of one clock is never ordered behind one of the other.
    const real = createLimiter({ provider: coldBucket, key: 'real', permitTimeoutMs: 60_000 });
    let held: Permit | undefined;
    real.acquire({ url: '/real' }, { granted: (p) => (held = p), rejected: () => undefined });
    expect(held).toBeDefined();
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: coldBucket, key: 'virtual', permitTimeoutMs: 60_000 });
      const events: LimiterEvent[] = [];
      limiter.events$.subscribe((e) => events.push(e));
      limiter.acquire({ url: '/hangs' }, { granted: () => undefined, rejected: () => undefined });
      asyncScheduler.schedule(() => undefined, 120_000);
      return { events };
    });
    expect(out.events.filter((e) => e.type === 'permit-expired')).toEqual([
      expect.objectContaining({ at: 60_000, heldMs: 60_000 }),
    ]);
    held!.observe(ok);
    held!.release();
    await real.close();
  });

  it('one limiter used in real time and then in virtual time ends its virtual lease on time', async () => {
    // A limiter made once for a test file, used by a real-time test and then in TestScheduler's
    // virtual time: its lease of one clock is never ordered behind one of the other.
    const limiter = createLimiter({
      provider: coldBucket,
      key: 'both',
      coldStartConcurrency: 2,
      permitTimeoutMs: 60_000,
    });
    const events: LimiterEvent[] = [];
    limiter.events$.subscribe((e) => events.push(e));
    let held: Permit | undefined;
    limiter.acquire({ url: '/real' }, { granted: (p) => (held = p), rejected: () => undefined });
    expect(held).toBeDefined();
    inVirtualTime(() => {
      limiter.acquire({ url: '/hangs' }, { granted: () => undefined, rejected: () => undefined });
      asyncScheduler.schedule(() => undefined, 120_000);
    });
    expect(events.filter((e) => e.type === 'permit-expired')).toEqual([
      expect.objectContaining({ request: expect.objectContaining({ path: '/hangs' }), heldMs: 60_000 }),
    ]);
    held!.observe(ok);
    held!.release();
    await limiter.close();
  });

  it('a lease in real time does not keep the process alive', async () => {
    // A safety net for a request that never settles, never the reason a script keeps running.
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const limiter = createLimiter({ provider: coldBucket, key: 'alive', permitTimeoutMs: 60_000 });
    const before = timers();
    let held: Permit | undefined;
    limiter.acquire({ url: '/real' }, { granted: (p) => (held = p), rejected: () => undefined });
    expect(held).toBeDefined();
    expect(timers()).toBe(before);
    held!.observe(ok);
    held!.release();
    await limiter.close();
  });

  it('permitTimeoutMs must be a number >= 0 or Infinity', () => {
    expect(() => createLimiter({ provider: providers.generic(), key: 'k', permitTimeoutMs: -1 })).toThrow(
      /permitTimeoutMs/,
    );
    expect(() => createLimiter({ provider: providers.generic(), key: 'k', permitTimeoutMs: Infinity })).not.toThrow();
  });
});

const settle = (p: Permit, headers: Record<string, string> = {}) => {
  p.observe(responseLike(200, headers));
  p.release();
};

describe('bucket memory', () => {
  it('per-endpoint buckets nothing needs are evicted; one with a reset to come or a request waiting on it is kept', () => {
    const out = inVirtualTime(({ now }) => {
      // maxConcurrent 1 makes a request wait on a bucket that holds nothing (no send, no reset).
      const limiter = createLimiter({
        provider: providers.fieldwire(),
        key: 'k',
        maxConcurrent: 1,
        maxWaitMs: Infinity,
        permitTimeoutMs: 0,
      });
      const names = () => limiter.snapshot.buckets.map((b) => b.name);
      // 2,000 file URLs (names, not ids): 2 buckets each, all answered.
      for (let i = 0; i < 2000; i++)
        limiter.acquire(
          { url: `/api/v3/projects/1/attachments/plan-${i}.pdf` },
          { granted: (p) => settle(p), rejected: () => undefined },
        );
      const peak = names().length;
      // One endpoint spends its minute: its reset is an hour away.
      limiter.acquire(
        { url: '/api/v3/projects/1/spent' },
        {
          granted: (p) =>
            settle(p, {
              'ratelimit-limit-minute': '5',
              'ratelimit-remaining-minute': '0',
              'ratelimit-reset': String(Math.floor(now() / 1000) + 3600),
            }),
          rejected: () => undefined,
        },
      );
      let held: Permit | undefined;
      let waiterGranted = false;
      asyncScheduler.schedule(() => {
        // A request that never ends holds the only slot; another waits behind it on its own endpoint.
        limiter.acquire({ url: '/api/v3/projects/1/hangs' }, { granted: (p) => (held = p), rejected: () => undefined });
        limiter.acquire(
          { url: '/api/v3/projects/1/waits' },
          { granted: () => (waiterGranted = true), rejected: () => undefined },
        );
      }, 1000);
      // Past every window (catch-all 5 min, endpoint hour 1 h) and the idle time, one more request sweeps.
      let after: string[] = [];
      asyncScheduler.schedule(() => {
        limiter.acquire({ url: '/api/v3/projects/1/late' }, { granted: () => undefined, rejected: () => undefined });
        after = names();
      }, 50 * 60_000);
      return {
        peak,
        get after() {
          return after;
        },
        get held() {
          return held;
        },
        get waiterGranted() {
          return waiterGranted;
        },
      };
    });
    expect(out.peak).toBe(4001);
    expect(out.held).toBeDefined();
    expect(out.waiterGranted).toBe(false);
    // Kept: the catch-all (in flight), the hanging request's and the waiter's endpoints, the spent
    // minute (reset in an hour), and the late request's; the 4,000 idle ones are gone.
    expect(out.after.sort()).toEqual(
      [
        'catch-all',
        'GET /projects/:id/hangs:hour',
        'GET /projects/:id/hangs:minute',
        'GET /projects/:id/late:hour',
        'GET /projects/:id/late:minute',
        'GET /projects/:id/spent:minute',
        'GET /projects/:id/waits:hour',
        'GET /projects/:id/waits:minute',
      ].sort(),
    );
  });

  it('buckets a server names are capped: 5,000 names leave at most 32 of them, and idle ones expire', () => {
    const named = defineProvider({
      name: 'named',
      buckets: [{ name: 'default', limit: 1000, windowMs: 1000 }],
      read: (res) => {
        const name = res.header('x-policy');
        return { outcome: 'ok', buckets: name ? [{ name, limit: 100, remaining: 99 }] : [] };
      },
    });
    const out = inVirtualTime(() => {
      const limiter = createLimiter({ provider: named, key: 'k', coldStartConcurrency: 10 });
      for (let i = 0; i < 5000; i++)
        limiter.acquire(
          { url: '/x' },
          { granted: (p) => settle(p, { 'x-policy': `policy-${i}` }), rejected: () => undefined },
        );
      const peak = limiter.snapshot.buckets.length;
      let after = -1;
      asyncScheduler.schedule(() => {
        limiter.acquire(
          { url: '/x' },
          { granted: (p) => settle(p, { 'x-policy': 'fresh' }), rejected: () => undefined },
        );
        after = limiter.snapshot.buckets.length;
      }, 20 * 60_000);
      return {
        peak,
        get after() {
          return after;
        },
      };
    });
    expect(out.peak).toBe(33);
    // The 32 idle ones went; the new name found room.
    expect(out.after).toBe(2);
  });
});

describe('drain with thousands of endpoint groups', () => {
  it('admits in priority-then-arrival order per bucket, loses nothing, and waits only where a bucket is empty', () => {
    // 3,000 endpoints, each 1 request per second; a shared bucket of 500 per second.
    const perEndpoint = defineProvider({
      name: 'per-endpoint',
      buckets: (req) => [
        { name: 'shared', limit: 500, windowMs: 1000 },
        { name: `ep:${req.url ?? ''}`, limit: 1, windowMs: 1000 },
      ],
      read: () => ({ outcome: 'ok', buckets: [] }),
    });
    const out = inVirtualTime(({ now }) => {
      const limiter = createLimiter({
        provider: perEndpoint,
        key: 'k',
        coldStartConcurrency: 1000,
        maxWaitMs: Infinity,
      });
      const admitted: Array<{ id: number; at: number; ep: number; priority: number }> = [];
      let id = 0;
      // Each endpoint gets two requests; every third request is high priority.
      for (let round = 0; round < 2; round++)
        for (let ep = 0; ep < 3000; ep++) {
          const me = id++;
          const priority = me % 3 === 0 ? 1 : 0;
          limiter.acquire(
            { url: `/ep/${ep}`, priority },
            {
              granted: (p) => {
                admitted.push({ id: me, at: now(), ep, priority });
                asyncScheduler.schedule(() => settle(p), 10);
              },
              rejected: () => undefined,
            },
          );
        }
      return { admitted, limiter };
    });
    const { admitted } = out;
    expect(admitted).toHaveLength(6000);
    expect(new Set(admitted.map((a) => a.id)).size).toBe(6000);
    expect(out.limiter.snapshot.queued).toBe(0);
    // The shared bucket never admits more than 500 per window; each endpoint one per window.
    const perWindow = new Map<number, number>();
    for (const a of admitted) perWindow.set(Math.floor(a.at / 1000), (perWindow.get(Math.floor(a.at / 1000)) ?? 0) + 1);
    for (const n of perWindow.values()) expect(n).toBeLessThanOrEqual(500);
    // And nothing waits needlessly: 6,000 requests take the 12 windows they need.
    expect(Math.max(...perWindow.keys())).toBe(11);
    const byEndpoint = new Map<number, number[]>();
    for (const a of admitted) byEndpoint.set(a.ep, [...(byEndpoint.get(a.ep) ?? []), a.id]);
    // Within an endpoint (one group), the first request goes first.
    for (const ids of byEndpoint.values()) expect(ids).toEqual([...ids].sort((x, y) => x - y));
    // Across endpoints, on the shared bucket, priority rules: of the first-round requests that had
    // to wait (the first 500 went as they came), every high-priority one goes before any other.
    const first = admitted.filter((a) => a.id < 3000 && a.at > 0);
    const lastHigh = Math.max(...first.filter((a) => a.priority === 1).map((a) => admitted.indexOf(a)));
    const firstLow = Math.min(...first.filter((a) => a.priority === 0).map((a) => admitted.indexOf(a)));
    expect(lastHigh).toBeLessThan(firstLow);
  });
});

describe('a permit handed on as callbacks', () => {
  it('its observe and release work detached from it, as callbacks passed on (finalize(permit.release))', () => {
    const limiter = createLimiter({ provider: threePerSecond, key: 'detached', maxConcurrent: 1 });
    const held: Permit[] = [];
    const granted: string[] = [];
    for (const url of ['/a', '/b'])
      limiter.acquire({ url }, { granted: (p) => (held.push(p), granted.push(url)), rejected: () => undefined });
    // One in flight, one waiting on it (maxConcurrent 1).
    expect(granted).toEqual(['/a']);
    const { observe, release, request } = held[0] as Permit;
    expect(request.path).toBe('/a');
    expect(observe(ok).outcome).toBe('ok');
    release();
    // The first permit given back through the detached calls: the second request goes.
    expect(granted).toEqual(['/a', '/b']);
    expect(limiter.snapshot.inFlight).toBe(1);
    // A second release is a no-op, detached or not.
    release();
    (held[0] as Permit).release();
    expect(limiter.snapshot.inFlight).toBe(1);
    (held[1] as Permit).release();
    void limiter.close();
  });
});

describe("a permit's request summary", () => {
  it('names the request, without its query or user info, whether or not events are watched', () => {
    const unwatched = createLimiter({ provider: threePerSecond, key: 'summary-unwatched' });
    const watched = createLimiter({ provider: threePerSecond, key: 'summary-watched' });
    const admitted: LimiterEvent[] = [];
    const sub = watched.events$.subscribe((e) => admitted.push(e));
    const permits: Permit[] = [];
    const info = { method: 'post', url: 'https://user:secret@api.example.com/v1/deals?api_token=t0ken', priority: 2 };
    for (const l of [unwatched, watched])
      l.acquire(info, { granted: (p) => permits.push(p), rejected: () => undefined });
    const [a, b] = permits as [Permit, Permit];
    for (const p of [a, b]) {
      expect(p.request).toMatchObject({ method: 'POST', priority: 2 });
      expect(JSON.stringify(p.request)).not.toMatch(/secret|t0ken/);
    }
    // The same summary every time it is read, and the one the watched limiter's events show.
    expect(a.request).toBe(a.request);
    const event = admitted.find((e) => e.type === 'admitted');
    expect(event && 'request' in event ? event.request : undefined).toBe(b.request);
    for (const p of permits) p.release();
    sub.unsubscribe();
    void unwatched.close();
    void watched.close();
  });
});
