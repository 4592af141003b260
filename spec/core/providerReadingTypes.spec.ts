import { describe, expect, it } from '@jest/globals';
import { asyncScheduler, defer, of } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { createLimiter, rateLimit, responseLike, type Provider, type ResponseReading } from '../../lib/index.js';

let n = 0;

/**
 * Six requests at once through a limiter whose provider (a plain object, no `defineProvider`)
 * answers every response with `reading`: when each ended, and how.
 */
function run(reading: unknown): { ends: string[]; resetAt: unknown; names: unknown[] } {
  const ends: string[] = [];
  let resetAt: unknown;
  let names: unknown[] = [];
  new TestScheduler(() => undefined).run(() => {
    const provider: Provider = {
      name: `plain-js-${++n}`,
      buckets: () => [{ name: 'b', limit: 5, windowMs: 1000 }],
      read: () => reading as ResponseReading,
    };
    const limiter = createLimiter({ provider, key: `reading-types-${n}`, maxWaitMs: 60_000 });
    for (let j = 0; j < 6; j++) {
      defer(() => of(responseLike(200, {})))
        .pipe(rateLimit(limiter))
        .subscribe({
          next: () => ends.push(`${j} at ${asyncScheduler.now()}`),
          error: (e: Error) => ends.push(`${j} ${e.name} at ${asyncScheduler.now()}`),
        });
    }
    asyncScheduler.schedule(() => {
      resetAt = limiter.snapshot.buckets.find((b) => b.name === 'b')?.resetAt;
      names = limiter.snapshot.buckets.map((b) => b.name);
    }, 10);
  });
  return { ends, resetAt, names };
}

describe('a provider’s reading that breaks its types (plain JavaScript) is read for what it says, never as text', () => {
  it('a reset of "1000" (text) ms: dropped, not a reset years away that fails every request', () => {
    const r = run({ outcome: 'ok', buckets: [{ name: 'b', limit: 1, remaining: 0, reset: { inMs: '1000' } }] });
    expect(r.ends.filter((e) => e.includes('Error'))).toEqual([]);
    expect(r.ends).toHaveLength(6);
    expect(typeof r.resetAt === 'number' || r.resetAt === null).toBe(true);
  });

  it('a bucket with no name, or a name that is no string, is left out; its neighbours are read', () => {
    const r = run({
      outcome: 'ok',
      buckets: [
        { name: 42, limit: 1, remaining: 0 },
        { limit: 1, remaining: 0 },
        { name: 'b', limit: 5, remaining: 4 },
      ],
    });
    expect(r.names).toEqual(['b']);
    expect(r.ends).toHaveLength(6);
  });

  it('counts that are text are not counts: the request goes as if none were told', () => {
    const r = run({ outcome: 'ok', buckets: [{ name: 'b', limit: '1', remaining: '0' }] });
    expect(r.ends.filter((e) => e.includes('Error'))).toEqual([]);
    expect(r.ends).toHaveLength(6);
  });
});
