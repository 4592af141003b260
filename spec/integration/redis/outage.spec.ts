/**
 * A Redis outage on a throwaway redis-server (a free port, never the tests' shared one), killed
 * and started again: what the store keeps to write back is bounded, and its outage timing
 * does not follow a wall clock that steps.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Redis } from 'ioredis';

import { createLimiter, defineProvider, responseLike, type Limiter, type Permit } from '../../../lib/index.js';
import { redisKeys, redisStore } from '../../../lib/stores/redis/index.js';
import { freePort, closedAfterEach } from '../../helpers/redis.js';
import { tempRedis, until } from './fork.js';

const secret = 'rx-ratelimit-test-secret';

let PORT = 0;
const { clients, limiters, tickets } = closedAfterEach();
afterEach(() => {
  jest.restoreAllMocks();
});

const client = () => {
  // Calls fail at once while Redis is down (no offline queue), as with a refused connection.
  const c = new Redis({
    port: PORT,
    host: '127.0.0.1',
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50,
  });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
};

const provider = defineProvider({
  name: 'outage',
  buckets: [{ name: 'main', limit: 1000, windowMs: 60_000 }],
  read: (res) => ({
    outcome: 'ok',
    buckets: [{ name: 'main', limit: 1000, remaining: Number(res.header('left')), reset: { inMs: 60_000 } }],
  }),
});

function start(prefix: string, use = provider): { limiter: Limiter; events: string[] } {
  const limiter = createLimiter({
    provider: use,
    key: 'outage-token',
    store: redisStore({ client: client(), secret, prefix, timeoutMs: 100, retryMs: 5, leaseMs: 60_000 }),
  });
  limiters.push(limiter);
  const events: string[] = [];
  limiter.events$.subscribe((e) => {
    if (e.type === 'store-unavailable' || e.type === 'store-recovered') events.push(e.type);
  });
  return { limiter, events };
}

const acquire = (l: Limiter) =>
  new Promise<Permit>((resolve, reject) =>
    tickets.push(l.acquire({ url: '/x' }, { granted: resolve, rejected: reject })),
  );

/** Scripts Redis ran since it started (the store's calls), and the leases they ended (ZREM inside them). */
async function scriptStats(): Promise<{ scripts: number; leaseEnds: number }> {
  const probe = new Redis({ port: PORT, host: '127.0.0.1' });
  try {
    const info = await probe.info('commandstats');
    const calls = (name: string) => Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info)?.[1] ?? 0);
    return { scripts: calls('eval') + calls('evalsha'), leaseEnds: calls('zrem') };
  } finally {
    probe.disconnect();
  }
}

/** 10 per minute; responses tell what is left (`left`) and when the window resets (`reset`, ms). */
const ten = defineProvider({
  name: 'outage-ten',
  buckets: [{ name: 'main', limit: 10, windowMs: 60_000 }],
  read: (res) => ({
    outcome: 'ok',
    buckets: [
      { name: 'main', limit: 10, remaining: Number(res.header('left')), reset: { inMs: Number(res.header('reset')) } },
    ],
  }),
});

describe('redis store outage', () => {
  /**
   * A alone on the token sends 3 on its local share while Redis is down, and a 4th once Redis is
   * back; the API counts the 4th first (`fourthFirst`: 9 left, then 8, 7, 6 for the 3) or last
   * (9, 8, 7, then 6). `whileAway`: the answers A reads while Redis is still away. B then asks
   * for 20 before the rest of A's answers are read (`first`), and after (`granted` in all).
   */
  async function sendsAfterAnOutage(whileAway: readonly number[], fourthFirst: boolean) {
    PORT = await freePort();
    const redis = tempRedis(PORT);
    await redis.start();
    try {
      const prefix = `rxrl-carry-${process.pid}-${Date.now()}:`;
      const a = start(prefix, ten);
      const b = start(prefix, ten);
      // Connected (a call before it fails, as Redis away would).
      await Promise.all(
        clients.map((c) => (c.status === 'ready' ? Promise.resolve() : new Promise((r) => c.once('ready', r)))),
      );
      // A alone is seen (B has sent nothing yet); the window A last heard of ends in 3 s.
      for (const left of ['9', '8']) {
        const warm = await acquire(a.limiter);
        warm.observe(responseLike(200, { left, reset: '3000' }));
        warm.release();
      }
      await redis.stop();
      // From the next window on, A's local share is the limit (no other process seen).
      const local = await Promise.all([acquire(a.limiter), acquire(a.limiter), acquire(a.limiter)]);
      expect(a.events).toEqual(['store-unavailable']);
      const answer = (k: number) => {
        local[k]?.observe(responseLike(200, { left: String((fourthFirst ? 8 : 9) - k), reset: '60000' }));
        local[k]?.release();
      };
      for (const k of whileAway) answer(k);
      await redis.start();
      // The clients reconnect on their own schedule (ioredis's backoff), later still on a busy
      // machine: until then a call fails and the 4th would go on the local share.
      await until(() => clients.every((c) => c.status === 'ready'), 10_000);
      // Redis answers A again (a fresh server: it knew nothing), and A sends a 4th.
      const fourth = await acquire(a.limiter);
      expect(a.events).toEqual(['store-unavailable', 'store-recovered']);
      const fourthAnswers = () => {
        fourth.observe(responseLike(200, { left: fourthFirst ? '9' : '6', reset: '60000' }));
        fourth.release();
      };
      const otherAnswers = () => {
        for (let k = 0; k < 3; k++) if (!whileAway.includes(k)) answer(k);
      };
      (fourthFirst ? fourthAnswers : otherAnswers)();
      // What the API has left is 10 less A's 4, however late their answers are read.
      let granted = 0;
      const held: Permit[] = [];
      for (let i = 0; i < 20; i++)
        tickets.push(
          b.limiter.acquire(
            { url: '/x' },
            { granted: (p) => void (granted++, held.push(p)), rejected: () => undefined },
          ),
        );
      // B's first call meets a freshly restarted Redis (its client reconnected, the scripts loaded
      // again), later on a busy machine: wait for its first grant, then give it the 500 ms it had
      // to take all it would before the rest of A's answers are read.
      await until(() => granted > 0, 5000);
      await new Promise((r) => setTimeout(r, 500));
      const first = granted;
      (fourthFirst ? otherAnswers : fourthAnswers)();
      await new Promise((r) => setTimeout(r, 500));
      // Every lease ends as its request answers: nothing of A's stays in flight in Redis.
      for (const p of held) {
        p.observe(responseLike(200, { left: '0', reset: '60000' }));
        p.release();
      }
      const probe = new Redis({ port: PORT, host: '127.0.0.1' });
      clients.push(probe);
      const inflight = redisKeys(prefix, 'outage-ten', 'outage-token', secret).inflight('main');
      let out = -1;
      for (const deadline = Date.now() + 5000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 20))) {
        out = await probe.zcard(inflight);
        if (out === 0) break;
      }
      return { first, granted, inflight: out };
    } finally {
      await redis.stop();
    }
  }

  it('requests sent on the local share and still out when Redis answers again count in flight: B never gets more than the 6 the API has left', async () => {
    const r = await sendsAfterAnOutage([], true);
    expect(r.first).toBeGreaterThan(0);
    expect(r.granted).toBeLessThanOrEqual(6);
    expect(r.inflight).toBe(0);
  });

  it('an answer from the window spent on the local share, read after Redis is back, frees nothing the other answers spent', async () => {
    // The first request's answer (9 left) is read last; the two after it were answered while away.
    const r = await sendsAfterAnOutage([1, 2], false);
    expect(r.first).toBeGreaterThan(0);
    expect(r.granted).toBeLessThanOrEqual(6);
    expect(r.inflight).toBe(0);
  });

  it('a late answer from the window spent while Redis was away opens no window after that one ends: the next window keeps its end', async () => {
    // 10 per 2 s; answers tell the window's end in ms (`reset`).
    const short = defineProvider({
      name: 'outage-late',
      buckets: [{ name: 'main', limit: 10, windowMs: 2000 }],
      read: ten.read,
    });
    PORT = await freePort();
    const redis = tempRedis(PORT);
    await redis.start();
    try {
      const prefix = `rxrl-late-${process.pid}-${Date.now()}:`;
      const a = start(prefix, short);
      const b = start(prefix, short);
      await Promise.all(
        clients.map((c) => (c.status === 'ready' ? Promise.resolve() : new Promise((r) => c.once('ready', r)))),
      );
      const warm = await acquire(a.limiter);
      warm.observe(responseLike(200, { left: '9', reset: '1000' }));
      warm.release();
      await redis.stop();
      // A spends 3 on its local share; 2 answer while Redis is away, the first is still out.
      const local = await Promise.all([acquire(a.limiter), acquire(a.limiter), acquire(a.limiter)]);
      for (const [k, left] of [
        [1, '8'],
        [2, '7'],
      ] as const) {
        local[k]?.observe(responseLike(200, { left, reset: '1500' }));
        local[k]?.release();
      }
      await redis.start();
      await until(() => clients.every((c) => c.status === 'ready'), 10_000);
      // A's next call writes back what it spent in that window (a fresh Redis knew nothing).
      const fourth = await acquire(a.limiter);
      expect(a.events).toEqual(['store-unavailable', 'store-recovered']);
      fourth.release();
      const spentWindowEnd = a.limiter.snapshot.buckets[0]?.resetAt ?? Number.NaN;
      // That window ends; B asks, and Redis opens the next window, whose end it projects; B
      // waits for the answer still out (the first one read after a refill confirms the window).
      await new Promise((r) => setTimeout(r, Math.max(0, spentWindowEnd - Date.now()) + 300));
      const first = acquire(b.limiter);
      const probe = new Redis({ port: PORT, host: '127.0.0.1' });
      clients.push(probe);
      const state = redisKeys(prefix, 'outage-late', 'outage-token', secret).bucket('main');
      await until(async () => Number(await probe.hget(state, 'rst')) > spentWindowEnd + 1000, 10_000);
      const nextWindowEnd = Number(await probe.hget(state, 'rst'));
      // The first request's answer, read only now: the server counted it in the window that
      // ended, and told then that it ends in 0.5 s. Read now, that would end the next window
      // early, and a refill then would grant a second limit inside the server's window.
      local[0]?.observe(responseLike(200, { left: '9', reset: '500' }));
      local[0]?.release();
      (await first).release();
      expect(b.limiter.snapshot.buckets[0]?.resetAt).toBeGreaterThanOrEqual(nextWindowEnd);
    } finally {
      await redis.stop();
    }
  });

  it('an outage of 2 s with requests waiting: what is written back on recovery is bounded and batched, not one call per failed try', async () => {
    PORT = await freePort();
    const redis = tempRedis(PORT);
    await redis.start();
    try {
      const prefix = `rxrl-outage-${process.pid}-${Date.now()}:`;
      const { limiter, events } = start(prefix);
      // Warm: Redis has told the figures; in this window the local share is then nothing.
      const warm = await acquire(limiter);
      warm.observe(responseLike(200, { left: '999' }));
      warm.release();
      await redis.stop();
      // 100 requests wait; every retryMs the store tries Redis again, and each try fails.
      for (let i = 0; i < 100; i++) void acquire(limiter).catch(() => undefined);
      await until(() => events.includes('store-unavailable'), 5000);
      await new Promise((r) => setTimeout(r, 2000));
      await redis.start();
      await until(() => events.includes('store-recovered'), 10_000);
      await new Promise((r) => setTimeout(r, 1000));
      const { scripts, leaseEnds } = await scriptStats();
      // Figures on a 2-core box: 10 script calls ending 1,024 leases (the most the store keeps);
      // before the fix, one RELEASE call per lease of every failed try: 57,294 calls.
      console.log(`after the outage: ${scripts} script calls, ${leaseEnds} lease ends`);
      expect(leaseEnds).toBeLessThanOrEqual(1024); // the store keeps at most 1,024 lease ends
      expect(scripts).toBeLessThan(50);
    } finally {
      await redis.stop();
    }
  });

  it('the wall clock stepping back an hour during an outage does not keep the store off Redis for that hour', async () => {
    PORT = await freePort();
    const redis = tempRedis(PORT);
    await redis.start();
    try {
      const prefix = `rxrl-step-${process.pid}-${Date.now()}:`;
      const { limiter, events } = start(prefix);
      const warm = await acquire(limiter);
      warm.observe(responseLike(200, { left: '999' }));
      warm.release();
      await redis.stop();
      for (let i = 0; i < 5; i++) void acquire(limiter).catch(() => undefined);
      await until(() => events.includes('store-unavailable'), 5000);
      const realNow = Date.now.bind(Date);
      jest.spyOn(Date, 'now').mockImplementation(() => realNow() - 3_600_000);
      await redis.start();
      await until(() => events.includes('store-recovered'), 5000);
      expect(events).toEqual(['store-unavailable', 'store-recovered']);
    } finally {
      jest.restoreAllMocks();
      await redis.stop();
    }
  });
});
