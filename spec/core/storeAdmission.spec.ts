import { describe, expect, it } from '@jest/globals';
import {
  createLimiter,
  providers,
  sharedAdmission,
  type LimiterStore,
  type StoreGrant,
  type StoreSession,
} from '../../lib/index.js';

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
