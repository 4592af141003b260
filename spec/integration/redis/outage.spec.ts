/**
 * A Redis outage on a throwaway redis-server (a free port, never the tests' shared one), killed
 * and started again: what the store keeps to write back is bounded, and its outage timing
 * does not follow a wall clock that steps.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Redis } from 'ioredis';

import {
  createLimiter,
  defineProvider,
  responseLike,
  type Limiter,
  type Permit,
  type Ticket,
} from '../../../lib/index.js';
import { redisStore } from '../../../lib/stores/redis/index.js';
import { freePort } from '../../helpers/redis.js';
import { tempRedis, until } from './fork.js';

const secret = 'rx-ratelimit-test-secret';

let PORT = 0;
let clients: Redis[] = [];
let limiters: Limiter[] = [];
let tickets: Ticket[] = [];

afterEach(async () => {
  jest.restoreAllMocks();
  for (const t of tickets) t.cancel();
  for (const l of limiters) await l.close();
  for (const c of clients) c.disconnect();
  tickets = [];
  limiters = [];
  clients = [];
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

function start(prefix: string): { limiter: Limiter; events: string[] } {
  const limiter = createLimiter({
    provider,
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

describe('redis store outage', () => {
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
