import { describe, expect, it } from '@jest/globals';
import { createLimiter, createLimiterPool, defineProvider, providers } from '../../lib/index.js';

const provider = providers.generic();

describe('createLimiter options', () => {
  it.each([
    [{ provider, key: 'k', maxWaitMs: -1 }, /option `maxWaitMs` must be a number >= 0, got -1/],
    [{ provider, key: 'k', maxWaitMs: 'soon' }, /option `maxWaitMs` must be .*got "soon"/],
    [{ provider, key: 'k', maxQueue: 1.5 }, /option `maxQueue` must be .*got 1\.5/],
    [{ provider, key: 'k', maxConcurrent: 0 }, /option `maxConcurrent` must be .*got 0/],
    [{ provider, key: '' }, /option `key` must be a non-empty string, got \(hidden\)/],
    [{ provider: { name: 'x' }, key: 'k' }, /option `provider` must be a provider/],
    [{ provider, key: 'k', scheduler: {} }, /option `scheduler` must be an RxJS SchedulerLike/],
    [{ provider, key: 'k', maxWait: 10 }, /unknown option `maxWait`/],
    [{ provider, key: 'k', resetGuardMs: 120_000 }, /option `resetGuardMs` must be a number <= 60000, got 120000/],
  ])('rejects %o with a TypeError that names the option', (options, message) => {
    expect(() => createLimiter(options as never)).toThrow(TypeError);
    expect(() => createLimiter(options as never)).toThrow(message);
  });

  it('never echoes the key in the error, even when it is the wrong type', () => {
    expect(() => createLimiter({ provider, key: 12345 } as never)).toThrow(/option `key` .*got \(hidden\)/);
  });

  it('rejects a non-object', () => {
    expect(() => createLimiter(undefined as never)).toThrow(/createLimiter: expected an options object, got undefined/);
  });

  it('gives an option left out or undefined its default', () => {
    const limiter = createLimiter({ provider, key: 'k', maxWaitMs: undefined } as never);
    expect(limiter.maxWaitMs).toBe(600_000);
    expect(limiter.backoff).toMatchObject({ baseMs: 1000, maxMs: 60_000 });
  });

  it('accepts Infinity where a bound can be lifted', () => {
    expect(() =>
      createLimiter({ provider, key: 'k', maxWaitMs: Infinity, maxQueue: Infinity, blockCooldownMs: Infinity }),
    ).not.toThrow();
  });
});

describe('defineProvider and provider options', () => {
  it('names the bad field', () => {
    expect(() => defineProvider({ name: '', buckets: [], read: () => ({ outcome: 'ok', buckets: [] }) })).toThrow(
      /defineProvider: option `name` must be a non-empty string, got ""/,
    );
    expect(() =>
      defineProvider({ name: 'x', buckets: [{ name: 'a', limit: -1 }], read: () => ({ outcome: 'ok', buckets: [] }) }),
    ).toThrow(/option `buckets.0.limit` must be a number >= 0, got -1/);
    expect(() => providers.generic({ resetUnit: 'weeks' } as never)).toThrow(
      /providers.generic: option `resetUnit` must be one of "unix-seconds", "unix-ms", .*"auto", got "weeks"/,
    );
  });

  it("a provider's maxConcurrent is checked, by defineProvider or by createLimiter for a provider of one's own", () => {
    const read = () => ({ outcome: 'ok' as const, buckets: [] });
    expect(() => defineProvider({ name: 'x', buckets: [], read, maxConcurrent: 0 })).toThrow(
      /defineProvider: option `maxConcurrent` must be .*got 0/,
    );
    const own = { name: 'own', buckets: () => [], read, maxConcurrent: 2.5 };
    expect(() => createLimiter({ provider: own, key: 'k' })).toThrow(TypeError);
    expect(() => createLimiter({ provider: own, key: 'k' })).toThrow(
      /provider `own`: `maxConcurrent` must be a whole number of at least 1 \(got 2.5\)/,
    );
    // A pool checks it when made, not at its first tenant.
    expect(() => createLimiterPool({ provider: own })).toThrow(
      /createLimiterPool: provider `own`: `maxConcurrent` must be a whole number of at least 1/,
    );
    // An option given is what counts: the provider's is not read.
    expect(() => createLimiter({ provider: own, key: 'k', maxConcurrent: 3 })).not.toThrow();
    expect(defineProvider({ name: 'x', buckets: [], read, maxConcurrent: 7 }).maxConcurrent).toBe(7);
  });

  it('words every kind of bad value itself (no bare "Invalid input")', () => {
    const bad: Array<() => unknown> = [
      () => providers.generic({ pacing: 'fast', limit: 1.5, headers: { limit: 1 }, limitedStatuses: [99] } as never),
      () => providers.pipedrive({ plan: 'gold', auth: 'basic' } as never),
      () => providers.procore({ hints: { hourly: { limit: -1, windowMs: 0 } } } as never),
      () => createLimiter({ provider, key: 'k', dedupe: 'yes', cache: { ttlMs: 0, extra: 1 } } as never),
    ];
    for (const call of bad) {
      let message = '';
      try {
        call();
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/option `/);
      expect(message).not.toMatch(/Invalid input|Invalid option/);
    }
    expect(() => providers.generic({ limit: 1.5 })).toThrow(/option `limit` must be a whole number, got 1\.5/);
    expect(() => providers.pipedrive({ plan: 'gold' } as never)).toThrow(
      /option `plan` must be one of "essential", .*"enterprise", got "gold"/,
    );
  });

  it('says what a choice or a list takes when the value is of no kind it accepts', () => {
    const read = () => ({ outcome: 'ok' as const, buckets: [] });
    expect(() => providers.github({ contentCreation: 'sometimes' } as never)).toThrow(
      /providers.github: option `contentCreation` must be one of "rolling", "fixed", false, got "sometimes"/,
    );
    expect(() => defineProvider({ name: 'x', buckets: 'all' as never, read })).toThrow(
      /defineProvider: option `buckets` must be an array of buckets or a function, got "all"/,
    );
    expect(() => defineProvider({ name: 'x', buckets: [], read, readsBody: true as never })).toThrow(
      /defineProvider: option `readsBody` must be a function, got true/,
    );
    expect(() =>
      defineProvider({ name: 'x', buckets: [{ name: 'a', limit: 1.5, pacing: 'fast' as never }], read }),
    ).toThrow(
      /option `buckets.0.limit` must be a whole number, got 1\.5; option `buckets.0.pacing` must be one of "burst", "smooth", got "fast"/,
    );
  });

  it('checks an entry of a map or list field by field, then its key, without reading a bad entry', () => {
    // A number out of range leaves the entry readable: its key is checked too, both named.
    expect(() => providers.procore({ hints: { weekly: { limit: -1 } } })).toThrow(
      /option `hints.weekly.limit` must be a number >= 0, got -1; option `hints.weekly` must be keyed by a bucket name \("hourly"\)/,
    );
    // An entry of the wrong type stops there: the check of bucket names never reads it.
    expect(() => providers.procore({ hints: { weekly: 5 } } as never)).toThrow(
      /^providers.procore: option `hints.weekly` must be of type object, got 5$/,
    );
    expect(() => providers.procore({ extraBuckets: [null] } as never)).toThrow(
      /^providers.procore: option `extraBuckets.0` must be of type object, got null$/,
    );
    expect(() => providers.procore({ extraBuckets: 'x' } as never)).toThrow(
      /option `extraBuckets` must be of type array, got "x"/,
    );
  });

  it('a provider whose read throws is treated as one whose response says nothing', () => {
    const p = defineProvider({
      name: 'thrower',
      buckets: [{ name: 'default' }],
      read: () => {
        throw new Error('bug in user code');
      },
    });
    const header = () => undefined;
    expect(p.read({ status: 429, header }, {})).toEqual({ outcome: 'limited', buckets: [] });
    expect(p.read({ status: 200, header }, {})).toEqual({ outcome: 'ok', buckets: [] });
  });
});
