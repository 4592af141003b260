import { describe, expect, it } from '@jest/globals';
import { createLimiter, defineProvider, responseLike, rollingWindows, type Permit } from '../../lib/index.js';

// A request counts against two buckets: `told`, whose figures its answers carry, and `quiet`,
// which no answer describes (as GitHub's secondary points beside its resource's bucket). An
// answer about `told` says nothing of `quiet`'s limit: `quiet`'s cold start lets one more
// request go per such answer (what is in flight doubles per round trip), whatever its kind, and
// ends once as many have come back as its limit.

const provider = (rolling: boolean) =>
  defineProvider({
    name: `cold-${rolling ? 'rolling' : 'fixed'}`,
    ...(rolling ? { bucketKinds: [rollingWindows] } : {}),
    buckets: [
      { name: 'told', limit: 1000, windowMs: 60_000 },
      { name: 'quiet', limit: 8, windowMs: 60_000, rolling },
    ],
    read(res) {
      const remaining = res.header('x-left');
      return {
        outcome: 'ok',
        buckets: remaining === undefined ? [] : [{ name: 'told', limit: 1000, remaining: Number(remaining) }],
      };
    },
  });

describe('the cold start of a bucket no answer describes, beside one they do', () => {
  it.each([
    ['a fixed window', false],
    ['a sliding window', true],
  ])('%s: one more request in flight per answer about the other bucket', async (_kind, rolling) => {
    const limiter = createLimiter({ provider: provider(rolling), key: `cold-${String(rolling)}` });
    const granted: Permit[] = [];
    for (let i = 0; i < 8; i++)
      limiter.acquire({ method: 'GET', url: '/x' }, { granted: (p) => granted.push(p), rejected: () => undefined });
    // The cold start: one request in flight.
    expect(granted).toHaveLength(1);
    const answer = (p: Permit, left: number) => {
      p.observe(responseLike(200, { 'x-left': String(left) }));
      p.release();
    };
    answer(granted[0] as Permit, 999);
    // One answer about `told`: `quiet` lets two be in flight (none was), so two go.
    expect(granted).toHaveLength(3);
    answer(granted[1] as Permit, 998);
    // Two answers: three may be in flight, one is: two more go.
    expect(granted).toHaveLength(5);
    // Every request given back (those it admits in turn too): `close()` waits for the ones in
    // flight, which would otherwise hold it, and the test run, until their leases end.
    for (const p of granted) p.release();
    await limiter.close();
  });
});
