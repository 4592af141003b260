/**
 * `maxWaitMs` with the Redis store (the tests' Redis, spec/helpers/redis.ts; own key prefix): no
 * request is held longer than `maxWaitMs` from when it was queued, wherever it is in the queue.
 * Outcomes and order are asserted, never tight timing margins: the slack below is far inside
 * the old behaviour (a request queued behind others waited a whole window more).
 */
import { describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import {
  createLimiter,
  defineProvider,
  responseLike,
  isQuotaExhaustedError,
  type Limiter,
  type Permit,
  type QuotaExhaustedError,
  type RateLimitError,
} from '../../../lib/index.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { closedAfterEach, REDIS } from '../../helpers/redis.js';

const secret = 'rx-ratelimit-test-secret';
const prefix = `rxrl-maxwait-${process.pid}-${Date.now()}:`;
const { clients, limiters } = closedAfterEach();

const client = () => {
  const c = new Redis({ port: REDIS.port, host: REDIS.host });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};

/** 2 per 2 s, known from the hints alone (no header is read). */
const twoPerTwoSeconds = defineProvider({
  name: 'two-per-2s',
  buckets: [{ name: 'main', limit: 2, windowMs: 2000 }],
  read: () => ({ outcome: 'ok', buckets: [] }),
});

/** 3 per minute; answers tell what is left (`left`) and when the window resets (`reset`, ms). */
const threeTold = defineProvider({
  name: 'three-told',
  buckets: [{ name: 'main', limit: 3, windowMs: 60_000 }],
  read: (res) => ({
    outcome: 'ok',
    buckets: [
      { name: 'main', limit: 3, remaining: Number(res.header('left')), reset: { inMs: Number(res.header('reset')) } },
    ],
  }),
});

interface Outcome {
  readonly id: number;
  readonly queuedAt: number;
  at?: number;
  admitted?: boolean;
  error?: RateLimitError;
}

function ask(l: Limiter, out: Outcome[], priority = 0): Outcome {
  const o: Outcome = { id: out.length, queuedAt: Date.now() };
  out.push(o);
  l.acquire(
    { url: `/r/${o.id}`, priority },
    {
      granted: (permit) => {
        o.at = Date.now();
        o.admitted = true;
        permit.release();
      },
      rejected: (error) => {
        o.at = Date.now();
        o.admitted = false;
        o.error = error;
      },
    },
  );
  return o;
}

async function ended(out: readonly Outcome[], withinMs: number): Promise<void> {
  const by = Date.now() + withinMs;
  while (out.some((o) => o.at === undefined) && Date.now() < by) await new Promise((r) => setTimeout(r, 25));
}

/** Far inside a window (2 s): the old behaviour admitted such requests a whole window late. */
const SLACK_MS = 800;

describe('maxWaitMs with the Redis store', () => {
  it('2 per 2 s, maxWaitMs 2.5 s, 10 requests at once: each admitted or failed by its deadline, in order', async () => {
    const maxWaitMs = 2500;
    const l = createLimiter({
      provider: twoPerTwoSeconds,
      key: `maxwait-${Date.now()}`,
      maxWaitMs,
      coldStartConcurrency: 2,
      store: redisStore({ client: client(), secret, prefix, keyTtlMs: 60_000 }),
    });
    limiters.push(l);
    const out: Outcome[] = [];
    for (let i = 0; i < 10; i++) ask(l, out);
    await ended(out, maxWaitMs + 5000);
    // Nothing lost: every request ended.
    expect(out.filter((o) => o.at === undefined).map((o) => o.id)).toEqual([]);
    const admitted = out.filter((o) => o.admitted).map((o) => o.id);
    // The first window's two at least; never a third window (at 4 s, past every deadline).
    expect(admitted.length).toBeGreaterThanOrEqual(2);
    expect(admitted.length).toBeLessThanOrEqual(4);
    // First in, first out: the admitted ones are the first queued.
    expect(admitted).toEqual(out.slice(0, admitted.length).map((o) => o.id));
    for (const o of out) {
      expect({ id: o.id, late: (o.at as number) - o.queuedAt > maxWaitMs + SLACK_MS }).toEqual({
        id: o.id,
        late: false,
      });
      if (!o.admitted) {
        expect(isQuotaExhaustedError(o.error)).toBe(true);
        // Failed once the store told the window past its deadline (before, at the deadline,
        // with no known time): it carries that window.
        const resumeAt = (o.error as QuotaExhaustedError).resumeAt;
        expect(Number.isFinite(resumeAt)).toBe(true);
        expect(resumeAt).toBeGreaterThan(o.queuedAt + maxWaitMs);
      }
    }
  }, 20_000);

  it('an older request of lower priority fails at its own deadline, not at the head’s', async () => {
    const maxWaitMs = 1500;
    const l = createLimiter({
      provider: twoPerTwoSeconds,
      key: `maxwait-prio-${Date.now()}`,
      maxWaitMs,
      maxConcurrent: 1,
      store: redisStore({ client: client(), secret, prefix, keyTtlMs: 60_000 }),
    });
    limiters.push(l);
    // Holds the one slot (maxConcurrent) until the end of the test.
    const held: Permit[] = [];
    l.acquire({ url: '/held' }, { granted: (p) => held.push(p), rejected: () => undefined });
    const out: Outcome[] = [];
    ask(l, out, 0);
    await new Promise((r) => setTimeout(r, 1000));
    ask(l, out, 5);
    await ended(out, maxWaitMs + 5000);
    for (const p of held) p.release();
    expect(held).toHaveLength(1);
    expect(out.map((o) => o.admitted)).toEqual([false, false]);
    // The low-priority one ends by its own deadline, well before the later head's (1 s on).
    const first = out[0] as Outcome;
    expect((first.at as number) - first.queuedAt).toBeLessThanOrEqual(maxWaitMs + SLACK_MS / 2);
    expect(first.at as number).toBeLessThan((out[1] as Outcome).queuedAt + maxWaitMs);
  }, 20_000);

  it('a request failed at its deadline while answers may give room back carries the window’s reset', async () => {
    const l = createLimiter({
      provider: threeTold,
      key: `maxwait-told-${Date.now()}`,
      maxWaitMs: 600,
      store: redisStore({ client: client(), secret, prefix, keyTtlMs: 60_000 }),
    });
    limiters.push(l);
    const permits: Permit[] = [];
    const grab = () =>
      new Promise<Permit>((resolve, reject) => l.acquire({ url: '/g' }, { granted: resolve, rejected: reject }));
    permits.push(await grab());
    permits[0]?.observe(responseLike(200, { left: '2', reset: '30000' }));
    permits[0]?.release();
    permits.push(await grab(), await grab());
    // The first of the two reads 0 left: the other, sent before that figure came back, may be
    // counted in it already, so the store waits for its answer rather than fail the next now.
    const told = Date.now() + 30_000;
    permits[1]?.observe(responseLike(200, { left: '0', reset: '30000' }));
    permits[1]?.release();
    const out: Outcome[] = [];
    ask(l, out);
    await ended(out, 5000);
    permits[2]?.release();
    const o = out[0] as Outcome;
    expect(o.admitted).toBe(false);
    expect(isQuotaExhaustedError(o.error)).toBe(true);
    const resumeAt = (o.error as QuotaExhaustedError).resumeAt;
    expect(Number.isFinite(resumeAt)).toBe(true);
    // The window's end as the answers told it (within the test's slack), not "never".
    expect(Math.abs(resumeAt - told)).toBeLessThanOrEqual(SLACK_MS);
  }, 20_000);
});
