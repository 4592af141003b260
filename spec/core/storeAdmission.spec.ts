import { describe, expect, it } from '@jest/globals';
import {
  createLimiter,
  defineProvider,
  providers,
  responseLike,
  sharedAdmission,
  type LimiterStore,
  type StoreGrant,
  type StoreSession,
} from '../../lib/index.js';
import { inVirtualTime } from '../helpers/virtual.js';

let keys = 0;
const key = () => `store-admission-${++keys}`;

/** A session of a store of the user's own that grants everything asked, and notes its calls. */
function grantingSession(calls: string[]): StoreSession {
  let lease = 0;
  return {
    acquire: (buckets, count): Promise<StoreGrant> => {
      calls.push(`acquire ${count} of ${buckets.map((b) => b.name).join(',')}`);
      const leases = Array.from({ length: count }, () => `lease-${++lease}`);
      return Promise.resolve({ leases, waitMs: undefined, blockedBy: undefined, pause: undefined, buckets: [] });
    },
    observe: () => {
      calls.push('observe');
    },
    release: () => calls.push('release'),
    pause: () => {},
    exhaust: () => {},
    onChange: () => () => {},
    close: () => {
      calls.push('close');
      return Promise.resolve();
    },
  };
}

describe("a store's admission", () => {
  it('a store that opens sessions admits through them when it brings sharedAdmission()', async () => {
    const calls: string[] = [];
    const store: LimiterStore = { kind: 'mine', admission: sharedAdmission(), open: () => grantingSession(calls) };
    const limiter = createLimiter({ provider: providers.procore(), key: key(), store });
    const ticket = await new Promise<string>((resolve, reject) => {
      limiter.acquire(
        { method: 'GET', url: 'https://api.procore.com/rest/v1.0/projects' },
        {
          granted: (permit) => {
            permit.release();
            resolve('granted');
          },
          rejected: reject,
        },
      );
    });
    expect(ticket).toBe('granted');
    // The grant came from the store: the limiter asked it, and gave the lease back to it.
    expect(calls[0]).toMatch(/^acquire 1 of /);
    expect(calls).toContain('release');
    await limiter.close();
  });

  it('a store that opens a session without an admission is refused, naming the store and the fix, and its session closed', () => {
    const calls: string[] = [];
    const store: LimiterStore = { kind: 'mine', open: () => grantingSession(calls) };
    const make = () => createLimiter({ provider: providers.procore(), key: key(), store });
    expect(make).toThrow(TypeError);
    expect(make).toThrow(
      'createLimiter: option `store` (mine) opened a session but has no `admission`; give it `admission: sharedAdmission()` from rx-ratelimit',
    );
    expect(calls).toEqual(['close', 'close']);
  });

  it('a store that keeps buckets in the limiter (open returns undefined) needs no admission', () => {
    const store: LimiterStore = { kind: 'embedded', open: () => undefined };
    expect(() => createLimiter({ provider: providers.procore(), key: key(), store })).not.toThrow();
  });
});

describe("a shared store's guard after a window's end", () => {
  it("keeps resetGuardMs after an end a window after an answer: its times are read through other processes' clocks", () => {
    const resumeAt = (store: LimiterStore | undefined) =>
      inVirtualTime(() => {
        // One bucket of 2 per 1.5 s whose reset is told in whole seconds left: "2" a window
        // before its end is sharpened to a window after the answer (1,500 ms).
        const provider = defineProvider({
          name: 'fixed',
          buckets: [{ name: 'main', limit: 2, windowMs: 1500 }],
          read: (res) => ({
            outcome: 'ok',
            buckets: [{ name: 'main', limit: 2, remaining: 0, reset: { inMs: Number(res.header('x-reset')) * 1000 } }],
          }),
        });
        const limiter = createLimiter({ provider, key: key(), ...(store ? { store } : {}) });
        limiter.observe(responseLike(200, { 'x-reset': '2' }), { method: 'GET', url: '/x' });
        return limiter.resumeAt({ method: 'GET', url: '/x' });
      });
    // The memory store: a thousandth of the window, at least 10 ms.
    expect(resumeAt(undefined)).toBe(1510);
    const store: LimiterStore = { kind: 'mine', admission: sharedAdmission(), open: () => grantingSession([]) };
    expect(resumeAt(store)).toBe(1550);
  });
});
